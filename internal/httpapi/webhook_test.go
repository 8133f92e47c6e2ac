package httpapi_test

// Webhook events over the API: which changes record which events, with what
// body (docs/api.md, "Webhooks"), and how the delivery log reads. Delivery
// itself is in webhook_delivery_test.go.

import (
	"context"
	b64 "encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/ledger"
)

// webhookServer is a test server whose service records webhook events, as
// creditd serve runs it (ledger.WithWebhooks with the API's encoder), with
// the service at hand for a dispatcher.
type webhookServer struct {
	*testServer
	svc *ledger.Service
}

// forEachWebhookBackend is forEachBackend on webhook servers.
func forEachWebhookBackend(t *testing.T, test func(t *testing.T, ts *webhookServer)) {
	forEachBackend(t, func(t *testing.T, ts *testServer) { test(t, withWebhooks(t, ts)) })
}

// withWebhooks points ts at a second API over the same store, whose service
// records webhook events; ts's own service stays idle. Errors it logs fail
// the test, as on the test server.
func withWebhooks(t *testing.T, ts *testServer) *webhookServer {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := ledger.New(ts.store, ts.clock.Now, ledger.WithWebhooks(httpapi.EncodeEvent, nil))
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(httpapi.NewServer(svc, ts.store, log, func(context.Context) error { return nil }))
	ts.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		if s := logs.String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("the webhook server logged errors:\n%s", s)
		}
	})
	return &webhookServer{testServer: ts, svc: svc}
}

// webhookSecret is the raw key every test signs with; secretParam is how
// the tenant settings take it.
var webhookSecret = []byte("a webhook secret of 32 bytes....")

func secretParam(key []byte) string { return "whsec_" + b64.StdEncoding.EncodeToString(key) }

// configure patches the settings of apiKey's environment ("": the test key).
func (ts *webhookServer) configure(t *testing.T, apiKey string, body obj) {
	t.Helper()
	var me struct{ ID string }
	ts.do(t, req{method: http.MethodGet, path: "/v1/tenants/me", apiKey: apiKey}).want(t, http.StatusOK).decode(t, &me)
	ts.do(t, req{method: http.MethodPatch, path: "/v1/tenants/" + me.ID + "/config", apiKey: apiKey, body: body}).want(t, http.StatusOK)
}

// enableWebhooks sends the test environment's events to url, with extra settings.
func (ts *webhookServer) enableWebhooks(t *testing.T, url string, extra obj) {
	t.Helper()
	body := obj{"webhook_url": url, "webhook_secret": secretParam(webhookSecret)}
	for k, v := range extra {
		body[k] = v
	}
	ts.configure(t, "", body)
}

// nowhere is a webhook URL for tests that deliver nothing.
const nowhere = "http://127.0.0.1:9/hooks"

type webhookAttemptResp struct {
	At         string `json:"at"`
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error"`
	DurationMS *int64 `json:"duration_ms"`
}

type webhookEventResp struct {
	ID            string               `json:"id"`
	Type          string               `json:"type"`
	CustomerID    string               `json:"customer_id"`
	Status        string               `json:"status"`
	AttemptCount  int                  `json:"attempt_count"`
	NextAttemptAt *string              `json:"next_attempt_at"`
	DeliveredAt   *string              `json:"delivered_at"`
	CreatedAt     string               `json:"created_at"`
	Payload       json.RawMessage      `json:"payload"`
	Attempts      []webhookAttemptResp `json:"attempts"`
}

// payloadResp is a webhook's body.
type payloadResp struct {
	ID        string                     `json:"id"`
	Type      string                     `json:"type"`
	Timestamp string                     `json:"timestamp"`
	Data      map[string]json.RawMessage `json:"data"`
}

// events reads the whole delivery log with the query's filters ("&type=…"),
// in commit order (the API answers newest first).
func (ts *webhookServer) events(t *testing.T, query string) []webhookEventResp {
	t.Helper()
	evs := listAll[webhookEventResp](t, ts.testServer, "/v1/webhooks/events?limit=500"+query)
	slices.Reverse(evs)
	return evs
}

func typesOf(evs []webhookEventResp) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func idsOf(evs []webhookEventResp) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// sameJSON fails unless got and want are equal JSON values.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %s is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want %s is not JSON: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// wantEvent is an event a change must have recorded: its type, whose it is
// (external id) and what it says of the balance, the time it committed and
// what its type adds to data.
type wantEvent struct {
	typ                string
	customer           string
	balance, effective int64
	at                 time.Time
	check              func(t *testing.T, data map[string]json.RawMessage)
}

