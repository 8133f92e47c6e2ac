package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// keyCache remembers the keys it found for a minute, so that authenticating
// a request costs no database read: a profile of the write path showed the
// lookup at 7% of the server's CPU. It sits outside the lookup's deadline
// (boundedKeys): a key it holds costs no timer either (5% of the server's CPU
// in a profile of entitlement checks). Only found keys are kept, so a key made
// by `creditd keys create` works at once; keys cannot be revoked yet, and
// when they can, revocation must reach this cache.
type keyCache struct {
	next KeyLookup
	now  func() time.Time

	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	key     store.APIKey
	expires time.Time
}

// keyCacheTTL bounds how long a key is trusted without a read.
const keyCacheTTL = time.Minute

// keyCacheMax bounds the cache: past it, it starts over.
const keyCacheMax = 10_000

func newKeyCache(next KeyLookup, now func() time.Time) *keyCache {
	return &keyCache{next: next, now: now, keys: make(map[string]cachedKey)}
}

func (c *keyCache) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	now := c.now()
	c.mu.Lock()
	k, ok := c.keys[hash]
	c.mu.Unlock()
	if ok && now.Before(k.expires) {
		return k.key, nil
	}
	key, err := c.next.APIKeyByHash(ctx, hash)
	if err != nil {
		return store.APIKey{}, err
	}
	c.mu.Lock()
	if len(c.keys) >= keyCacheMax {
		clear(c.keys)
	}
	c.keys[hash] = cachedKey{key: key, expires: now.Add(keyCacheTTL)}
	c.mu.Unlock()
	return key, nil
}
