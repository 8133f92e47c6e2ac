package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// Request basics every endpoint shares: the API key, routing, media type,
// body size, the Idempotency-Key header, JSON that is not what it should be,
// and the order in which those checks answer.

func TestAuth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, tc := range []struct {
			name   string
			key    string
			header map[string]string
		}{
			{"no key", none, nil},
			{"unknown test key", "qs_test_0000000000000000000000000000000000000000", nil},
			{"unknown live key", "qs_live_0000000000000000000000000000000000000000", nil},
			{"not a key", "secret", nil},
			{"bare prefix", "qs_test_", nil},
			{"bearer without token", none, map[string]string{"Authorization": "Bearer "}},
			{"basic auth", none, map[string]string{"Authorization": "Basic " + ts.testKey}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.do(t, req{method: "GET", path: "/v1/customers", apiKey: tc.key, header: tc.header}).
					wantProblem(t, http.StatusUnauthorized, "unauthorized")
				ts.do(t, req{method: "POST", path: "/v1/customers", apiKey: tc.key, header: tc.header, body: obj{"external_id": "a"}}).
					wantProblem(t, http.StatusUnauthorized, "unauthorized")
				snap.unchanged(t, tc.name)
			})
		}
		t.Run("bearer", func(t *testing.T) {
			ts.do(t, req{method: "GET", path: "/v1/customers", apiKey: none, header: map[string]string{"Authorization": "Bearer " + ts.testKey}}).
				want(t, http.StatusOK)
		})
		t.Run("public paths", func(t *testing.T) {
			ts.do(t, req{method: "GET", path: "/healthz", apiKey: none}).want(t, http.StatusOK)
			r := ts.do(t, req{method: "GET", path: "/problems/insufficient-credits", apiKey: none})
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "402") {
				t.Errorf("GET /problems/insufficient-credits = %d %q, want 200 naming HTTP 402", r.status, r.body)
			}
		})
	})
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, path := range []string{"/v1/nope", "/", "/v1/customers/x/nope", "/v2/customers"} {
			ts.get(t, path).wantProblem(t, http.StatusNotFound, "not-found")
		}
		ts.post(t, "/v1/nope", obj{}).wantProblem(t, http.StatusNotFound, "not-found")

		for _, tc := range []struct {
			method, path string
			allow        []string
		}{
			{"DELETE", "/v1/customers", []string{"GET", "POST"}},
			{"GET", "/v1/usage", []string{"POST"}},
			{"PUT", "/v1/usage/batch", []string{"POST"}},
			{"POST", "/v1/customers/c1/credits", []string{"GET"}},
			{"PATCH", "/v1/billable-metrics/m", []string{"GET"}},
		} {
			snap := ts.snapshot(t)
			r := ts.do(t, req{method: tc.method, path: tc.path, body: obj{}})
			r.wantProblem(t, http.StatusMethodNotAllowed, "method-not-allowed")
			allow := r.header.Get("Allow")
			for _, m := range tc.allow {
				if !strings.Contains(allow, m) {
					t.Errorf("%s Allow = %q, want it to list %s", r.desc, allow, m)
				}
			}
			snap.unchanged(t, r.desc)
		}
	})
}

func TestMediaType(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "json", ";;"} {
			snap := ts.snapshot(t)
			ts.do(t, req{method: "POST", path: "/v1/customers", body: `{"external_id":"a"}`, contentType: ct}).
				wantProblem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
			snap.unchanged(t, "POST with Content-Type "+ct)
		}
		// 415 is for requests with a body: without one, the next checks answer.
		ts.do(t, req{method: "POST", path: "/v1/usage", contentType: "text/plain", idem: none}).
			wantProblem(t, http.StatusBadRequest, "idempotency-key-required")
		ts.do(t, req{method: "POST", path: "/v1/usage", contentType: "text/plain"}).
			wantProblem(t, http.StatusBadRequest, "invalid-request", "body")
		for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json", none} {
			ts.do(t, req{method: "POST", path: "/v1/customers", body: `{"external_id":"ok` + string(rune('a'+i)) + `"}`, contentType: ct}).
				want(t, http.StatusCreated)
		}
	})
}

func TestBodySize(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		// A body of exactly 1 MiB is accepted; one byte more is 413. The
		// bulk is a member creditd ignores: every field it reads has a
		// smaller limit of its own.
		const limit = 1 << 20
		body := func(size int) string {
			head, tail := `{"external_id":"big","padding":"`, `"}`
			return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
		}
		snap := ts.snapshot(t)
		ts.do(t, req{method: "POST", path: "/v1/customers", body: body(limit + 1)}).
			wantProblem(t, http.StatusRequestEntityTooLarge, "payload-too-large")
		ts.do(t, req{method: "POST", path: "/v1/usage", body: body(4 * limit)}).
			wantProblem(t, http.StatusRequestEntityTooLarge, "payload-too-large")
		snap.unchanged(t, "bodies over 1 MiB")
		ts.do(t, req{method: "POST", path: "/v1/customers", body: body(limit)}).want(t, http.StatusCreated)
	})
}

