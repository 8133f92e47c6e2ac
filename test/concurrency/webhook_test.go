package concurrency

// Webhooks end to end, through real creditd processes and a receiver that
// verifies every signature with the Standard Webhooks library:
//
//   - a load run of more than 10,000 events (grants and batched usage over
//     20 customers) is delivered whole, each event exactly once, in each
//     customer's order, by two instances on one PostgreSQL (and one on
//     SQLite): two dispatchers never send one event twice;
//   - while the receiver fails, retries follow the schedule; an instance
//     killed (SIGKILL) with events committed but not delivered loses none:
//     a restarted instance (SQLite) or the other one (PostgreSQL) delivers
//     them once the dead one's lease ends.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/webhook/webhooktest"
)

var webhookSecret = []byte("creditd-test-webhook-secret-0123")

const (
	webhookCustomers = 20
	webhookBatches   = 40
	webhookBatchSize = 250
)

func webhookCust(i int) string { return fmt.Sprintf("wh-cust-%02d", i) }

// configureWebhooks points the key's environment at the receiver.
func configureWebhooks(t *testing.T, a *api, base, receiver string) {
	t.Helper()
	var me struct {
		ID string `json:"id"`
	}
	a.must(t, http.MethodGet, base+"/v1/tenants/me", "", nil, http.StatusOK, &me)
	a.must(t, http.MethodPatch, base+"/v1/tenants/"+me.ID+"/config", "webhook-config", map[string]any{
		"webhook_url": receiver + "/hooks", "webhook_secret": base64.StdEncoding.EncodeToString(webhookSecret),
	}, http.StatusOK, nil)
}

// webhookEventLog is an event of GET /v1/webhooks/events.
type webhookEventLog struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	CustomerID   string `json:"customer_id"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	Attempts     []struct {
		At         time.Time `json:"at"`
		StatusCode *int      `json:"status_code"`
	} `json:"attempts"`
}

// webhookLog reads the whole delivery log.
func webhookLog(t *testing.T, a *api, base string) []webhookEventLog {
	t.Helper()
	var all []webhookEventLog
	cursor := ""
	for {
		var page struct {
			Data       []webhookEventLog `json:"data"`
			Pagination struct {
				HasMore    bool    `json:"has_more"`
				NextCursor *string `json:"next_cursor"`
			} `json:"pagination"`
		}
		u := base + "/v1/webhooks/events?limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		a.must(t, http.MethodGet, u, "", nil, http.StatusOK, &page)
		all = append(all, page.Data...)
		if !page.Pagination.HasMore {
			return all
		}
		cursor = *page.Pagination.NextCursor
	}
}

// webhookLoad grants to every customer, then sends the usage batches over
// the instances, 4 at a time; it returns how many events they made.
func webhookLoad(t *testing.T, c *cluster, prefix string) int {
	t.Helper()
	for i := range webhookCustomers {
		c.api.must(t, http.MethodPost, c.insts[i%len(c.insts)].base+"/v1/topup/grant", fmt.Sprintf("%s-grant-%d", prefix, i),
			map[string]any{"external_customer_id": webhookCust(i), "credits": 100_000_000, "source": "topup"}, http.StatusCreated, nil)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for b := range webhookBatches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			events := make([]map[string]any, webhookBatchSize)
			for j := range events {
				events[j] = map[string]any{"external_customer_id": webhookCust((b + j) % webhookCustomers), "billable_metric_key": metricKey,
					"units": 1 + j%7, "idempotency_key": fmt.Sprintf("%s-b%d-e%d", prefix, b, j)}
			}
			body, _ := json.Marshal(map[string]any{"events": events})
			// A batch refused for a moment (503) is retried under its key,
			// as a client would: it takes effect once.
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				r, err := c.api.do(ctx, http.MethodPost, c.insts[b%len(c.insts)].base+"/v1/usage/batch", fmt.Sprintf("%s-batch-%d", prefix, b), body)
				cancel()
				if err == nil && r.status == http.StatusOK {
					return
				}
				if attempt == 5 || (err == nil && r.status != http.StatusServiceUnavailable) {
					t.Errorf("batch %d: %v %d %s", b, err, r.status, r.body)
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return webhookCustomers + webhookBatches*webhookBatchSize
}

// checkCustomerOrder checks that each customer's events arrived in commit
// order: its grant first, then usages whose balance only went down.
func checkCustomerOrder(t *testing.T, events []webhooktest.Event) {
	t.Helper()
	last := map[string]int64{}
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			continue // a redelivery: its first arrival was checked
		}
		seen[e.ID] = true
		var d struct {
			BalanceAfter int64 `json:"balance_after"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("event %s: data %s: %v", e.ID, e.Data, err)
		}
		prev, ok := last[e.CustomerID]
		switch {
		case e.Type == "credits.granted":
			if ok {
				t.Errorf("customer %s: credits.granted %s arrived after its usage events", e.CustomerID, e.ID)
			}
		case !ok:
			t.Errorf("customer %s: %s %s arrived before its grant", e.CustomerID, e.Type, e.ID)
		case d.BalanceAfter >= prev:
			t.Errorf("customer %s: %s %s has balance_after %d after %d: out of commit order", e.CustomerID, e.Type, e.ID, d.BalanceAfter, prev)
		}
		last[e.CustomerID] = d.BalanceAfter
	}
}

