package httpapi_test

// The delivery log and its walls: no event without a committed change and
// configured webhooks, the log's filters and pages, and one event's read.

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

type webhookHealthResp struct {
	Pending              int64   `json:"pending"`
	Failed               int64   `json:"failed"`
	DeliveredLast24h     int64   `json:"delivered_last_24h"`
	OldestPendingEventID *string `json:"oldest_pending_event_id"`
	OldestPendingAgeSecs *int64  `json:"oldest_pending_age_seconds"`
	NextAttemptAt        *string `json:"next_attempt_at"`
	WebhookConfigured    bool    `json:"webhook_configured"`
	Note                 string  `json:"note"`
}

// health reads GET /v1/webhooks/health with apiKey ("": the test key).
func (ts *webhookServer) health(t *testing.T, apiKey string) webhookHealthResp {
	t.Helper()
	var h webhookHealthResp
	ts.do(t, req{method: http.MethodGet, path: "/v1/webhooks/health", apiKey: apiKey}).want(t, http.StatusOK).decode(t, &h)
	return h
}

// eventsAs reads the first page of apiKey's delivery log.
func (ts *webhookServer) eventsAs(t *testing.T, apiKey string) []webhookEventResp {
	t.Helper()
	var l listResp[webhookEventResp]
	ts.do(t, req{method: http.MethodGet, path: "/v1/webhooks/events?limit=500", apiKey: apiKey}).want(t, http.StatusOK).decode(t, &l)
	return l.Data
}

// Events are recorded only while the environment has both a webhook URL and
// a secret, from the next change on.
func TestWebhookEventsOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		ts.createMetric(t, "gen", perUnit(1))
		quiet := func(after string) {
			t.Helper()
			if evs := ts.events(t, ""); len(evs) != 0 {
				t.Errorf("after %s the log holds %v, want nothing", after, typesOf(evs))
			}
			if h := ts.health(t, ""); h.WebhookConfigured || h.Pending != 0 || h.OldestPendingEventID != nil || h.Note == "" {
				t.Errorf("health after %s = %+v, want not configured (with a note), nothing pending", after, h)
			}
		}
		ts.grant(t, "ada", 1000, nil)
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		quiet("changes without settings")

		ts.configure(t, "", obj{"webhook_url": nowhere})
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		quiet("a change with only a webhook_url")

		ts.configure(t, "", obj{"webhook_url": "", "webhook_secret": secretParam(webhookSecret)})
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		quiet("a change with only a webhook_secret")

		// Both set: nothing of before is replayed; the next change records.
		ts.configure(t, "", obj{"webhook_url": nowhere})
		if h := ts.health(t, ""); !h.WebhookConfigured || h.Pending != 0 || h.Note != "" {
			t.Errorf("health once configured = %+v, want configured, nothing pending, no note", h)
		}
		if evs := ts.events(t, ""); len(evs) != 0 {
			t.Errorf("configuring recorded %v, want nothing: earlier changes are not replayed", typesOf(evs))
		}
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		if evs := ts.events(t, ""); !slices.Equal(typesOf(evs), []string{"credits.consumed"}) {
			t.Fatalf("after a usage the log holds %v, want one credits.consumed", typesOf(evs))
		}

		// The live environment has settings of its own: none.
		ts.do(t, req{method: http.MethodPost, path: "/v1/topup/grant", apiKey: ts.liveKey, body: obj{"external_customer_id": "ada", "credits": 5}}).
			want(t, http.StatusCreated)
		if evs := ts.eventsAs(t, ts.liveKey); len(evs) != 0 {
			t.Errorf("live log = %v, want nothing: live has no webhook settings", typesOf(evs))
		}
		if h := ts.health(t, ts.liveKey); h.WebhookConfigured || h.Pending != 0 {
			t.Errorf("live health = %+v, want not configured, nothing pending", h)
		}

		// Clearing the URL stops recording; the log keeps what it has.
		ts.configure(t, "", obj{"webhook_url": ""})
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		if evs := ts.events(t, ""); len(evs) != 1 {
			t.Errorf("after clearing the URL the log holds %v, want the one event of before", typesOf(evs))
		}
		if h := ts.health(t, ""); h.WebhookConfigured || h.Pending != 1 {
			t.Errorf("health after clearing the URL = %+v, want not configured, the old event still pending", h)
		}
	})
}