func TestIdempotencyKeyRequired(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		snap := ts.snapshot(t)
		for _, path := range []string{"/v1/customers", "/v1/billable-metrics", "/v1/metering-rules", "/v1/topup/grant",
			"/v1/customers/c1/credits/grant", "/v1/customer-by-external-id/c1/credits/grant", "/v1/usage", "/v1/usage/batch"} {
			ts.do(t, req{method: "POST", path: path, body: obj{"external_id": "a"}, idem: none}).
				wantProblem(t, http.StatusBadRequest, "idempotency-key-required")
		}
		ts.do(t, req{method: "POST", path: "/v1/customers", body: obj{"external_id": "a"}, idem: strings.Repeat("k", 257)}).
			wantProblem(t, http.StatusBadRequest, "invalid-request", "Idempotency-Key")
		snap.unchanged(t, "POSTs without a usable Idempotency-Key")
		ts.do(t, req{method: "POST", path: "/v1/customers", body: obj{"external_id": "a"}, idem: strings.Repeat("é", 256)}).
			want(t, http.StatusCreated)
	})
}

// nest returns n objects nested in one another.
func nest(n int) string {
	return strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1)
}

func TestOddJSON(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		paths := []string{"/v1/customers", "/v1/billable-metrics", "/v1/metering-rules", "/v1/topup/grant",
			"/v1/customer-by-external-id/c1/credits/grant", "/v1/usage", "/v1/usage/batch"}
		for _, tc := range []struct {
			name, body string
		}{
			{"empty", ""},
			{"whitespace", "  \n"},
			{"truncated", `{"external_id":`},
			{"array", `[{"external_id":"a"}]`},
			{"string", `"a"`},
			{"number", `5`},
			{"null", `null`},
			{"trailing data", `{"external_id":"a"} {}`},
			{"single quotes", `{'external_id':'a'}`},
			{"NaN", `{"credits": NaN}`},
			{"invalid UTF-8", "{\"external_id\":\"\xff\xfe\"}"},
			{"33 levels", `{"metadata":` + nest(32) + `}`},
			{"33 levels of arrays", `{"metadata":{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				for _, path := range paths {
					ts.do(t, req{method: "POST", path: path, body: tc.body}).wantProblem(t, http.StatusBadRequest, "invalid-request", "body")
				}
				snap.unchanged(t, "bodies "+tc.name)
			})
		}
		// 32 levels is the deepest allowed; brackets inside strings do not count.
		ts.post(t, "/v1/customers", `{"external_id":"deep","metadata":`+nest(31)+`}`).want(t, http.StatusCreated)
		ts.post(t, "/v1/customers", `{"external_id":"str","metadata":{"s":"`+strings.Repeat("{[", 40)+`"}}`).want(t, http.StatusCreated)
	})
}

// TestCheckOrder pins the order of the checks: 401 → unknown route 404/405 →
// 413/415 → idempotency-key-required → replay → body 400s → execute.
func TestCheckOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		unknown := "/v1/customers/0190f0f0-0000-7000-8000-000000000000/credits/grant"
		big := `{"x":"` + strings.Repeat("x", 1<<20) + `"}`
		for _, tc := range []struct {
			name   string
			r      req
			status int
			code   string
		}{
			{"401 before 404 route", req{method: "GET", path: "/v1/nope", apiKey: none}, 401, "unauthorized"},
			{"401 before 405", req{method: "DELETE", path: "/v1/customers", apiKey: none}, 401, "unauthorized"},
			{"401 before 404 customer", req{method: "GET", path: "/v1/customers/nobody", apiKey: none}, 401, "unauthorized"},
			{"401 before 415", req{method: "POST", path: "/v1/customers", body: "x", contentType: "text/plain", apiKey: "qs_test_nope"}, 401, "unauthorized"},
			{"401 before 413", req{method: "POST", path: "/v1/customers", body: big, apiKey: none}, 401, "unauthorized"},
			{"404 route before 415", req{method: "POST", path: "/v1/nope", body: "x", contentType: "text/plain"}, 404, "not-found"},
			{"405 before 413", req{method: "PUT", path: "/v1/customers", body: big}, 405, "method-not-allowed"},
			{"415 before Idempotency-Key", req{method: "POST", path: "/v1/customers", body: "x", contentType: "text/plain", idem: none}, 415, "unsupported-media-type"},
			{"413 before Idempotency-Key", req{method: "POST", path: "/v1/customers", body: big, idem: none}, 413, "payload-too-large"},
			{"Idempotency-Key before body", req{method: "POST", path: "/v1/customers", body: "{", idem: none}, 400, "idempotency-key-required"},
			{"body 400 before unknown customer 404", req{method: "POST", path: unknown, body: obj{"credits": -1}}, 400, "invalid-request"},
			{"body 400 before unknown metric 404", req{method: "POST", path: "/v1/usage", body: obj{"external_customer_id": "a", "billable_metric_key": "nope", "units": 0}}, 400, "invalid-request"},
			{"body 400 before unknown metric 404 (rule)", req{method: "POST", path: "/v1/metering-rules", body: obj{"billable_metric_key": "nope", "cost_type": "bogus"}}, 400, "invalid-request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.do(t, tc.r).wantProblem(t, tc.status, tc.code)
				snap.unchanged(t, tc.name)
			})
		}
	})
}
