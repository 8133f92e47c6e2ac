package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/creditd/creditd/client"
	"github.com/creditd/creditd/internal/pgtest"
	"time"
)

// apiServer starts a real "creditd serve" on backend (sqlite or postgres)
// with a known test key, and prices the metric "tokens" at 1,000 mc a unit.
func apiServer(t *testing.T, backend string) (*server, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "creditd.db")
	if backend == "postgres" {
		db = pgtest.NewDatabase(t) // skips without PostgreSQL's binaries, unless required
	}
	key := testKey(t)
	s := startServer(t, env{"CREDITD_DATABASE_URL": db, "CREDITD_BOOTSTRAP_KEY": key})
	cl := client.New(s.URL, key)
	ctx := context.Background()
	if _, err := cl.CreateMetric(ctx, client.MetricRequest{Key: "tokens"}); err != nil {
		t.Fatalf("create metric: %v", err)
	}
	if _, err := cl.CreateRule(ctx, client.RuleRequest{BillableMetricKey: "tokens", CostType: client.CostPerUnit, UnitCost: new(int64(1000))}); err != nil {
		t.Fatalf("create rule: %v", err)
	}
	return s, key
}

// cli runs one API command against s, with the URL and key from the
// environment as an operator would set them.
func cli(t *testing.T, s *server, key string, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(t, env{"CREDITD_URL": s.URL, "CREDITD_API_KEY": key}, args...)
}