// A refused command, and a linked transaction that fails, record no event:
// they change nothing at all.
func TestWebhookNoEventsForRefusedChanges(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		ts.createMetric(t, "gen", perUnit(1))
		ts.createMetric(t, "transfer", perUnit(1))
		ts.enableWebhooks(t, nowhere, obj{"low_balance_threshold": 500})
		ts.grant(t, "ada", 1000, nil)
		before := ts.events(t, "")

		snap := ts.snapshot(t)
		ts.usage(t, "ada", "gen", 5000).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		ts.usage(t, "ada", "nope", 1).wantProblem(t, http.StatusNotFound, "not-found")
		ts.reserve(t, "ada", 5000, 0).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		// The first two operations would record a consumed, a granted and a
		// balance.low; the third is refused, so the whole is.
		ts.post(t, "/v1/transactions", obj{"operations": []obj{
			{"type": "usage", "external_customer_id": "ada", "billable_metric_key": "transfer", "units": 600},
			{"type": "grant", "external_customer_id": "carol", "credits": 300},
			{"type": "usage", "external_customer_id": "ada", "billable_metric_key": "transfer", "units": 5000},
		}}).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		snap.unchanged(t, "refused usages and a failed linked transaction")

		if after := ts.events(t, ""); !slices.Equal(idsOf(after), idsOf(before)) {
			t.Errorf("log after the refusals = %v, want only the grant's %v", typesOf(after), typesOf(before))
		}
		if h := ts.health(t, ""); h.Pending != int64(len(before)) {
			t.Errorf("health pending = %d, want %d", h.Pending, len(before))
		}
	})
}

// The log filters on one status and one type, pages newest first, and
// refuses a filter it does not know, naming it.
func TestWebhookEventFilters(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		ts.createMetric(t, "gen", perUnit(1))
		ts.enableWebhooks(t, nowhere, nil)
		for _, who := range []string{"ada", "bob", "cyd"} {
			ts.grant(t, who, 100, nil)
			ts.usage(t, who, "gen", 10).want(t, http.StatusOK)
		}
		all := ts.events(t, "")
		if want := []string{"credits.granted", "credits.consumed", "credits.granted", "credits.consumed", "credits.granted", "credits.consumed"}; !slices.Equal(typesOf(all), want) {
			t.Fatalf("log = %v, want %v", typesOf(all), want)
		}
		of := func(typ string) []string {
			var out []string
			for _, e := range all {
				if e.Type == typ {
					out = append(out, e.ID)
				}
			}
			return out
		}
		for query, want := range map[string][]string{
			"&type=credits.granted":                 of("credits.granted"),
			"&type=credits.consumed":                of("credits.consumed"),
			"&type=balance.low":                     nil,
			"&status=pending":                       idsOf(all),
			"&status=delivered":                     nil,
			"&status=failed":                        nil,
			"&status=pending&type=credits.consumed": of("credits.consumed"),
			"&status=failed&type=credits.consumed":  nil,
		} {
			if got := idsOf(ts.events(t, query)); !slices.Equal(got, want) {
				t.Errorf("log%s = %v, want %v", query, got, want)
			}
		}

		for _, tc := range []struct{ query, field string }{
			{"status=sent", "status"},
			{"status=PENDING", "status"},
			{"type=credits.spent", "type"},
			{"type=credits", "type"},
			{"limit=0", "limit"},
			{"limit=501", "limit"},
			{"cursor=%21%21", "cursor"},
		} {
			ts.get(t, "/v1/webhooks/events?"+tc.query).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
		}

		// Pages of 4: newest first, the cursor going on where the page ended.
		var page listResp[webhookEventResp]
		ts.get(t, "/v1/webhooks/events?limit=4").want(t, http.StatusOK).decode(t, &page)
		newest := slices.Clone(idsOf(all))
		slices.Reverse(newest)
		if !slices.Equal(idsOf(page.Data), newest[:4]) || !page.Pagination.HasMore || page.Pagination.NextCursor == nil {
			t.Fatalf("first page = %v (%+v), want %v and more", idsOf(page.Data), page.Pagination, newest[:4])
		}
		ts.get(t, "/v1/webhooks/events?limit=4&cursor="+url.QueryEscape(*page.Pagination.NextCursor)).want(t, http.StatusOK).decode(t, &page)
		if !slices.Equal(idsOf(page.Data), newest[4:]) || page.Pagination.HasMore || page.Pagination.NextCursor != nil {
			t.Errorf("second page = %v (%+v), want %v and no more", idsOf(page.Data), page.Pagination, newest[4:])
		}
		// One at a time, filtered: every event of the type, once.
		if got := listAll[webhookEventResp](t, ts.testServer, "/v1/webhooks/events?limit=1&type=credits.consumed"); len(got) != 3 ||
			!slices.Equal(idsOf(got), []string{of("credits.consumed")[2], of("credits.consumed")[1], of("credits.consumed")[0]}) {
			t.Errorf("consumed one per page = %v, want %v newest first", idsOf(got), of("credits.consumed"))
		}
	})
}

