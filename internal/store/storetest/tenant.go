package storetest

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func testTenant(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		want := store.Tenant{ID: ids.UUID(), Name: "Acme Inc.", CreatedAt: at(1234 * time.Millisecond)}
		transact(t, s, func(q store.Q) error { return q.TenantCreate(ctx, want) })

		got, err := s.TenantGet(ctx, want.ID)
		wantNoErr(t, "TenantGet", err)
		wantSame(t, "TenantGet", got, want)
	})

	t.Run("CreateDuplicate", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		tn := newTenant(t, s)
		err := s.Transact(ctx, func(q store.Q) error { return q.TenantCreate(ctx, tn) })
		wantErr(t, "TenantCreate(same id)", err, store.ErrConflict)
	})

	t.Run("GetUnknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		newTenant(t, s)
		_, err := s.TenantGet(ctx, ids.UUID())
		wantErr(t, "TenantGet(unknown)", err, store.ErrNotFound)
	})

	t.Run("First", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		_, err := s.TenantFirst(ctx)
		wantErr(t, "TenantFirst() on an empty store", err, store.ErrNotFound)

		// Created out of order: the oldest wins, not the first inserted.
		second := store.Tenant{ID: ids.UUID(), Name: "second", CreatedAt: at(2 * time.Second)}
		first := store.Tenant{ID: ids.UUID(), Name: "first", CreatedAt: at(time.Second)}
		third := store.Tenant{ID: ids.UUID(), Name: "third", CreatedAt: at(3 * time.Second)}
		for _, tn := range []store.Tenant{second, first, third} {
			transact(t, s, func(q store.Q) error { return q.TenantCreate(ctx, tn) })
		}
		got, err := s.TenantFirst(ctx)
		wantNoErr(t, "TenantFirst", err)
		wantSame(t, "TenantFirst", got, first)
	})
}

func testAPIKey(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGetCount", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		n, err := s.APIKeyCount(ctx)
		wantNoErr(t, "APIKeyCount", err)
		if n != 0 {
			t.Errorf("APIKeyCount() on an empty store = %d, want 0", n)
		}

		tn := newTenant(t, s)
		live := store.APIKey{Hash: keyHash(), Prefix: "ck_live_ab12", TenantID: tn.ID, Env: "live", CreatedAt: at(time.Millisecond)}
		test := store.APIKey{Hash: keyHash(), Prefix: "ck_test_cd34", TenantID: tn.ID, Env: "test", CreatedAt: at(2 * time.Millisecond)}
		transact(t, s, func(q store.Q) error {
			if err := q.APIKeyCreate(ctx, live); err != nil {
				return err
			}
			return q.APIKeyCreate(ctx, test)
		})

		for _, want := range []store.APIKey{live, test} {
			got, err := s.APIKeyByHash(ctx, want.Hash)
			wantNoErr(t, "APIKeyByHash", err)
			wantSame(t, "APIKeyByHash", got, want)
		}
		n, err = s.APIKeyCount(ctx)
		wantNoErr(t, "APIKeyCount", err)
		if n != 2 {
			t.Errorf("APIKeyCount() = %d, want 2", n)
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		_, err := s.APIKeyByHash(ctx, keyHash())
		wantErr(t, "APIKeyByHash(unknown)", err, store.ErrNotFound)
	})

	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		tn := newTenant(t, s)
		k := store.APIKey{Hash: keyHash(), Prefix: "ck_live_ab12", TenantID: tn.ID, Env: "live", CreatedAt: t0}
		transact(t, s, func(q store.Q) error { return q.APIKeyCreate(ctx, k) })
		err := s.Transact(ctx, func(q store.Q) error { return q.APIKeyCreate(ctx, k) })
		wantErr(t, "APIKeyCreate(same hash)", err, store.ErrConflict)
	})
}