// mustCLI runs a command that must succeed.
func mustCLI(t *testing.T, s *server, key string, args ...string) string {
	t.Helper()
	stdout, stderr, err := cli(t, s, key, args...)
	if err != nil {
		t.Fatalf("creditd %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// row checks that a key-value or table output has a line matching the
// words, separated by the table's padding.
func row(t *testing.T, out string, words ...string) {
	t.Helper()
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	if !regexp.MustCompile(`(?m)^` + strings.Join(words, `\s+`) + `\s*$`).MatchString(out) {
		t.Errorf("no line %q in:\n%s", strings.Join(words, "  "), out)
	}
}

// get answers GET path's body as the API sends it.
func get(t *testing.T, s *server, key, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return bytes.TrimSpace(b)
}

// TestCLICredits runs grant, balance, usage and ledger against a real server
// on each store: what one command writes, the next one shows.
func TestCLICredits(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			s, key := apiServer(t, backend)

			out := mustCLI(t, s, key, "grant", "--external-id", "user42", "--amount", "10000", "--reason", "welcome")
			row(t, out, "amount", "10000 mc")
			row(t, out, "expires", "never")
			if !regexp.MustCompile(`(?m)^idempotency key\s+idem-[0-9a-f]{32}$`).MatchString(out) {
				t.Errorf("grant does not print the key it drew:\n%s", out)
			}
			// The same key again grants nothing more.
			for range 2 {
				out = mustCLI(t, s, key, "grant", "--external-id", "user42", "--amount", "2.5", "--credits",
					"--priority", "10", "--expires-in", "1h", "--idempotency-key", "g-2")
			}
			row(t, out, "amount", "2.500 credits")
			row(t, out, "priority", "10")

			out = mustCLI(t, s, key, "balance", "--external-id", "user42", "--blocks")
			row(t, out, "balance", "12500 mc")
			row(t, out, "effective", "12500 mc")
			if !regexp.MustCompile(`(?s)blk_\S+\s+2500\s+2500\s+10\s+\S+Z.*blk_\S+\s+10000\s+10000\s+0\s+never`).MatchString(out) {
				t.Errorf("balance --blocks does not list the two blocks in burn order:\n%s", out)
			}
			row(t, mustCLI(t, s, key, "balance", "--external-id", "user42", "--credits"), "balance", "12.500 credits")

			// Usage, retried under its key: charged once.
			var first client.UsageResult
			for i := range 2 {
				out = mustCLI(t, s, key, "usage", "--external-id", "user42", "--metric", "tokens", "--units", "3",
					"--idempotency-key", "order-1", "--json")
				var u client.UsageResult
				if err := json.Unmarshal([]byte(out), &u); err != nil || u.EventID == "" {
					t.Fatalf("usage --json printed %q (%v), want the API's usage answer", out, err)
				}
				if i == 0 {
					first = u
				}
				if u.EventID != first.EventID || u.Duplicate != (i == 1) || u.EstimatedCost != 3000 || u.BalanceAfter != 9500 {
					t.Errorf("usage #%d: %+v, want event %s, cost 3000, balance after 9500, duplicate only on the rerun", i+1, u, first.EventID)
				}
			}
			out = mustCLI(t, s, key, "usage", "--external-id", "user42", "--metric", "tokens", "--units", "1")
			row(t, out, "cost", "1000 mc")
			row(t, out, "balance after", "8500 mc")

			// The ledger lists each entry, newest first.
			out = mustCLI(t, s, key, "ledger", "--external-id", "user42")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 6 || !strings.HasPrefix(lines[0], "CREATED") {
				t.Fatalf("ledger printed %d lines, want a header and 5 entries:\n%s", len(lines), out)
			}
			// The first usage took the priority-10 block first, then the wallet:
			// one entry per block, newest first.
			for i, want := range []string{`usage\s+-1000\s+8500\s`, `usage\s+-500\s+9500\s+usage_event ` + first.EventID,
				`usage\s+-2500\s+10000\s+usage_event ` + first.EventID, `grant\s+2500\s+12500\s`, `grant\s+10000\s+10000\s`} {
				if !regexp.MustCompile(want).MatchString(lines[i+1]) {
					t.Errorf("ledger line %d = %q, want %s", i+1, lines[i+1], want)
				}
			}
			var page struct {
				Data []struct {
					Type        string `json:"type"`
					Delta       int64  `json:"delta"`
					ReferenceID string `json:"reference_id"`
				} `json:"data"`
				Pagination struct {
					HasMore    bool    `json:"has_more"`
					NextCursor *string `json:"next_cursor"`
				} `json:"pagination"`
			}
			out = mustCLI(t, s, key, "ledger", "--external-id", "user42", "--type", "usage", "--limit", "1", "--all", "--json")
			if err := json.Unmarshal([]byte(out), &page); err != nil {
				t.Fatalf("ledger --json: %v\n%s", err, out)
			}
			var sum int64
			for _, e := range page.Data {
				if e.Type != "usage" {
					t.Errorf("ledger --type usage listed a %s entry", e.Type)
				}
				sum += e.Delta
			}
			if len(page.Data) != 3 || sum != -4000 || page.Pagination.HasMore || page.Pagination.NextCursor != nil {
				t.Errorf("ledger --type usage --all --json: %d entries summing to %d, pagination %+v; want 3 entries summing to -4000, nothing more",
					len(page.Data), sum, page.Pagination)
			}
			_, stderr, _ := cli(t, s, key, "ledger", "--external-id", "user42", "--limit", "1")
			if !strings.Contains(stderr, "--cursor ") {
				t.Errorf("ledger --limit 1 says nothing of the next page: %q", stderr)
			}

			// --json is the API's answer, byte for byte.
			out = mustCLI(t, s, key, "balance", "--external-id", "user42", "--json")
			if api := get(t, s, key, "/v1/customer-by-external-id/user42/credits"); strings.TrimSpace(out) != string(api) {
				t.Errorf("balance --json = %s\nthe API answers %s", out, api)
			}

			// A usage above the balance: the problem's detail, nothing debited.
			stdout, _, err := cli(t, s, key, "usage", "--external-id", "user42", "--metric", "tokens", "--units", "9")
			if err == nil || !strings.Contains(err.Error(), "insufficient credits: 9000 millicredits required, 8500 available") ||
				!strings.Contains(err.Error(), "insufficient-credits, HTTP 402") || stdout != "" {
				t.Errorf("usage over the balance: %v (stdout %q), want the 402's detail and code", err, stdout)
			}
			_, _, err = cli(t, s, key, "usage", "--external-id", "user42", "--metric", "tokens", "--units", "9", "--credits")
			if err == nil || !strings.Contains(err.Error(), "required 9.000, available 8.500 credits") {
				t.Errorf("usage over the balance with --credits: %v, want required and available in credits", err)
			}
			row(t, mustCLI(t, s, key, "balance", "--external-id", "user42"), "balance", "8500 mc")
		})
	}
}

