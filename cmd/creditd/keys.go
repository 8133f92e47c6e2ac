package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New(`usage: creditd keys create --env test|live`)
	}
	var c config
	fs := c.flags("keys create", getenv, stderr)
	env := fs.String("env", "test", "environment of the key: test or live")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *env != apikey.Test && *env != apikey.Live {
		return fmt.Errorf("--env must be test or live, not %q", *env)
	}
	st, err := openStore(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := apikey.New(*env)
	if err != nil {
		return err
	}
	now := time.Now()
	err = st.Transact(ctx, func(q store.Q) error {
		t, err := q.TenantFirst(ctx)
		if errors.Is(err, store.ErrNotFound) {
			t = store.Tenant{ID: ids.UUID(), Name: "default", CreatedAt: now}
			err = q.TenantCreate(ctx, t)
		}
		if err != nil {
			return err
		}
		rec, err := apikey.Record(key, t.ID, now)
		if err != nil {
			return err
		}
		return q.APIKeyCreate(ctx, rec)
	})
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	fmt.Fprintln(stdout, key)
	return nil
}

// bootstrap gives an empty database its tenant and first keys: the key
// CREDITD_BOOTSTRAP_KEY names, or a new live and test key printed once.
// A database that has keys is left alone.
func bootstrap(ctx context.Context, st store.Store, given string, now time.Time, stdout io.Writer) error {
	var created []string
	err := st.Transact(ctx, func(q store.Q) error {
		created = nil
		// Instances started together on one empty database must not each
		// make a tenant: the first takes this lock (a transaction-scoped
		// advisory lock on PostgreSQL; SQLite's write transaction already
		// serializes), the others then count its keys.
		if err := q.IdempotencyLockAll(ctx, []store.IdemKey{{Key: "creditd:bootstrap"}}); err != nil {
			return err
		}
		n, err := q.APIKeyCount(ctx)
		if err != nil || n > 0 {
			return err
		}
		t, err := q.TenantFirst(ctx)
		if errors.Is(err, store.ErrNotFound) {
			t = store.Tenant{ID: ids.UUID(), Name: "default", CreatedAt: now}
			err = q.TenantCreate(ctx, t)
		}
		if err != nil {
			return err
		}
		keys := []string{given}
		if given == "" {
			keys = nil
			for _, env := range []string{apikey.Live, apikey.Test} {
				k, err := apikey.New(env)
				if err != nil {
					return err
				}
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			rec, err := apikey.Record(k, t.ID, now)
			if err != nil {
				return fmt.Errorf("CREDITD_BOOTSTRAP_KEY: %w", err)
			}
			if err := q.APIKeyCreate(ctx, rec); err != nil {
				return err
			}
		}
		if given == "" {
			created = keys
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if len(created) > 0 {
		fmt.Fprintf(stdout, "creditd: new database; API keys (shown once, only their hashes are stored):\n  live: %s\n  test: %s\n", created[0], created[1])
	}
	return nil
}
