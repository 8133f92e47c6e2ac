package httpapi_test

import (
	b64 "encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Hostile input: sizes, characters and JSON that would reach the database
// or be read loosely. Every rejection is a 400 naming the field, changes
// nothing, and is the same on both backends (PostgreSQL refuses NUL and
// invalid UTF-8 where SQLite stores them).

// badIDs are values no id or key may take, by what is wrong with them.
var badIDs = map[string]string{
	"NUL":           "a\x00b",
	"newline":       "a\nb",
	"DEL":           "a\x7fb",
	"C1 control":    "a\u0085b",
	"257 chars":     strings.Repeat("é", 257),
	"50,000 chars":  strings.Repeat("x", 50_000),
	"invalid UTF-8": "a\xffb", // only a path or a header can carry it: JSON cannot
}

// TestHostileBodyIDs: every id and key of a body.
func TestHostileBodyIDs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 100, nil)
		for name, bad := range badIDs {
			if name == "invalid UTF-8" {
				continue
			}
			t.Run(name, func(t *testing.T) {
				for _, tc := range []struct {
					path  string
					body  obj
					field string
				}{
					{"/v1/customers", obj{"external_id": bad}, "external_id"},
					{"/v1/billable-metrics", obj{"key": bad}, "key"},
					{"/v1/metering-rules", obj{"billable_metric_key": bad, "cost_type": "flat", "flat_cost": 1}, "billable_metric_key"},
					{"/v1/topup/grant", obj{"external_customer_id": bad, "credits": 1}, "external_customer_id"},
					{"/v1/topup/grant", obj{"customer_id": bad, "credits": 1}, "customer_id"},
					{"/v1/usage", obj{"external_customer_id": bad, "billable_metric_key": "m", "units": 1}, "external_customer_id"},
					{"/v1/usage", obj{"customer_id": bad, "billable_metric_key": "m", "units": 1}, "customer_id"},
					{"/v1/usage", obj{"external_customer_id": "u", "billable_metric_key": bad, "units": 1}, "billable_metric_key"},
				} {
					snap := ts.snapshot(t)
					ts.post(t, tc.path, tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
					snap.unchanged(t, fmt.Sprintf("POST %s with a %s %s", tc.path, name, tc.field))
				}
			})
		}
	})
}

// TestHostilePathIDs: a path id is held to the rules of a body id, under
// the path parameter's name, on reads and writes alike.
func TestHostilePathIDs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 100, nil)
		for name, bad := range badIDs {
			t.Run(name, func(t *testing.T) {
				e := url.PathEscape(bad)
				snap := ts.snapshot(t)
				for _, tc := range []struct {
					method, path, field string
				}{
					{"GET", "/v1/customers/" + e, "customer_id"},
					{"GET", "/v1/customers/" + e + "/credits", "customer_id"},
					{"GET", "/v1/customers/" + e + "/ledger", "customer_id"},
					{"GET", "/v1/customers/" + e + "/entitlements/m", "customer_id"},
					{"POST", "/v1/customers/" + e + "/credits/grant", "customer_id"},
					{"GET", ext(bad, ""), "external_id"},
					{"GET", ext(bad, "/credits"), "external_id"},
					{"GET", ext(bad, "/ledger"), "external_id"},
					{"GET", ext(bad, "/entitlements/m"), "external_id"},
					{"POST", ext(bad, "/credits/grant"), "external_id"},
					{"GET", "/v1/billable-metrics/" + e, "key"},
					{"GET", ext("u", "/entitlements/"+e), "key"},
				} {
					r := req{method: tc.method, path: tc.path}
					if tc.method == "POST" {
						r.body = obj{"credits": 1}
					}
					ts.do(t, r).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				}
				snap.unchanged(t, "requests with a "+name+" path id")
			})
		}
		// The limit is the body's: 256 characters pass in the path too.
		long := strings.Repeat("é", 256)
		ts.post(t, ext(long, "/credits/grant"), obj{"credits": 1}).want(t, http.StatusCreated)
		ts.get(t, "/v1/customers/"+url.PathEscape(long)+"/credits").want(t, http.StatusOK)
	})
}