// TestCLICustomers lists and reads customers, and checks the errors an
// operator meets: an unknown customer, a bad key, a server that is down.
func TestCLICustomers(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	for _, ext := range []string{"alice", "bob", "carol"} {
		mustCLI(t, s, key, "grant", "--external-id", ext, "--amount", "1")
	}

	out := mustCLI(t, s, key, "customers", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("customers list: %d lines, want a header and 3 customers:\n%s", len(lines), out)
	}
	for i, ext := range []string{"alice", "bob", "carol"} {
		if f := strings.Fields(lines[i+1]); len(f) != 4 || f[1] != ext || f[2] != "-" {
			t.Errorf("customers list line %d = %q, want %s with no display name", i+1, lines[i+1], ext)
		}
	}
	aliceID := strings.Fields(lines[1])[0]

	stdout, stderr, err := cli(t, s, key, "customers", "list", "--limit", "2")
	if err != nil || strings.Count(stdout, "\n") != 3 || !strings.Contains(stderr, "creditd customers list --cursor ") {
		t.Errorf("customers list --limit 2: %v\n%s\nstderr: %s\nwant 2 customers and the next cursor", err, stdout, stderr)
	}
	var page struct {
		Data       []client.Customer `json:"data"`
		Pagination struct {
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		} `json:"pagination"`
	}
	out = mustCLI(t, s, key, "customers", "list", "--limit", "2", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 2 || !page.Pagination.HasMore || page.Pagination.NextCursor == nil {
		t.Fatalf("customers list --limit 2 --json: %v\n%s", err, out)
	}
	if api := get(t, s, key, "/v1/customers?limit=2"); strings.TrimSpace(out) != string(api) {
		t.Errorf("customers list --json = %s\nthe API answers %s", out, api)
	}
	out = mustCLI(t, s, key, "customers", "list", "--limit", "2", "--cursor", *page.Pagination.NextCursor)
	if !strings.Contains(out, "carol") || strings.Contains(out, "alice") {
		t.Errorf("customers list --cursor: want the page after bob:\n%s", out)
	}
	out = mustCLI(t, s, key, "customers", "list", "--limit", "1", "--all", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 3 || page.Pagination.HasMore || page.Pagination.NextCursor != nil {
		t.Errorf("customers list --all --json: %v, %d customers, pagination %+v; want all 3 and nothing more\n%s",
			err, len(page.Data), page.Pagination, out)
	}

	out = mustCLI(t, s, key, "customers", "get", "--external-id", "alice")
	row(t, out, "id", aliceID)
	row(t, out, "external id", "alice")
	if got := mustCLI(t, s, key, "customers", "get", "--customer-id", aliceID); got != out {
		t.Errorf("get by id:\n%s\nget by external id:\n%s", got, out)
	}
	out = mustCLI(t, s, key, "customers", "get", "--customer-id", aliceID, "--json")
	if api := get(t, s, key, "/v1/customers/"+aliceID); strings.TrimSpace(out) != string(api) {
		t.Errorf("customers get --json = %s\nthe API answers %s", out, api)
	}

	for _, args := range [][]string{
		{"customers", "get", "--external-id", "nobody"},
		{"customers", "get", "--customer-id", "0196a6b4-0000-7000-8000-000000000000"},
		{"balance", "--external-id", "nobody"},
		{"ledger", "--external-id", "nobody"},
	} {
		stdout, _, err := cli(t, s, key, args...)
		if err == nil || !strings.Contains(err.Error(), "no customer") || !strings.Contains(err.Error(), "not-found, HTTP 404") || stdout != "" {
			t.Errorf("%s: %v (stdout %q), want the 404's detail", strings.Join(args, " "), err, stdout)
		}
	}
	_, _, err = cli(t, s, key+"0", "balance", "--external-id", "alice")
	if err == nil || !strings.Contains(err.Error(), "the API key is not valid (unauthorized, HTTP 401)") {
		t.Errorf("a bad key: %v, want the 401's detail", err)
	}
	_, _, err = cli(t, s, key, "grant", "--external-id", "alice", "--amount", "5", "--expires-at", "2001-01-01T00:00:00Z")
	if err == nil || !strings.Contains(err.Error(), "--expires-at must be in the future (invalid-request, HTTP 400)") {
		t.Errorf("a grant expiring in the past: %v, want the 400 naming --expires-at", err)
	}

	s.mustStop(t)
	_, _, err = cli(t, s, key, "grant", "--external-id", "alice", "--amount", "5", "--idempotency-key", "late-1", "--timeout", "3s")
	if err == nil || !strings.Contains(err.Error(), "--idempotency-key late-1") {
		t.Errorf("a grant against a stopped server: %v, want the error and the key to finish it with", err)
	}
}

// TestCLIFlags checks the commands' flags without a server: errors that
// name the flag, and --help.
func TestCLIFlags(t *testing.T) {
	e := env{"CREDITD_API_KEY": "qs_test_secret_never_printed", "CREDITD_URL": "http://127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"balance"}, "--customer-id and --external-id"},
		{[]string{"balance", "--customer-id", "a", "--external-id", "b"}, "exactly one"},
		{[]string{"grant", "--external-id", "a"}, "--amount is required"},
		{[]string{"grant", "--external-id", "a", "--amount", "1.5"}, "--credits reads credits"},
		{[]string{"grant", "--external-id", "a", "--amount", "1.0005", "--credits"}, "at most 3 decimals"},
		{[]string{"grant", "--external-id", "a", "--amount", "5", "--metadata", "[1]"}, "--metadata must be a JSON object"},
		{[]string{"grant", "--external-id", "a", "--amount", "5", "--expires-at", "tomorrow"}, "--expires-at"},
		{[]string{"usage", "--external-id", "a", "--units", "1"}, "--metric is required"},
		{[]string{"usage", "--external-id", "a", "--metric", "m"}, "--units must be at least 1"},
		{[]string{"ledger", "--external-id", "a", "--limit", "501"}, "--limit"},
		{[]string{"customers", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"customers", "list", "--nope"}, "-nope"},
		{[]string{"customers", "delete"}, `unknown customers command "delete"`},
		{[]string{"customers"}, "subcommand is required"},
	} {
		stdout, _, err := runCmd(t, e, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || stdout != "" {
			t.Errorf("%s: %v (stdout %q), want an error mentioning %q", strings.Join(tc.args, " "), err, stdout, tc.want)
		}
	}
	if _, _, err := runCmd(t, env{}, "balance", "--external-id", "a"); err == nil || !strings.Contains(err.Error(), "CREDITD_API_KEY") {
		t.Errorf("balance without a key: %v, want an error naming --key and CREDITD_API_KEY", err)
	}

	for _, cmd := range [][]string{{"customers", "list"}, {"customers", "get"}, {"grant"}, {"balance"}, {"ledger"}, {"usage"}} {
		stdout, _, err := runCmd(t, e, append(cmd, "--help")...)
		name := strings.Join(cmd, " ")
		if err != nil || !strings.HasPrefix(stdout, "usage: creditd "+name) || !strings.Contains(stdout, "-url") || !strings.Contains(stdout, "-json") {
			t.Errorf("%s --help: %v\n%s", name, err, stdout)
		}
		if strings.Contains(stdout, "secret_never_printed") {
			t.Errorf("%s --help printed the API key", name)
		}
	}
	stdout, _, err := runCmd(t, env{}, "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"creditd customers list", "creditd customers get", "creditd grant", "creditd balance",
		"creditd ledger", "creditd usage", "CREDITD_URL", "--credits", "--json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help does not mention %s", want)
		}
	}
}

// TestClientAgainstServer runs the client's calls the CLI does not against a
// real server: paging, checks, batches and a conflict's extra members.
func TestClientAgainstServer(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL+"/v1", key) // a base ending in /v1 works too
	ctx := context.Background()

	me, err := cl.TenantMe(ctx)
	if err != nil || me.Environment != "test" || me.ID == "" {
		t.Fatalf("TenantMe: %+v, %v", me, err)
	}
	created, err := cl.CreateCustomer(ctx, client.CustomerRequest{ExternalID: "dora", DisplayName: "Dora", Metadata: map[string]string{"plan": "pro"}})
	if err != nil || created.ExternalID != "dora" || string(created.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("CreateCustomer: %+v, %v", created, err)
	}
	_, err = cl.CreateCustomer(ctx, client.CustomerRequest{ExternalID: "dora"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeCustomerExists || string(e.Extra["customer_id"]) != `"`+created.ID+`"` {
		t.Errorf("CreateCustomer of a taken external id: %v, want 409 customer-exists naming %s", err, created.ID)
	}
	for _, ext := range []string{"erin", "frank"} {
		if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: ext, Credits: 5000}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := cl.AllCustomers(ctx, 1)
	if err != nil || len(all) != 3 || all[0].ID != created.ID || all[2].ExternalID != "frank" {
		t.Errorf("AllCustomers with pages of 1: %d customers, %v", len(all), err)
	}

	ent, err := cl.Check(ctx, client.ByExternalID("erin"), "tokens", 6)
	if err != nil || ent.Allowed || ent.EstimatedCost != 6000 || ent.BalanceAfter != -1000 {
		t.Errorf("Check of 6 units on 5,000 mc: %+v, %v; want not allowed, cost 6000", ent, err)
	}
	res, err := cl.UsageBatch(ctx, client.UsageBatchRequest{Events: []client.UsageEvent{
		{ExternalCustomerID: "erin", BillableMetricKey: "tokens", Units: 2},
		{ExternalCustomerID: "frank", BillableMetricKey: "tokens", Units: 6},
	}})
	if err != nil || len(res.Results) != 2 || res.Results[0].Status != "accepted" || res.Results[1].Error == nil ||
		res.Results[1].Error.Code != client.CodeInsufficientCredits || res.Results[1].Error.Available != 5000 {
		t.Fatalf("UsageBatch: %+v, %v; want the first accepted, the second refused with 402", res, err)
	}
	bal, err := cl.Balance(ctx, client.ByExternalID("erin"), true)
	if err != nil || bal.Balance != 3000 || len(bal.Blocks) != 1 || bal.Blocks[0].RemainingAmount != 3000 {
		t.Errorf("Balance after the batch: %+v, %v", bal, err)
	}
	_, err = cl.Usage(ctx, client.UsageRequest{ExternalCustomerID: "frank", BillableMetricKey: "tokens", Units: 6})
	if !errors.As(err, &e) || e.Status != 402 || e.Required != 6000 || e.Available != 5000 {
		t.Errorf("Usage over the balance: %v, want a 402 with required 6000, available 5000", err)
	}
}

// TestClientReservations runs the client's reservation calls against a
// real server: a hold counts in reserved_balance, a partial commit debits
// the actual cost and gives the rest back, a settled hold refuses a second
// settlement with its state, and the list filters by customer and status.
func TestClientReservations(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL, key)
	ctx := context.Background()
	if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: "gina", Credits: 10_000}); err != nil {
		t.Fatal(err)
	}
	held, err := cl.Reserve(ctx, client.ReserveRequest{ExternalCustomerID: "gina", BillableMetricKey: "tokens",
		EstimatedUnits: 4, TTLSeconds: 60, Metadata: map[string]string{"job": "render"}})
	if err != nil || held.Amount != 4000 || held.Status != client.ReservationActive || held.ExternalCustomerID != "gina" ||
		time.Until(held.ExpiresAt) > time.Minute || string(held.Metadata) != `{"job":"render"}` {
		t.Fatalf("Reserve 4 units: %+v, %v; want 4,000 mc held for a minute", held, err)
	}
	bal, err := cl.Balance(ctx, client.ByExternalID("gina"), false)
	if err != nil || bal.ReservedBalance != 4000 || bal.EffectiveBalance != 6000 {
		t.Errorf("Balance while held: %+v, %v; want 4,000 reserved, 6,000 to spend", bal, err)
	}
	_, err = cl.Reserve(ctx, client.ReserveRequest{ExternalCustomerID: "gina", BillableMetricKey: "tokens", EstimatedUnits: 7})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInsufficientCredits || e.Available != 6000 {
		t.Errorf("Reserve beyond the effective balance: %v, want 402 with 6,000 available", err)
	}
	done, err := cl.CommitReservation(ctx, held.ID, client.CommitRequest{ActualUnits: new(int64(3))})
	if err != nil || done.Status != client.ReservationCommitted || done.CommittedAmount == nil || *done.CommittedAmount != 3000 ||
		done.ReleasedAmount == nil || *done.ReleasedAmount != 1000 {
		t.Fatalf("Commit 3 of 4 units: %+v, %v; want 3,000 committed, 1,000 released", done, err)
	}
	_, err = cl.ReleaseReservation(ctx, held.ID, client.WriteOptions{})
	if !errors.As(err, &e) || e.Status != 409 || e.Code != client.CodeReservationNotActive ||
		string(e.Extra["reservation_status"]) != `"committed"` {
		t.Errorf("Release after commit: %v, want 409 reservation-not-active, status committed", err)
	}
	other, err := cl.Reserve(ctx, client.ReserveRequest{ExternalCustomerID: "gina", BillableMetricKey: "tokens", EstimatedUnits: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cl.ReleaseReservation(ctx, other.ID, client.WriteOptions{}); err != nil || r.Status != client.ReservationReleased ||
		r.ReleasedAmount == nil || *r.ReleasedAmount != 2000 {
		t.Errorf("Release: %+v, %v; want released, 2,000 mc back", r, err)
	}
	got, err := cl.GetReservation(ctx, held.ID)
	if err != nil || got.ID != held.ID || got.Status != client.ReservationCommitted {
		t.Errorf("GetReservation: %+v, %v", got, err)
	}
	page, err := cl.Reservations(ctx, client.ReservationListOptions{Customer: client.ByExternalID("gina"), Status: client.ReservationReleased})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != other.ID {
		t.Errorf("Reservations released by gina: %v, %v; want only %s", reservationIDs(page), err, other.ID)
	}
	page, err = cl.Reservations(ctx, client.ReservationListOptions{Customer: client.ByExternalID("gina"), Limit: 1})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != other.ID || !page.Pagination.HasMore {
		t.Errorf("Reservations of gina, a page of 1: %v, %v; want the newest and more", reservationIDs(page), err)
	}
	if bal, err := cl.Balance(ctx, client.ByExternalID("gina"), false); err != nil || bal.Balance != 7000 || bal.ReservedBalance != 0 {
		t.Errorf("Balance after settling: %+v, %v; want 7,000, nothing held", bal, err)
	}
}

// TestClientPlanPurchase runs the seed's flow through the client against a
// real server: a wallet top-up pays for a plan whose credits arrive as a
// priority-10 block that expires; the same order again is a duplicate that
// changes nothing; a wallet short of the price is a 402 that writes
// nothing; an archived plan is refused.
func TestClientPlanPurchase(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL, key)
	ctx := context.Background()
	month := int64(30 * 24 * 3600)
	plan, err := cl.CreatePlan(ctx, client.PlanRequest{Key: "pro", Name: "Pro", Price: 6000, Credits: 50_000, DurationSeconds: &month})
	if err != nil || plan.Key != "pro" || plan.Priority != 10 || !plan.Active || plan.DurationSeconds == nil || *plan.DurationSeconds != month {
		t.Fatalf("CreatePlan: %+v, %v; want an active plan of priority 10 lasting a month", plan, err)
	}
	_, err = cl.CreatePlan(ctx, client.PlanRequest{Key: "pro", Name: "Again", Price: 1, Credits: 1})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodePlanExists {
		t.Errorf("CreatePlan of a taken key: %v, want 409 plan-exists", err)
	}
	if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: "hana", Credits: 10_000}); err != nil {
		t.Fatal(err)
	}
	req := client.PurchaseRequest{WriteOptions: client.WriteOptions{IdempotencyKey: "purchase-o1"}, PlanKey: "pro", OrderID: "o1"}
	p, err := cl.Purchase(ctx, client.ByExternalID("hana"), req)
	if err != nil || p.Duplicate || p.Price != 6000 || len(p.Debits) != 1 || p.Debits[0].Amount != 6000 ||
		p.Block.Priority != 10 || p.Block.Source != "plan" || p.Block.RemainingAmount != 50_000 || p.Block.ExpiresAt == nil ||
		!p.Block.ExpiresAt.Equal(p.CreatedAt.Add(time.Duration(month)*time.Second)) || p.BalanceAfter != 54_000 {
		t.Fatalf("Purchase: %+v, %v; want 6,000 paid, a 50,000 mc plan block expiring in a month", p, err)
	}
	again, err := cl.Purchase(ctx, client.ByExternalID("hana"), client.PurchaseRequest{PlanKey: "pro", OrderID: "o1"})
	if err != nil || !again.Duplicate || again.ID != p.ID {
		t.Errorf("the same order under another key: %+v, %v; want the stored purchase, duplicate", again, err)
	}
	_, err = cl.Purchase(ctx, client.ByExternalID("hana"), client.PurchaseRequest{PlanKey: "pro", OrderID: "o2"})
	if !errors.As(err, &e) || e.Code != client.CodeInsufficientCredits || e.Required != 6000 || e.Available != 4000 {
		t.Errorf("a second order with 4,000 mc payable: %v, want 402 required 6,000 available 4,000", err)
	}
	if bal, err := cl.Balance(ctx, client.ByExternalID("hana"), false); err != nil || bal.Balance != 54_000 {
		t.Errorf("Balance: %+v, %v; want 54,000 (the duplicate and the 402 wrote nothing)", bal, err)
	}
	got, err := cl.GetPurchase(ctx, p.ID)
	if err != nil || got.OrderID != "o1" || got.PlanKey != "pro" {
		t.Errorf("GetPurchase: %+v, %v", got, err)
	}
	list, err := cl.Purchases(ctx, client.ByExternalID("hana"), client.ListOptions{})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != p.ID {
		t.Errorf("Purchases: %v; want the one purchase", err)
	}
	if archived, err := cl.ArchivePlan(ctx, "pro", client.WriteOptions{}); err != nil || archived.Active {
		t.Fatalf("ArchivePlan: %+v, %v", archived, err)
	}
	if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: "hana", Credits: 10_000}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Purchase(ctx, client.ByExternalID("hana"), client.PurchaseRequest{PlanKey: "pro", OrderID: "o3"})
	if !errors.As(err, &e) || e.Status != 409 || e.Code != client.CodePlanArchived {
		t.Errorf("buying an archived plan: %v, want 409 plan-archived", err)
	}
	plans, err := cl.Plans(ctx, client.ListOptions{})
	if err != nil || len(plans.Data) != 1 || plans.Data[0].Active {
		t.Errorf("Plans: %v; want the archived plan listed", err)
	}
	if got, err := cl.GetPlan(ctx, "pro"); err != nil || got.ID != plan.ID || got.Active {
		t.Errorf("GetPlan: %+v, %v", got, err)
	}
}

