package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

type countingKeys struct {
	n    int
	keys map[string]store.APIKey
}

func (c *countingKeys) APIKeyByHash(_ context.Context, hash string) (store.APIKey, error) {
	c.n++
	k, ok := c.keys[hash]
	if !ok {
		return store.APIKey{}, store.ErrNotFound
	}
	return k, nil
}

func TestKeyCache(t *testing.T) {
	now := time.Date(2026, 4, 13, 14, 0, 0, 0, time.UTC)
	next := &countingKeys{keys: map[string]store.APIKey{"h1": {Hash: "h1", TenantID: "t1", Env: "test"}}}
	c := newKeyCache(next, func() time.Time { return now })
	ctx := context.Background()
	for range 3 {
		k, err := c.APIKeyByHash(ctx, "h1")
		if err != nil || k.TenantID != "t1" {
			t.Fatalf("APIKeyByHash(h1) = %+v, %v", k, err)
		}
	}
	if next.n != 1 {
		t.Errorf("lookups = %d, want 1 (then cached)", next.n)
	}
	// Unknown keys are not cached: one made later works at once.
	if _, err := c.APIKeyByHash(ctx, "h2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: err = %v, want not found", err)
	}
	next.keys["h2"] = store.APIKey{Hash: "h2", TenantID: "t2"}
	if k, err := c.APIKeyByHash(ctx, "h2"); err != nil || k.TenantID != "t2" {
		t.Errorf("key made after a miss = %+v, %v", k, err)
	}
	// Past the TTL the key is read again.
	now = now.Add(keyCacheTTL)
	before := next.n
	if _, err := c.APIKeyByHash(ctx, "h1"); err != nil || next.n != before+1 {
		t.Errorf("after the TTL: lookups %d → %d, err %v; want one more read", before, next.n, err)
	}
}
