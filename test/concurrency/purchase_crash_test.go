package concurrency

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// The purchase crash test: 200 plan purchases (one order per customer, each
// customer's wallet holding exactly the price) are sent by 16 clients while
// "creditd serve" is killed with SIGKILL at random instants (once a random
// share of the orders is answered, others in flight), three times.
// After every kill the server is restarted and every order not yet answered
// is retried, by its order id under a new Idempotency-Key, until it is.
// Then, on the database: every order is bought exactly once — one purchase
// row, one debit of the price, one plan block, both entries referencing
// the purchase — never a debit without its block, and every invariant
// holds.

const (
	purchaseOrders  = 200
	purchaseClients = 16
	purchaseKills   = 3
	purchasePrice   = 1000
	purchaseCredits = 5000
)

func TestPurchaseCrashSQLite(t *testing.T) {
	skipShort(t)
	runPurchaseCrash(t, filepath.Join(t.TempDir(), "creditd.db"))
}

func TestPurchaseCrashPostgres(t *testing.T) {
	skipShort(t)
	pg := startDurablePostgres(t)
	runPurchaseCrash(t, pg.URL())
}

func purchaseCust(i int) string { return fmt.Sprintf("buyer-%03d", i) }

func runPurchaseCrash(t *testing.T, dbURL string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("purchase crash test: %d orders, %d kills, seed %d", purchaseOrders, purchaseKills, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	hc := newHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	key := testKey(t)
	a := &api{hc: hc, key: key}
	in := startInstance(t, "creditd-buy-0", dbURL, key, hc)
	a.must(t, http.MethodPost, in.base+"/v1/plans", "setup-plan",
		map[string]any{"key": "pro", "name": "Pro", "price": purchasePrice, "credits": purchaseCredits, "duration_seconds": 30 * 24 * 3600},
		http.StatusCreated, nil)
	var wg sync.WaitGroup
	for i := range purchaseOrders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.must(t, http.MethodPost, in.base+"/v1/topup/grant", "setup-"+purchaseCust(i),
				map[string]any{"external_customer_id": purchaseCust(i), "credits": purchasePrice}, http.StatusCreated, nil)
		}()
	}
	wg.Wait()

	var mu sync.Mutex
	answered := make(map[int]string) // order → purchase id
	attempt := 0
	send := func(ctx context.Context, base string, i int) {
		mu.Lock()
		attempt++
		idem := fmt.Sprintf("buy-%03d-try-%d", i, attempt)
		mu.Unlock()
		body, _ := json.Marshal(map[string]any{"plan_key": "pro", "order_id": fmt.Sprintf("order-%03d", i)})
		rep, err := a.do(ctx, http.MethodPost, base+"/v1/customer-by-external-id/"+purchaseCust(i)+"/plan-purchases", idem, body)
		if err != nil {
			return // the server died or the wait ran out: unknown, retried later
		}
		var p struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		switch rep.status {
		case http.StatusCreated, http.StatusOK:
			if err := json.Unmarshal(rep.body, &p); err != nil || p.ID == "" {
				t.Errorf("order %d: answer %d without a purchase id: %s", i, rep.status, rep.body)
				return
			}
		case http.StatusServiceUnavailable:
			return
		default:
			t.Errorf("order %d: status %d: %s", i, rep.status, rep.body)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := answered[i]; ok && prev != p.ID {
			t.Errorf("order %d answered as purchase %s, then as %s: bought twice", i, prev, p.ID)
		}
		answered[i] = p.ID
	}
	answered0 := func() map[int]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(answered)
	}
	pending := func() []int {
		mu.Lock()
		defer mu.Unlock()
		var out []int
		for i := range purchaseOrders {
			if _, ok := answered[i]; !ok {
				out = append(out, i)
			}
		}
		return out
	}

	for kill := 0; kill <= purchaseKills && !t.Failed(); kill++ {
		todo := pending()
		if len(todo) == 0 {
			break
		}
		ctx, cancel := context.WithCancel(context.Background())
		work := make(chan int)
		var clients sync.WaitGroup
		for range purchaseClients {
			clients.Add(1)
			go func() {
				defer clients.Done()
				for i := range work {
					send(ctx, in.base, i)
				}
			}()
		}
		go func() {
			defer close(work)
			for _, i := range todo {
				select {
				case work <- i:
				case <-ctx.Done():
					return
				}
			}
		}()
		if kill < purchaseKills {
			// Kill once a random share of this round's orders is answered,
			// with up to purchaseClients others in flight.
			want := len(answered0()) + 1 + rng.IntN(max(1, len(todo)/2))
			for deadline := time.Now().Add(30 * time.Second); len(answered0()) < want && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			t.Logf("kill %d after %d of %d orders answered", kill+1, len(answered0()), purchaseOrders)
			in.kill(t)
			cancel()
			clients.Wait()
			in = startInstance(t, fmt.Sprintf("creditd-buy-%d", kill+1), dbURL, key, hc)
		} else {
			clients.Wait()
			cancel()
		}
	}
	// Whatever is still unanswered is retried until it is.
	for round := 0; len(pending()) > 0 && round < 5; round++ {
		for _, i := range pending() {
			send(context.Background(), in.base, i)
		}
	}
	if left := pending(); len(left) > 0 {
		t.Fatalf("%d orders never answered: %v", len(left), left)
	}
	hc.CloseIdleConnections()
	in.stop(t)
	checkPurchases(t, dbURL, answered)
}