// TestClientTransactions runs a transfer as a linked transaction through
// the client against a real server: a usage on one customer and a grant to
// another, both or neither; a failing operation is named by its index and
// leaves nothing written.
func TestClientTransactions(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL, key)
	ctx := context.Background()
	if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: "ivy", Credits: 5000}); err != nil {
		t.Fatal(err)
	}
	tx, err := cl.Transact(ctx, client.TransactionRequest{Metadata: map[string]string{"why": "gift"}, Operations: []client.Operation{
		client.UsageOp(client.UsageRequest{ExternalCustomerID: "ivy", BillableMetricKey: "tokens", Units: 2}),
		client.GrantOp(client.GrantRequest{ExternalCustomerID: "jack", Credits: 2000, Source: "transfer"}),
	}})
	if err != nil || len(tx.Results) != 2 || tx.Results[0].Type != "usage" || tx.Results[0].Usage == nil ||
		tx.Results[0].Usage.EstimatedCost != 2000 || tx.Results[1].Index != 1 || tx.Results[1].Grant == nil ||
		tx.Results[1].Grant.RemainingAmount != 2000 || tx.Results[1].Grant.Source != "transfer" || string(tx.Metadata) != `{"why":"gift"}` {
		t.Fatalf("Transact a transfer: %+v, %v", tx, err)
	}
	_, err = cl.Transact(ctx, client.TransactionRequest{Operations: []client.Operation{
		client.GrantOp(client.GrantRequest{ExternalCustomerID: "jack", Credits: 1000}),
		client.UsageOp(client.UsageRequest{ExternalCustomerID: "ivy", BillableMetricKey: "tokens", Units: 10}),
	}})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInsufficientCredits || string(e.Extra["operation_index"]) != "1" {
		t.Errorf("a transaction whose second operation is short: %v, want 402 with operation_index 1", err)
	}
	for ext, want := range map[string]int64{"ivy": 3000, "jack": 2000} {
		if bal, err := cl.Balance(ctx, client.ByExternalID(ext), false); err != nil || bal.Balance != want {
			t.Errorf("Balance of %s: %+v, %v; want %d (the refused transaction wrote nothing)", ext, bal, err, want)
		}
	}
	got, err := cl.GetTransaction(ctx, tx.ID)
	if err != nil || got.ID != tx.ID || len(got.Results) != 2 || got.Results[1].Grant == nil || got.Results[1].Grant.ID != tx.Results[1].Grant.ID {
		t.Errorf("GetTransaction: %+v, %v", got, err)
	}
	if _, err := cl.Transact(ctx, client.TransactionRequest{Operations: []client.Operation{{}}}); err == nil {
		t.Error("an Operation made by neither UsageOp nor GrantOp was sent")
	}
}

