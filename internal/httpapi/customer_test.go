package httpapi_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCustomerCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		r := ts.post(t, "/v1/customers", obj{"external_id": "user_1", "display_name": "Ada", "metadata": obj{"plan": "pro"}}).
			want(t, http.StatusCreated)
		var c customerResp
		r.decode(t, &c)
		if !uuidRE.MatchString(c.ID) {
			t.Errorf("POST /v1/customers id = %q, want a UUIDv7", c.ID)
		}
		if deref(c.ExternalID) != "user_1" || c.DisplayName != "Ada" || c.Metadata["plan"] != "pro" || c.CreatedAt != "2026-04-13T14:00:00.000Z" {
			t.Errorf("POST /v1/customers = %s, want user_1, Ada, {plan: pro}, created 2026-04-13T14:00:00.000Z", r.body)
		}
		var got customerResp
		ts.get(t, "/v1/customers/"+c.ID).want(t, http.StatusOK).decode(t, &got)
		if got.ID != c.ID || deref(got.ExternalID) != "user_1" || got.Metadata["plan"] != "pro" {
			t.Errorf("GET /v1/customers/%s = %+v, want the created customer %+v", c.ID, got, c)
		}

		// Without an external id: null, and two of them do not collide.
		for range 2 {
			m := ts.post(t, "/v1/customers", obj{"display_name": "anon"}).want(t, http.StatusCreated).object(t)
			if m["external_id"] != nil || m["metadata"] == nil {
				t.Errorf("POST /v1/customers without external_id = %v, want external_id null and metadata {}", m)
			}
		}
	})
}

func TestCustomerCreateInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createCustomer(t, "existing")
		for _, tc := range []struct {
			name  string
			body  any
			field string
		}{
			{"metadata array", obj{"external_id": "a", "metadata": []int{1}}, "metadata"},
			{"metadata string", obj{"external_id": "a", "metadata": "x"}, "metadata"},
			{"metadata number", obj{"external_id": "a", "metadata": 5}, "metadata"},
			{"external_id number", obj{"external_id": 5}, "external_id"},
			{"external_id object", obj{"external_id": obj{}}, "external_id"},
			{"display_name bool", obj{"external_id": "a", "display_name": true}, "display_name"},
			{"external_id too long", obj{"external_id": strings.Repeat("é", 257)}, "external_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.post(t, "/v1/customers", tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				snap.unchanged(t, "POST /v1/customers "+tc.name)
			})
		}
		ts.post(t, "/v1/customers", obj{"external_id": strings.Repeat("é", 256)}).want(t, http.StatusCreated)
	})
}

func TestCustomerExists(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		c := ts.createCustomer(t, "user_1")
		snap := ts.snapshot(t)
		r := ts.post(t, "/v1/customers", obj{"external_id": "user_1", "display_name": "other"})
		r.wantProblem(t, http.StatusConflict, "customer-exists")
		if got := r.object(t)["customer_id"]; got != c.ID {
			t.Errorf("POST /v1/customers (exists) customer_id = %v, want %s", got, c.ID)
		}
		snap.unchanged(t, "POST /v1/customers with a taken external_id")
	})
}

func TestCustomerGet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, id := range []string{"user42:companion7", "a b/c?d#e%f", "ünï"} {
			c := ts.createCustomer(t, id)
			for _, path := range []string{
				"/v1/customers/" + c.ID,
				"/v1/customers/" + url.PathEscape(id), // lenient: an external id in the customer_id slot
				ext(id, ""),
			} {
				var got customerResp
				ts.get(t, path).want(t, http.StatusOK).decode(t, &got)
				if got.ID != c.ID || deref(got.ExternalID) != id {
					t.Errorf("GET %s = %+v, want customer %s (%q)", path, got, c.ID, id)
				}
			}
		}
		// The colon arrives raw or percent-encoded alike.
		for _, path := range []string{"/v1/customers/user42%3Acompanion7", "/v1/customer-by-external-id/user42%3acompanion7", "/v1/customer-by-external-id/user42:companion7"} {
			var got customerResp
			ts.get(t, path).want(t, http.StatusOK).decode(t, &got)
			if deref(got.ExternalID) != "user42:companion7" {
				t.Errorf("GET %s external_id = %q, want user42:companion7", path, deref(got.ExternalID))
			}
		}
		for _, path := range []string{"/v1/customers/nobody", "/v1/customers/0190f0f0-0000-7000-8000-000000000000", ext("nobody", ""),
			"/v1/customers/nobody/credits", ext("nobody", "/credits"), "/v1/customers/nobody/ledger", ext("nobody", "/ledger")} {
			ts.get(t, path).wantProblem(t, http.StatusNotFound, "not-found")
		}
	})
}

func TestCustomerList(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		var want []string
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			want = append(want, ts.createCustomer(t, id).ID)
		}
		var got []string
		path := "/v1/customers?limit=2"
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatalf("GET /v1/customers?limit=2 over 5 customers: more than 3 pages")
			}
			var page listResp[customerResp]
			ts.get(t, path).want(t, http.StatusOK).decode(t, &page)
			for _, c := range page.Data {
				got = append(got, c.ID)
			}
			if !page.Pagination.HasMore {
				if page.Pagination.NextCursor != nil || len(page.Data) != 1 {
					t.Errorf("GET %s last page = %d rows, next_cursor %v; want 1 row and null", path, len(page.Data), page.Pagination.NextCursor)
				}
				break
			}
			if len(page.Data) != 2 || page.Pagination.NextCursor == nil {
				t.Fatalf("GET %s = %d rows, next_cursor %v; want 2 rows and a cursor", path, len(page.Data), page.Pagination.NextCursor)
			}
			path = "/v1/customers?limit=2&cursor=" + url.QueryEscape(*page.Pagination.NextCursor)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("GET /v1/customers pages = %v, want %v in creation order", got, want)
		}
		var all listResp[customerResp]
		ts.get(t, "/v1/customers").want(t, http.StatusOK).decode(t, &all)
		if len(all.Data) != 5 || all.Pagination.HasMore || all.Pagination.NextCursor != nil {
			t.Errorf("GET /v1/customers = %d rows, %+v; want 5 rows and no more", len(all.Data), all.Pagination)
		}
		ts.get(t, "/v1/customers?limit=500").want(t, http.StatusOK)
		for _, q := range []string{"limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1.5"} {
			ts.get(t, "/v1/customers?"+q).wantProblem(t, http.StatusBadRequest, "invalid-request", "limit")
		}
		for _, q := range []string{"cursor=!!!", "cursor=%3D%3D"} {
			ts.get(t, "/v1/customers?"+q).wantProblem(t, http.StatusBadRequest, "invalid-request", "cursor")
		}
	})
}