// Every change through the API records its events in commit order, each
// body fixed as the contract says: the envelope, the customer fields as the
// change left them, and what its type adds.
func TestWebhookEventsRecordChanges(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		ts.createMetric(t, "gen", perUnit(100))
		ts.createMetric(t, "transfer", perUnit(1))
		ts.createPlan(t, "boost", 2000, 500, nil)
		ts.enableWebhooks(t, nowhere, obj{"low_balance_threshold": 5000})

		var wants []wantEvent
		expect := func(typ, who string, balance, effective int64, check func(*testing.T, map[string]json.RawMessage)) {
			wants = append(wants, wantEvent{typ, who, balance, effective, ts.clock.Now(), check})
		}
		field := func(name string, want []byte) func(*testing.T, map[string]json.RawMessage) {
			return func(t *testing.T, data map[string]json.RawMessage) { sameJSON(t, "data."+name, data[name], want) }
		}

		// A grant: the block as the grant answered it.
		g := ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "ada", "credits": 10000}).want(t, http.StatusCreated)
		expect("credits.granted", "ada", 10000, 10000, field("block", g.body))

		// A usage: its event, cost and per-block debits, as the usage answered.
		ts.clock.Advance(time.Minute)
		var u struct {
			EventID          string          `json:"event_id"`
			EstimatedCost    int64           `json:"estimated_cost"`
			BalanceAfter     int64           `json:"balance_after"`
			EffectiveBalance int64           `json:"effective_balance"`
			Breakdown        json.RawMessage `json:"breakdown"`
		}
		ts.usage(t, "ada", "gen", 20).want(t, http.StatusOK).decode(t, &u)
		expect("credits.consumed", "ada", u.BalanceAfter, u.EffectiveBalance, func(t *testing.T, data map[string]json.RawMessage) {
			sameJSON(t, "data.event_id", data["event_id"], jsonBytes(t, u.EventID))
			sameJSON(t, "data.billable_metric_key", data["billable_metric_key"], []byte(`"gen"`))
			sameJSON(t, "data.units", data["units"], []byte(`20`))
			sameJSON(t, "data.amount", data["amount"], jsonBytes(t, u.EstimatedCost))
			sameJSON(t, "data.debits", data["debits"], u.Breakdown)
		})
		if u.BalanceAfter != 8000 || u.EffectiveBalance != 8000 {
			t.Fatalf("usage answer = %+v, want 8000 left", u)
		}

		// A batch: one event per accepted usage, in the batch's order.
		ts.clock.Advance(time.Minute)
		var b batchResp
		ts.post(t, "/v1/usage/batch", obj{"events": []obj{
			{"idempotency_key": "b1", "external_customer_id": "ada", "billable_metric_key": "gen", "units": 10},
			{"idempotency_key": "b2", "external_customer_id": "ada", "billable_metric_key": "gen", "units": 5},
		}}).want(t, http.StatusOK).decode(t, &b)
		if len(b.Results) != 2 || b.Results[0].Status != "accepted" || b.Results[1].Status != "accepted" {
			t.Fatalf("batch = %+v, want both accepted", b.Results)
		}
		for i, left := range []int64{7000, 6500} {
			r := b.Results[i]
			expect("credits.consumed", "ada", left, left, func(t *testing.T, data map[string]json.RawMessage) {
				sameJSON(t, "data.event_id", data["event_id"], jsonBytes(t, deref(r.EventID)))
				sameJSON(t, "data.amount", data["amount"], jsonBytes(t, deref(r.EstimatedCost)))
				// A batch answers no breakdown; the event has it all the same.
				var debits []debitResp
				var sum int64
				json.Unmarshal(data["debits"], &debits)
				for _, d := range debits {
					sum += d.Amount
				}
				if len(debits) == 0 || sum != deref(r.EstimatedCost) {
					t.Errorf("data.debits = %s, want blocks paying %d", data["debits"], deref(r.EstimatedCost))
				}
			})
		}

		// A hold placed records nothing of its own (5500 and 5000 left to
		// spend: not below the threshold); settling it does.
		ts.clock.Advance(time.Minute)
		var hold reservationResp
		ts.reserve(t, "ada", 10, 0).want(t, http.StatusCreated).decode(t, &hold)
		c := ts.post(t, "/v1/reserve/"+hold.ID+"/commit", obj{"actual_units": 5}).want(t, http.StatusOK)
		expect("reservation.committed", "ada", 6000, 6000, field("reservation", c.body))
		ts.clock.Advance(time.Minute)
		ts.reserve(t, "ada", 10, 0).want(t, http.StatusCreated).decode(t, &hold)
		r := ts.post(t, "/v1/reserve/"+hold.ID+"/release", nil).want(t, http.StatusOK)
		expect("reservation.released", "ada", 6000, 6000, field("reservation", r.body))

		// A purchase (2000 for 500 credits) is one event whose data is the
		// purchase answer; it takes ada below 5000: balance.low follows.
		ts.clock.Advance(time.Minute)
		p := ts.buy(t, "ada", "boost", "o1").want(t, http.StatusCreated)
		expect("plan.purchased", "ada", 4500, 4500, func(t *testing.T, data map[string]json.RawMessage) {
			sameJSON(t, "data", jsonBytes(t, data), p.body)
		})
		expect("balance.low", "ada", 4500, 4500, field("low_balance_threshold", []byte(`5000`)))

		// A linked transaction: its operations' events, then its own in the
		// queue of its first operation's customer.
		ts.clock.Advance(time.Minute)
		tx := ts.post(t, "/v1/transactions", transfer("ada", "bob", 500)).want(t, http.StatusCreated)
		var answer struct {
			Results []struct {
				EventID string `json:"event_id"`
			} `json:"results"`
		}
		tx.decode(t, &answer)
		expect("credits.consumed", "ada", 4000, 4000, func(t *testing.T, data map[string]json.RawMessage) {
			sameJSON(t, "data.event_id", data["event_id"], jsonBytes(t, answer.Results[0].EventID))
		})
		expect("credits.granted", "bob", 500, 500, nil)
		expect("transaction.committed", "ada", 4000, 4000, func(t *testing.T, data map[string]json.RawMessage) {
			var whole map[string]json.RawMessage
			tx.decode(t, &whole)
			for _, k := range []string{"id", "results", "metadata", "created_at"} {
				sameJSON(t, "data."+k, data[k], whole[k])
			}
		})

		// bob spends everything: balance.depleted follows his usage.
		ts.clock.Advance(time.Minute)
		ts.usage(t, "bob", "transfer", 500).want(t, http.StatusOK)
		expect("credits.consumed", "bob", 0, 0, nil)
		expect("balance.depleted", "bob", 0, 0, nil)

		got := ts.events(t, "")
		var types []string
		for _, w := range wants {
			types = append(types, w.typ)
		}
		if !slices.Equal(typesOf(got), types) {
			t.Fatalf("event types in commit order:\n got %v\nwant %v", typesOf(got), types)
		}
		customers := map[string]string{"ada": ts.balance(t, "ada").CustomerID, "bob": ts.balance(t, "bob").CustomerID}
		for i, w := range wants {
			t.Run(fmt.Sprintf("%02d_%s", i, w.typ), func(t *testing.T) {
				data := checkEnvelope(t, got[i], w, customers[w.customer])
				if w.check != nil {
					w.check(t, data)
				}
			})
		}
		if a, b := ts.balance(t, "ada"), ts.balance(t, "bob"); a.Balance != 4000 || b.Balance != 0 {
			t.Errorf("balances = %d, %d; want 4000 and 0 as the last events say", a.Balance, b.Balance)
		}
	})
}