// TestHostileIdempotencyKey: the header is held to the rules of ids. (Go's
// client cannot send a NUL in a header; TestIdempotencyKeyNUL sends one.)
func TestHostileIdempotencyKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		snap := ts.snapshot(t)
		for _, key := range []string{"\xff", "a\xffb", "a\tb", "a\u0085b", strings.Repeat("é", 257)} {
			for _, path := range []string{"/v1/customers", "/v1/topup/grant", "/v1/usage", "/v1/usage/batch"} {
				ts.postKey(t, path, key, obj{"external_id": "a", "external_customer_id": "a", "credits": 1}).
					wantProblem(t, http.StatusBadRequest, "invalid-request", "Idempotency-Key")
			}
		}
		snap.unchanged(t, "POSTs with unusable Idempotency-Keys")
	})
}

// TestHostileBatch: a bad event, whatever is wrong with it, is rejected
// alone with its 400; the events beside it are accepted.
func TestHostileBatch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 100, nil)
		ev := func(key string, extra string) string {
			return `{"idempotency_key":` + key + `,"external_customer_id":"u","billable_metric_key":"m","units":1` + extra + `}`
		}
		for _, tc := range []struct {
			name, event, field string
		}{
			{"NUL key", ev(`"a\u0000b"`, ""), "idempotency_key"},
			{"newline key", ev(`"a\nb"`, ""), "idempotency_key"},
			{"257-char key", ev(`"`+strings.Repeat("k", 257)+`"`, ""), "idempotency_key"},
			{"lone surrogate key", ev(`"a\ud800"`, ""), "idempotency_key"},
			{"NUL customer", `{"idempotency_key":"nul-customer","external_customer_id":"a\u0000","billable_metric_key":"m","units":1}`, "external_customer_id"},
			{"long customer", `{"idempotency_key":"long-customer","external_customer_id":"` + strings.Repeat("c", 257) + `","billable_metric_key":"m","units":1}`, "external_customer_id"},
			{"NUL metric", `{"idempotency_key":"nul-metric","external_customer_id":"u","billable_metric_key":"m\u0000","units":1}`, "billable_metric_key"},
			{"repeated units", ev(`"dup-units"`, `,"units":1000`), "units"},
			{"repeated key", ev(`"dup-key"`, `,"idempotency_key":"other"`), "idempotency_key"},
			{"lone surrogate in metadata", ev(`"surrogate-meta"`, `,"metadata":{"a":"\udc00"}`), "metadata.a"},
			{"big metadata", ev(`"big-meta"`, `,"metadata":{"a":"`+strings.Repeat("m", 16<<10)+`"}`), "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := ts.balance(t, "u").Balance
				body := `{"events":[` + tc.event + `,` + ev(fmt.Sprintf("%q", "good-"+tc.name), "") + `]}`
				var b batchResp
				ts.post(t, "/v1/usage/batch", body).want(t, http.StatusOK).decode(t, &b)
				if len(b.Results) != 2 {
					t.Fatalf("batch with a %s: %d results, want 2", tc.name, len(b.Results))
				}
				bad, good := b.Results[0], b.Results[1]
				if bad.Status != "rejected" || bad.Error == nil || bad.Error.Status != 400 || bad.Error.Code != "invalid-request" ||
					len(bad.Error.Errors) == 0 || bad.Error.Errors[0].Field != tc.field {
					t.Errorf("event with a %s = %+v (error %+v), want rejected 400 naming %s", tc.name, bad, bad.Error, tc.field)
				}
				if good.Status != "accepted" {
					t.Errorf("event beside one with a %s = %+v (error %+v), want accepted", tc.name, good, good.Error)
				}
				if after := ts.balance(t, "u").Balance; after != before-1 {
					t.Errorf("balance after a batch with a %s = %d, want %d (the good event only)", tc.name, after, before-1)
				}
			})
		}
		t.Run("whole batch", func(t *testing.T) {
			snap := ts.snapshot(t)
			for body, field := range map[string]string{
				`{"events":[],"events":[` + ev(`"twice"`, "") + `]}`:               "events",
				`{"events":[` + ev(`"x1"`, "") + `],"Events":5,"x":{"a":1,"a":2}}`: "x",
				`{"Events":[` + ev(`"x2"`, "") + `]}`:                              "events",
			} {
				ts.post(t, "/v1/usage/batch", body).wantProblem(t, http.StatusBadRequest, "invalid-request", field)
			}
			snap.unchanged(t, "malformed batches")
		})
	})
}

