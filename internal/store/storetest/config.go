package storetest

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

func testConfig(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, other := newScope(t, s), newScope(t, s)
		_, err := s.ConfigGet(ctx, sc)
		wantErr(t, "ConfigGet(never set)", err, store.ErrNotFound)

		threshold := int64(5000)
		cfg := store.TenantConfig{WebhookURL: "https://example.test/hooks", WebhookSecret: []byte("0123456789abcdef0123"),
			LowBalanceThreshold: &threshold, UpdatedAt: t0}
		mustTransact(t, s, func(q store.Q) error { return q.ConfigPut(ctx, sc, cfg) })
		got, err := s.ConfigGet(ctx, sc)
		wantNoErr(t, "ConfigGet", err)
		wantSame(t, "ConfigGet", got, cfg)

		// A second put replaces every setting, clearing what it leaves out.
		cleared := store.TenantConfig{WebhookURL: "http://127.0.0.1:9000/", UpdatedAt: t0.Add(time.Minute)}
		mustTransact(t, s, func(q store.Q) error { return q.ConfigPut(ctx, sc, cleared) })
		got, err = s.ConfigGet(ctx, sc)
		wantNoErr(t, "ConfigGet", err)
		if got.WebhookURL != cleared.WebhookURL || len(got.WebhookSecret) != 0 || got.LowBalanceThreshold != nil || !got.UpdatedAt.Equal(cleared.UpdatedAt) {
			t.Errorf("ConfigGet after a second put = %+v, want %+v", got, cleared)
		}
		_, err = s.ConfigGet(ctx, other)
		wantErr(t, "ConfigGet(another scope)", err, store.ErrNotFound)
	})
}

// mustTransact runs fn in one transaction, failing the test on an error.
func mustTransact(t *testing.T, s store.Store, fn func(q store.Q) error) {
	t.Helper()
	if err := s.Transact(t.Context(), fn); err != nil {
		t.Fatalf("Transact: %v", err)
	}
}
