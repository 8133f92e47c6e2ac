package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

// Instances started at the same moment on one empty PostgreSQL database
// make one tenant and one pair of keys between them, not one each.
func TestBootstrapRacesMakeOneTenant(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	const instances = 6
	stores := make([]interface {
		Close() error
	}, 0, instances)
	var outs [instances]bytes.Buffer
	var wg sync.WaitGroup
	errs := make([]error, instances)
	for i := range instances {
		st, err := openStore(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bootstrap(ctx, st, "", time.Now(), &outs[i])
		}()
	}
	wg.Wait()
	for _, st := range stores {
		st.Close()
	}
	printed := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("bootstrap %d: %v", i, err)
		}
		if strings.Contains(outs[i].String(), "API keys") {
			printed++
		}
	}
	if printed != 1 {
		t.Errorf("%d instances printed new keys, want exactly 1", printed)
	}
	st, err := openStore(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.APIKeyCount(ctx); err != nil || n != 2 {
		t.Errorf("API keys = %d (%v), want one live and one test key", n, err)
	}
}