func jsonBytes(t *testing.T, v any) []byte { return []byte(jsonOf(t, v)) }

// checkEnvelope checks what every event has: the log entry's fields, the
// body's envelope and the customer fields of its data, which it returns.
func checkEnvelope(t *testing.T, ev webhookEventResp, w wantEvent, customerID string) map[string]json.RawMessage {
	t.Helper()
	if ev.CustomerID != customerID || ev.Status != "pending" || ev.AttemptCount != 0 || ev.NextAttemptAt == nil ||
		ev.DeliveredAt != nil || len(ev.Attempts) != 0 {
		t.Errorf("log entry = %+v, want %s's, pending, never attempted", ev, customerID)
	}
	if created, err := time.Parse(time.RFC3339, ev.CreatedAt); err != nil || !created.Equal(w.at) {
		t.Errorf("created_at = %q, want %s", ev.CreatedAt, w.at.UTC().Format(time.RFC3339))
	}
	var p payloadResp
	var who struct {
		Data struct {
			CustomerID         *string `json:"customer_id"`
			ExternalCustomerID *string `json:"external_customer_id"`
			BalanceAfter       *int64  `json:"balance_after"`
			EffectiveBalance   *int64  `json:"effective_balance"`
		} `json:"data"`
	}
	if json.Unmarshal(ev.Payload, &p) != nil || json.Unmarshal(ev.Payload, &who) != nil {
		t.Fatalf("payload %s: not an event body", ev.Payload)
	}
	if p.ID != ev.ID || !strings.HasPrefix(p.ID, "whevt_") || p.Type != w.typ {
		t.Errorf("payload id %q, type %q; want the log's id %q (whevt_…), type %s", p.ID, p.Type, ev.ID, w.typ)
	}
	if stamp, err := time.Parse(time.RFC3339, p.Timestamp); err != nil || !stamp.Equal(w.at) {
		t.Errorf("payload timestamp = %q, want RFC 3339 for the commit time %s", p.Timestamp, w.at.UTC().Format(time.RFC3339))
	}
	if c := who.Data; deref(c.CustomerID) != customerID || deref(c.ExternalCustomerID) != w.customer ||
		c.BalanceAfter == nil || *c.BalanceAfter != w.balance || c.EffectiveBalance == nil || *c.EffectiveBalance != w.effective {
		t.Errorf("data customer fields = %s, want customer_id %s, external_customer_id %s, balance_after %d, effective_balance %d",
			jsonOf(t, c), customerID, w.customer, w.balance, w.effective)
	}
	return p.Data
}