// GET /v1/webhooks/events/{id} reads one event of the key's tenant and
// environment; any other is not found, and cannot be redelivered.
func TestWebhookEventRead(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		ts.enableWebhooks(t, nowhere, nil)
		ts.grant(t, "ada", 100, nil)
		ev := ts.events(t, "")[0]

		r := ts.get(t, "/v1/webhooks/events/"+ev.ID).want(t, http.StatusOK)
		var one webhookEventResp
		r.decode(t, &one)
		if jsonOf(t, one) != jsonOf(t, ev) {
			t.Errorf("GET %s = %s, want the log's entry %s", ev.ID, r.body, jsonOf(t, ev))
		}
		if a, ok := r.object(t)["attempts"].([]any); !ok || len(a) != 0 {
			t.Errorf("attempts of an event never sent = %s, want []", r.body)
		}
		ts.get(t, "/v1/webhooks/events/whevt_nope").wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/webhooks/events/whevt_nope/redeliver", nil).wantProblem(t, http.StatusNotFound, "not-found")

		// Another tenant's event, and one of this tenant's live environment.
		otherTest, otherLive := ts.addTenant(t, "Other")
		ts.configure(t, otherTest, obj{"webhook_url": nowhere, "webhook_secret": secretParam(webhookSecret)})
		ts.do(t, req{method: http.MethodPost, path: "/v1/topup/grant", apiKey: otherTest, body: obj{"external_customer_id": "ada", "credits": 7}}).
			want(t, http.StatusCreated)
		ts.configure(t, ts.liveKey, obj{"webhook_url": nowhere, "webhook_secret": secretParam(webhookSecret)})
		ts.do(t, req{method: http.MethodPost, path: "/v1/topup/grant", apiKey: ts.liveKey, body: obj{"external_customer_id": "ada", "credits": 8}}).
			want(t, http.StatusCreated)
		theirs, live := ts.eventsAs(t, otherTest), ts.eventsAs(t, ts.liveKey)
		if len(theirs) != 1 || len(live) != 1 {
			t.Fatalf("other tenant's log %v, live log %v; want one grant each", typesOf(theirs), typesOf(live))
		}
		if mine := ts.events(t, ""); !slices.Equal(idsOf(mine), []string{ev.ID}) {
			t.Errorf("test log = %v, want only its own %s", idsOf(mine), ev.ID)
		}

		snap := ts.snapshot(t)
		for _, tc := range []struct {
			name, key, id string
		}{
			{"live key, a test event", ts.liveKey, ev.ID},
			{"test key, a live event", ts.testKey, live[0].ID},
			{"other tenant's test key", otherTest, ev.ID},
			{"other tenant's live key", otherLive, ev.ID},
			{"test key, the other tenant's event", ts.testKey, theirs[0].ID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ts.do(t, req{method: http.MethodGet, path: "/v1/webhooks/events/" + tc.id, apiKey: tc.key}).
					wantProblem(t, http.StatusNotFound, "not-found")
				ts.do(t, req{method: http.MethodPost, path: "/v1/webhooks/events/" + tc.id + "/redeliver", apiKey: tc.key}).
					wantProblem(t, http.StatusNotFound, "not-found")
			})
		}
		snap.unchanged(t, "reads and redeliveries across the walls")
	})
}