// TestClientWebhooks runs the client's settings and webhook calls against a
// real server delivering to a receiver here: the settings patch changes only
// what it names, a grant's event is delivered and logged, a redelivery sends
// it again, and the health view counts it.
func TestClientWebhooks(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL, key)
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer recv.Close()
	received := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }

	me, err := cl.TenantMe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := cl.Config(ctx, me.ID); err != nil || cfg.WebhookSecretSet || cfg.WebhookURL != "" || cfg.Environment != "test" {
		t.Fatalf("Config before any setting: %+v, %v", cfg, err)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	threshold := int64(500)
	cfg, err := cl.UpdateConfig(ctx, me.ID, client.ConfigPatch{WebhookURL: &recv.URL, WebhookSecret: &secret, LowBalanceThreshold: &threshold})
	if err != nil || cfg.WebhookURL != recv.URL || !cfg.WebhookSecretSet || cfg.LowBalanceThreshold == nil || *cfg.LowBalanceThreshold != 500 {
		t.Fatalf("UpdateConfig: %+v, %v", cfg, err)
	}
	cfg, err = cl.UpdateConfig(ctx, me.ID, client.ConfigPatch{ClearLowBalanceThreshold: true})
	if err != nil || cfg.LowBalanceThreshold != nil || cfg.WebhookURL != recv.URL || !cfg.WebhookSecretSet {
		t.Fatalf("UpdateConfig clearing the threshold: %+v, %v; want the rest kept", cfg, err)
	}

	if _, err := cl.Grant(ctx, client.GrantRequest{ExternalCustomerID: "kim", Credits: 1000}); err != nil {
		t.Fatal(err)
	}
	delivered := func(want int) *client.WebhookEvent {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			page, err := cl.WebhookEvents(ctx, client.WebhookEventOptions{Status: "delivered"})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Data) == 1 && len(received()) == want {
				return &page.Data[0]
			}
		}
		t.Fatalf("no delivered event with %d bodies received (got %d)", want, len(received()))
		return nil
	}
	ev := delivered(1)
	if ev.Type == "" || ev.DeliveredAt == nil || len(ev.Attempts) != 1 || ev.Attempts[0].StatusCode == nil ||
		*ev.Attempts[0].StatusCode != 200 || !strings.Contains(received()[0], ev.ID) {
		t.Errorf("delivered event: %+v; want one 200 attempt, its body received", ev)
	}
	if one, err := cl.WebhookEvent(ctx, ev.ID); err != nil || one.ID != ev.ID || string(one.Payload) == "" {
		t.Errorf("WebhookEvent: %+v, %v", one, err)
	}
	again, err := cl.Redeliver(ctx, ev.ID, client.WriteOptions{})
	if err != nil || again.ID != ev.ID || again.Status != "pending" {
		t.Fatalf("Redeliver: %+v, %v", again, err)
	}
	delivered(2)
	if h, err := cl.WebhookHealth(ctx); err != nil || !h.WebhookConfigured || h.Pending != 0 || h.DeliveredLast24h != 1 {
		t.Errorf("WebhookHealth: %+v, %v; want configured, nothing pending, one delivered", h, err)
	}
}