func waitEvents(t *testing.T, r *webhooktest.Receiver, n int, within time.Duration) []webhooktest.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	evs, err := r.Wait(ctx, n)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	return evs
}

func TestWebhooksLoadDeliveredOncePostgresTwoInstances(t *testing.T) {
	runWebhookLoad(t, postgresCluster(t, 2))
}

func TestWebhooksLoadDeliveredOnceSQLite(t *testing.T) {
	runWebhookLoad(t, sqliteCluster(t))
}

func runWebhookLoad(t *testing.T, c *cluster) {
	recv := webhooktest.New(t, webhookSecret)
	configureWebhooks(t, c.api, c.insts[0].base, recv.URL)
	n := webhookLoad(t, c, "load")
	waitEvents(t, recv, n, 3*time.Minute)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	evs := recv.Events()
	if len(evs) != n {
		t.Errorf("receiver accepted %d deliveries, want %d: one per event", len(evs), n)
	}
	for _, e := range evs {
		if d := recv.Deliveries(e.ID); d != 1 {
			t.Errorf("event %s delivered %d times", e.ID, d)
		}
	}
	if f := recv.Failures(); len(f) > 0 {
		t.Errorf("%d deliveries failed verification, the first: %s", len(f), f[0].Reason)
	}
	checkCustomerOrder(t, evs)
	log := webhookLog(t, c.api, c.insts[0].base)
	if len(log) != n {
		t.Errorf("delivery log holds %d events, want %d", len(log), n)
	}
	for _, e := range log {
		if e.Status != "delivered" || e.AttemptCount != 1 {
			t.Errorf("event %s: %s after %d attempts, want delivered at the first", e.ID, e.Status, e.AttemptCount)
			break
		}
	}
}

func TestWebhooksRetryAndSurviveKillSQLite(t *testing.T) {
	skipShort(t)
	dbURL := filepath.Join(t.TempDir(), "creditd.db")
	runWebhookKill(t, dbURL, 1)
}

func TestWebhooksRetryAndSurviveKillPostgres(t *testing.T) {
	skipShort(t)
	runWebhookKill(t, pgtest.NewDatabase(t), 2)
}

// webhookEnv makes retries and leases short enough for a test.
var webhookEnv = []string{
	"CREDITD_WEBHOOK_RETRY_SCHEDULE=200ms,400ms,800ms,1s,1s,1s,1s",
	"CREDITD_WEBHOOK_TIMEOUT=1s",
	"CREDITD_WEBHOOK_LEASE=8s",
	"CREDITD_WEBHOOK_POLL=100ms",
}