// TestHostileText: free text never carries a NUL to the database, and
// names, descriptions and metadata have sizes.
func TestHostileText(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 100, nil)
		nul := "a\x00b"
		for _, tc := range []struct {
			name, path string
			body       obj
			field      string
		}{
			{"NUL display_name", "/v1/customers", obj{"external_id": "c", "display_name": nul}, "display_name"},
			{"257-char display_name", "/v1/customers", obj{"external_id": "c", "display_name": strings.Repeat("d", 257)}, "display_name"},
			{"NUL name", "/v1/billable-metrics", obj{"key": "k", "name": nul}, "name"},
			{"257-char name", "/v1/billable-metrics", obj{"key": "k", "name": strings.Repeat("n", 257)}, "name"},
			{"NUL description", "/v1/billable-metrics", obj{"key": "k", "description": nul}, "description"},
			{"1025-char description", "/v1/billable-metrics", obj{"key": "k", "description": strings.Repeat("d", 1025)}, "description"},
			{"NUL reason", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1, "reason": nul}, "reason"},
			{"1025-char reason", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1, "reason": strings.Repeat("r", 1025)}, "reason"},
			{"NUL source", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1, "source": nul}, "source"},
			{"NUL currency", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1, "currency": nul}, "currency"},
			{"NUL external_payment_id", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1, "external_payment_id": nul}, "external_payment_id"},
			{"NUL reason on the path form", ext("u", "/credits/grant"), obj{"credits": 1, "reason": nul}, "reason"},
			{"metadata over 16 KiB", "/v1/customers", obj{"external_id": "c", "metadata": obj{"a": strings.Repeat("m", 16<<10)}}, "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.post(t, tc.path, tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				snap.unchanged(t, "POST "+tc.path+" with a "+tc.name)
			})
		}
		t.Run("limits accepted", func(t *testing.T) {
			ts.post(t, "/v1/customers", obj{"external_id": "c1", "display_name": strings.Repeat("é", 256)}).want(t, http.StatusCreated)
			ts.post(t, "/v1/billable-metrics", obj{"key": "k1", "name": strings.Repeat("é", 256), "description": strings.Repeat("é", 1024)}).
				want(t, http.StatusCreated)
			ts.post(t, "/v1/billable-metrics", obj{"key": "k2", "description": "two\nlines\twith a tab"}).want(t, http.StatusCreated)
			ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "c1", "credits": 1, "reason": strings.Repeat("é", 1024)}).
				want(t, http.StatusCreated)
			// {"a":"…"} is 8 bytes besides the text: 16,384 bytes in all.
			ts.post(t, "/v1/customers", `{"external_id":"c2","metadata":{"a":"`+strings.Repeat("m", 16<<10-8)+`"}}`).want(t, http.StatusCreated)
		})
		t.Run("NUL escaped in metadata", func(t *testing.T) {
			// Metadata is stored as its JSON text, where a NUL stays the
			// escape \u0000: both backends keep it and answer it back.
			var c customerResp
			ts.post(t, "/v1/customers", `{"external_id":"c3","metadata":{"k\u0000":"v\u0000"}}`).want(t, http.StatusCreated).decode(t, &c)
			var again customerResp
			ts.get(t, ext("c3", "")).want(t, http.StatusOK).decode(t, &again)
			if again.Metadata["k\x00"] != "v\x00" {
				t.Errorf("metadata read back = %v, want {\"k\\u0000\": \"v\\u0000\"}", again.Metadata)
			}
		})
	})
}

// TestTierLimit: a tiered rule has at most 100 tiers.
func TestTierLimit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", nil)
		tiers := func(n int) string {
			var b strings.Builder
			for i := 1; i < n; i++ {
				fmt.Fprintf(&b, `{"up_to":%d,"unit_cost":1},`, i)
			}
			return `{"billable_metric_key":"m","cost_type":"tiered","tier_mode":"graduated","tiers":[` + b.String() + `{"up_to":null,"unit_cost":1}]}`
		}
		snap := ts.snapshot(t)
		for _, n := range []int{101, 20_001} {
			ts.post(t, "/v1/metering-rules", tiers(n)).wantProblem(t, http.StatusBadRequest, "invalid-request", "tiers")
		}
		snap.unchanged(t, "rules with too many tiers")
		ts.post(t, "/v1/metering-rules", tiers(100)).want(t, http.StatusCreated)
	})
}