// TestClientCatalog reads the metrics and rules back through the client:
// a new rule supersedes the metric's active one, and both stay listed.
func TestClientCatalog(t *testing.T) {
	s, key := apiServer(t, "sqlite")
	cl := client.New(s.URL, key)
	ctx := context.Background()
	if _, err := cl.CreateRule(ctx, client.RuleRequest{BillableMetricKey: "tokens", CostType: client.CostPerUnit, UnitCost: new(int64(2000))}); err != nil {
		t.Fatal(err)
	}
	m, err := cl.GetMetric(ctx, "tokens")
	if err != nil || m.Key != "tokens" {
		t.Fatalf("GetMetric: %+v, %v", m, err)
	}
	if _, err := cl.GetMetric(ctx, "nope"); !isCode(err, client.CodeNotFound) {
		t.Errorf("GetMetric of an unknown key: %v, want 404", err)
	}
	metrics, err := cl.Metrics(ctx, client.ListOptions{})
	if err != nil || len(metrics.Data) != 1 || metrics.Data[0].ID != m.ID {
		t.Errorf("Metrics: %v; want the one metric", err)
	}
	rules, err := cl.Rules(ctx, client.ListOptions{})
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	active := 0
	for _, r := range rules.Data {
		if r.Active {
			active++
			if r.UnitCost == nil || *r.UnitCost != 2000 {
				t.Errorf("the active rule costs %v a unit, want 2000 (the newer rule)", r.UnitCost)
			}
		}
	}
	if len(rules.Data) != 2 || active != 1 {
		t.Errorf("Rules: %d rules, %d active; want 2, the newer active", len(rules.Data), active)
	}
}