var retrySchedule = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}

func runWebhookKill(t *testing.T, dbURL string, instances int) {
	hc := newHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	key := testKey(t)
	a := &api{hc: hc, key: key}
	c := &cluster{dbURL: dbURL, api: a}
	for i := range instances {
		c.insts = append(c.insts, startInstance(t, fmt.Sprintf("creditd-%d", i+1), dbURL, key, hc, webhookEnv...))
	}
	base := c.insts[0].base
	a.must(t, http.MethodPost, base+"/v1/billable-metrics", "setup-metric", map[string]any{"key": metricKey, "name": "units"}, http.StatusCreated, nil)
	a.must(t, http.MethodPost, base+"/v1/metering-rules", "setup-rule",
		map[string]any{"billable_metric_key": metricKey, "cost_type": "per_unit", "unit_cost": 1}, http.StatusCreated, nil)
	recv := webhooktest.New(t, webhookSecret)
	configureWebhooks(t, a, base, recv.URL)

	// Every attempt fails while the events are committed, and the instance
	// that made them dies with all of them undelivered.
	recv.Fail(http.StatusInternalServerError)
	for i := range webhookCustomers {
		a.must(t, http.MethodPost, base+"/v1/topup/grant", fmt.Sprintf("kill-grant-%d", i),
			map[string]any{"external_customer_id": webhookCust(i), "credits": 1_000_000, "source": "topup"}, http.StatusCreated, nil)
		a.must(t, http.MethodPost, base+"/v1/usage", fmt.Sprintf("kill-usage-%d", i),
			map[string]any{"external_customer_id": webhookCust(i), "billable_metric_key": metricKey, "units": 10}, http.StatusOK, nil)
	}
	n := 2 * webhookCustomers
	time.Sleep(1500 * time.Millisecond) // a few failed attempts each
	c.insts[0].kill(t)
	if instances == 1 {
		c.insts[0] = startInstance(t, "creditd-restarted", dbURL, key, hc, webhookEnv...)
	}
	recv.Recover()
	evs := waitEvents(t, recv, n, 90*time.Second)
	checkCustomerOrder(t, evs)
	if f := recv.Failures(); len(f) > 0 {
		t.Errorf("%d deliveries failed verification, the first: %s", len(f), f[0].Reason)
	}
	live := c.insts[len(c.insts)-1].base
	log := webhookLog(t, a, live)
	got := map[string]bool{}
	for _, e := range evs {
		got[e.ID] = true
	}
	if len(log) != n {
		t.Errorf("delivery log holds %d events, want %d", len(log), n)
	}
	for _, e := range log {
		if !got[e.ID] {
			t.Errorf("event %s (%s) was never delivered", e.ID, e.Type)
		}
		// The failed attempts before the kill follow the schedule: each
		// retry waits at least its step (a poll and a claim may add to it).
		for k := 1; k < len(e.Attempts) && k <= len(retrySchedule); k++ {
			code := e.Attempts[k-1].StatusCode
			if code == nil || *code != http.StatusInternalServerError {
				continue
			}
			if gap := e.Attempts[k].At.Sub(e.Attempts[k-1].At); gap < retrySchedule[k-1]-time.Millisecond {
				t.Errorf("event %s: attempt %d came %v after attempt %d, before the schedule's %v", e.ID, k+1, gap, k, retrySchedule[k-1])
			}
		}
	}
	var health struct {
		Pending int64 `json:"pending"`
		Failed  int64 `json:"failed"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.must(t, http.MethodGet, live+"/v1/webhooks/health", "", nil, http.StatusOK, &health)
		if health.Pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if health.Pending != 0 || health.Failed != 0 {
		t.Errorf("health: %d pending, %d failed; want none", health.Pending, health.Failed)
	}
}