// TestStrictJSON: names match exactly, a repeated name is a 400 naming it,
// and a lone surrogate is a 400, not U+FFFD.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 100, nil)
		for _, tc := range []struct {
			name, path, body, field string
		}{
			{"repeated credits", "/v1/topup/grant", `{"external_customer_id":"u","credits":1,"credits":1000}`, "credits"},
			{"repeated customer", "/v1/topup/grant", `{"external_customer_id":"u","credits":1,"external_customer_id":"v"}`, "external_customer_id"},
			{"repeated unknown", "/v1/topup/grant", `{"external_customer_id":"u","credits":1,"x":1,"x":2}`, "x"},
			{"repeated in metadata", "/v1/customers", `{"external_id":"c","metadata":{"a":1,"a":2}}`, "metadata.a"},
			{"repeated in a tier", "/v1/metering-rules", `{"billable_metric_key":"m","cost_type":"tiered","tier_mode":"volume","tiers":[{"up_to":null,"unit_cost":1,"unit_cost":0}]}`, "tiers[0].unit_cost"},
			{"lone high surrogate", "/v1/customers", `{"external_id":"a\ud800"}`, "external_id"},
			{"lone low surrogate", "/v1/customers", `{"external_id":"c","display_name":"\udfff"}`, "display_name"},
			{"reversed pair", "/v1/customers", `{"external_id":"\ude00\ud83d"}`, "external_id"},
			{"lone surrogate in metadata", "/v1/customers", `{"external_id":"c","metadata":{"a":"\ud800x"}}`, "metadata.a"},
			{"case-mismatched customer", "/v1/topup/grant", `{"External_Customer_ID":"u","credits":1}`, "external_customer_id"},
			{"case-mismatched credits", "/v1/topup/grant", `{"external_customer_id":"u","Credits":1}`, "credits"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.post(t, tc.path, tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				snap.unchanged(t, "POST "+tc.path+" "+tc.body)
			})
		}
		t.Run("a case-mismatched name never sets a field", func(t *testing.T) {
			var b blockResp
			ts.post(t, "/v1/topup/grant", `{"external_customer_id":"u","credits":5,"CREDITS":1000,"Priority":7,"Reason":"x"}`).
				want(t, http.StatusCreated).decode(t, &b)
			if b.OriginalAmount != 5 || b.Priority != 0 || b.Reason != nil {
				t.Errorf("grant with case-mismatched names = %d credits, priority %d, reason %v; want 5, 0, null", b.OriginalAmount, b.Priority, b.Reason)
			}
			var c customerResp
			ts.post(t, "/v1/customers", `{"External_ID":"v","display_name":"d"}`).want(t, http.StatusCreated).decode(t, &c)
			if c.ExternalID != nil {
				t.Errorf("customer from External_ID has external_id %q, want null", *c.ExternalID)
			}
		})
		t.Run("a surrogate pair is fine", func(t *testing.T) {
			var c customerResp
			ts.post(t, "/v1/customers", `{"external_id":"\ud83d\ude00"}`).want(t, http.StatusCreated).decode(t, &c)
			if deref(c.ExternalID) != "😀" {
				t.Errorf("external_id = %q, want 😀", deref(c.ExternalID))
			}
		})
		if b := ts.balance(t, "u"); b.Balance != 105 {
			t.Errorf("balance = %d, want 105: no rejected grant may count", b.Balance)
		}
	})
}

// TestHostileCursor: a cursor that decodes to what no list returns is a 400,
// not a query with a NUL in it.
func TestHostileCursor(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, raw := range []string{"\x00", "a\xff", strings.Repeat("c", 257)} {
			c := b64.RawURLEncoding.EncodeToString([]byte(raw))
			for _, path := range []string{"/v1/customers", "/v1/billable-metrics", "/v1/metering-rules"} {
				ts.get(t, path+"?cursor="+c).wantProblem(t, http.StatusBadRequest, "invalid-request", "cursor")
			}
		}
	})
}