func isCode(err error, code string) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

func reservationIDs(p *client.Page[client.Reservation]) []string {
	if p == nil {
		return nil
	}
	var ids []string
	for _, r := range p.Data {
		ids = append(ids, r.ID+" "+r.Status)
	}
	return ids
}

// TestCreditsDecimal: credits as decimals, both ways, with integers only.
func TestCreditsDecimal(t *testing.T) {
	for mc, want := range map[int64]string{0: "0.000", 1: "0.001", 1500: "1.500", -250: "-0.250", 12_345_678: "12345.678",
		math.MaxInt64: "9223372036854775.807", math.MinInt64: "-9223372036854775.808"} {
		if got := formatCredits(mc); got != want {
			t.Errorf("formatCredits(%d) = %s, want %s", mc, got, want)
		}
	}
	for in, want := range map[string]int64{"1": 1000, "1.5": 1500, "0.001": 1, ".25": 250, "+2": 2000, "-1.5": -1500,
		"9223372036854775.807": math.MaxInt64} {
		if got, err := parseCredits(in); err != nil || got != want {
			t.Errorf("parseCredits(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "1.", "1.0001", "1e3", "1,5", "--1", "-+1", "9223372036854775.808", "99999999999999999999"} {
		if got, err := parseCredits(in); err == nil {
			t.Errorf("parseCredits(%q) = %d, want an error", in, got)
		}
	}
}