// checkPurchases checks on the database that every order was bought once,
// wholly, as answered.
func checkPurchases(t *testing.T, dbURL string, answered map[int]string) {
	st := openStore(t, dbURL)
	defer st.Close()
	ctx := context.Background()
	err := st.Read(ctx, func(q store.Q) error {
		scopes, err := serverScopes(ctx, q)
		if err != nil {
			return err
		}
		sc := scopes[0] // the test key's environment
		for i := range purchaseOrders {
			c, err := q.CustomerByExternalID(ctx, sc, purchaseCust(i))
			if err != nil {
				return fmt.Errorf("customer %d: %w", i, err)
			}
			list, err := q.PurchaseList(ctx, sc, c.ID, store.Page{Limit: 10})
			if err != nil {
				return err
			}
			if len(list) != 1 || list[0].ID != answered[i] {
				t.Errorf("order %d: %d purchases (%+v), want exactly the one answered, %s", i, len(list), list, answered[i])
				continue
			}
			p := list[0]
			entries, err := q.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 50})
			if err != nil {
				return err
			}
			var debited, granted int64
			for _, e := range entries {
				if e.ReferenceType != "plan_purchase" {
					continue
				}
				if e.ReferenceID != p.ID {
					t.Errorf("order %d: an entry of another purchase, %s", i, e.ReferenceID)
				}
				switch e.Type {
				case credit.EntryPurchase:
					debited -= e.Delta
				case credit.EntryGrant:
					granted += e.Delta
					if e.BlockID != p.BlockID {
						t.Errorf("order %d: grant entry of block %s, want the purchase's %s", i, e.BlockID, p.BlockID)
					}
				}
			}
			if debited != purchasePrice || granted != purchaseCredits {
				t.Errorf("order %d: debited %d and granted %d in the ledger, want %d and %d: one whole purchase",
					i, debited, granted, purchasePrice, purchaseCredits)
			}
			if _, err := q.BlockGet(ctx, sc, c.ID, p.BlockID); err != nil {
				t.Errorf("order %d: the plan block %s: %v", i, p.BlockID, err)
			}
			if c.Account.Balance != purchaseCredits {
				t.Errorf("order %d: balance %d, want %d (the wallet spent, the plan granted)", i, c.Account.Balance, purchaseCredits)
			}
		}
		n, err := checkInvariantsIn(ctx, q)
		if err != nil {
			return err
		}
		if n < purchaseOrders {
			t.Errorf("invariants covered %d customers, want at least %d", n, purchaseOrders)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
