package storetest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// The rules of the backends' query-plan tests, which hold every statement the
// suite runs to "cost does not grow with data": each backend records the
// statements, explains them, turns each plan into the Searches below, and
// asks PlanProblems what is wrong with them.

// Search is one way a plan reaches a table's rows.
type Search struct {
	Table string
	Index string // "" for a scan of the whole table
	// Eq and Range are the index's columns the search binds, to a value or
	// to a range; none for a walk through the whole index.
	Eq, Range []string
	// SortedAll: the plan sorts every row the search finds, before a LIMIT
	// (a list whose order the index does not give).
	SortedAll bool
}

// identity names, per table, the columns a search must bind with "=" and
// the columns of which it must bind one (to a value or a range: a page of a
// list is a range). A table without an entry fails the test until it has
// one.
var identity = map[string]struct{ eq, oneOf []string }{
	"customers":        {[]string{"tenant_id", "env"}, []string{"id", "external_id"}},
	"blocks":           {[]string{"tenant_id", "env", "customer_id"}, nil},
	"ledger_entries":   {[]string{"tenant_id", "env", "customer_id"}, nil},
	"usage_events":     {[]string{"tenant_id", "env", "id"}, nil},                     // read by its id only (the ledger's metadata)
	"plan_purchases":   {[]string{"tenant_id", "env"}, []string{"id", "customer_id"}}, // GET /v1/plan-purchases/{id} names no customer
	"transactions":     {[]string{"tenant_id", "env", "id"}, nil},
	"reservations":     {[]string{"tenant_id", "env"}, []string{"id", "customer_id", "status"}}, // GET /v1/reservations may name a status only
	"idempotency_keys": {[]string{"tenant_id", "env", "key"}, nil},
	// SQLite keeps an idempotency record's answer apart, reached by its
	// rowid from the key's row.
	"idempotency_answers": {[]string{"rowid"}, nil},
	// A scope's metrics, rules and plans grow with its price list, not with
	// its traffic: reading all of them is bounded, and PostgreSQL may rightly
	// prefer it to walking a page of them in order. Statements that name a
	// metric or a plan still must bind it (the pinned-column rule).
	"billable_metrics": {[]string{"tenant_id", "env"}, nil},
	"metering_rules":   {[]string{"tenant_id", "env"}, nil},
	"plans":            {[]string{"tenant_id", "env"}, nil},
	"tenants":          {[]string{"id"}, nil},
	"tenant_configs":   {[]string{"tenant_id", "env"}, nil},
	"api_keys":         {[]string{"hash"}, nil},
	// An event is read by its id, as a customer's queue, or listed by
	// status or type across the scope.
	"webhook_events":   {[]string{"tenant_id", "env"}, []string{"id", "customer_id", "status", "type"}},
	"webhook_attempts": {[]string{"tenant_id", "env", "event_id"}, nil},
	// A scope has a queue per customer with events to deliver: few in a
	// healthy system. Statements that name a customer still must bind it
	// (the pinned-column rule).
	"webhook_queues": {[]string{"tenant_id", "env"}, nil},
}

// planAllowed lists the statements that by design reach a table otherwise
// than through its identity. Each is matched by a regular expression on its
// text and may use only the indexes named ("|" between names; "*": any
// access, a full scan included).
var planAllowed = []struct {
	why, query, table, index string
}{
	{"the expiry sweeper looks across every customer by expiry; the partial index holds only blocks with credits left that expire",
		`expires_at <=`, "blocks", "blocks_expiring"},
	{"the reservation sweeper looks across every customer by expiry; the partial index holds only active holds",
		`expires_at <=`, "reservations", "reservations_expiring"},
	{"the first page of a scope's holds, newest first, without a filter, reads the primary key from the scope's end, no further than its LIMIT",
		`FROM reservations WHERE tenant_id = (\?|\$1) AND env = (\?|\$2) ORDER BY id DESC LIMIT`, "reservations",
		"reservations_pkey|sqlite_autoindex_reservations_1"},
	{"the first page of a scope's webhook events, newest first, without a filter, reads the id index from the scope's end, no further than its LIMIT",
		`FROM webhook_events WHERE tenant_id = (\?|\$1) AND env = (\?|\$2) ORDER BY id DESC LIMIT`, "webhook_events",
		"webhook_events_pkey|webhook_events_id"},
	{"the webhook dispatcher claims due queues across every tenant, in due order; a queue exists only while its customer has events to deliver",
		`^SELECT tenant_id, env, customer_id FROM webhook_queues WHERE next_attempt_at <= (\?|\$1) ORDER BY next_attempt_at LIMIT`,
		"webhook_queues", "webhook_queues_due"},
	{"a webhook lease is checked on its queue's row, found by its whole primary key: the owner is a filter on one row",
		`^UPDATE webhook_queues SET next_attempt_at = (\?|\$\d+) WHERE tenant_id = (\?|\$1) AND env = (\?|\$2) AND customer_id = (\?|\$3) AND lease_owner = `,
		"webhook_queues", "webhook_queues_pkey|PRIMARY KEY"},
	{"the webhook purge lists the configured scopes, one row each: events are made only for a scope with settings, and there are few",
		`^SELECT tenant_id, env FROM tenant_configs ORDER BY tenant_id, env$`, "tenant_configs", "*"},
	{"the idempotency purge deletes by age across every tenant",
		`^DELETE FROM idempotency_keys WHERE created_at <`, "idempotency_keys", "idempotency_keys_created"},
	{"the idempotency purge deletes the answers of the keys it deletes, by age across every tenant",
		`^DELETE FROM idempotency_answers WHERE id IN \(SELECT answer_id FROM idempotency_keys WHERE created_at <`,
		"idempotency_keys", "idempotency_keys_created"},
	{"the next answer id follows the last: SQLite's min/max optimisation reads the rowid B-tree's last entry, one row",
		`^SELECT coalesce\(max\(id\), 0\) FROM idempotency_answers$`, "idempotency_answers", ""},
	{"the oldest tenant is read once at start; a self-hosted server has one",
		`FROM tenants ORDER BY created_at`, "tenants", "*"},
	{"API keys are counted once at start, to decide whether to make the first one",
		`^SELECT count\(\*\) FROM api_keys$`, "api_keys", "*"},
	{"schema migrations keep their own bookkeeping",
		`goose_db_version`, "goose_db_version", "*"},
}

var planAllowedRE = func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(planAllowed))
	for i, a := range planAllowed {
		out[i] = regexp.MustCompile(a.query)
	}
	return out
}()

// pinned finds "col = ?", "tbl.col = $3" and "col = ANY ($1)" after a WHERE:
// the columns a statement compares with a value it is given.
var pinned = regexp.MustCompile(`(?i)(?:(\w+)\.)?(\w+)\s*=\s*(?:ANY\s*\(\s*)?(?:\?|\$\d+)`)

// PlanProblems returns what is wrong with the searches of one statement's
// plan. columns has each table's columns (the schema's tables); a search of
// anything else (a VALUES list, a function) is no table's and passes.
func PlanProblems(query string, searches []Search, columns map[string][]string) []string {
	var problems []string
	for _, s := range searches {
		cols, ok := columns[s.Table]
		if !ok {
			continue
		}
		if allowed(strings.Join(strings.Fields(query), " "), s) {
			continue
		}
		rule, ok := identity[s.Table]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s has no rule in storetest's identity map: add one", s.Table))
			continue
		}
		if s.Index == "" {
			problems = append(problems, "full scan of "+s.Table)
			continue
		}
		var unbound []string
		for _, c := range rule.eq {
			if !slices.Contains(s.Eq, c) {
				unbound = append(unbound, c)
			}
		}
		if len(rule.oneOf) > 0 && !slices.ContainsFunc(rule.oneOf, func(c string) bool {
			return slices.Contains(s.Eq, c) || slices.Contains(s.Range, c)
		}) {
			unbound = append(unbound, strings.Join(rule.oneOf, " or "))
		}
		// A column the statement pins to a value but the index does not
		// bind is a filter over every row the index finds.
		for _, c := range pinnedColumns(query, s.Table) {
			if slices.Contains(cols, c) && !slices.Contains(s.Eq, c) && !slices.Contains(unbound, c) {
				unbound = append(unbound, c)
			}
		}
		if len(unbound) > 0 {
			problems = append(problems, fmt.Sprintf("search of %s by %s does not bind %s (binds = %v, range %v)",
				s.Table, s.Index, strings.Join(unbound, ", "), s.Eq, s.Range))
		}
		if s.SortedAll {
			problems = append(problems, fmt.Sprintf("search of %s by %s sorts all its rows before the limit", s.Table, s.Index))
		}
	}
	return problems
}

// allowed reports whether planAllowed lets s serve query, whose text has
// its white space folded.
func allowed(query string, s Search) bool {
	for i, a := range planAllowed {
		if a.table == s.Table && planAllowedRE[i].MatchString(query) &&
			(a.index == "*" || slices.Contains(strings.Split(a.index, "|"), s.Index)) {
			return true
		}
	}
	return false
}

// pinnedColumns returns the columns of table, or unqualified ones, that the
// statement's WHERE compares with a given value.
func pinnedColumns(query, table string) []string {
	i := strings.Index(strings.ToUpper(query), "WHERE")
	if i < 0 {
		return nil
	}
	var out []string
	for _, m := range pinned.FindAllStringSubmatch(query[i:], -1) {
		if m[1] == "" || m[1] == table {
			out = append(out, m[2])
		}
	}
	return out
}

// Statement is one distinct statement the suite ran, with the arguments of
// its first run, to explain.
type Statement struct {
	Query string
	Args  []any
}

// Recorder collects distinct statements from a backend's trace hook, which
// the suite's parallel tests call concurrently.
type Recorder struct {
	mu    sync.Mutex
	seen  map[string]bool
	stmts []Statement
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{seen: make(map[string]bool)}
}

// Record keeps query and args unless query was seen already. Statements that
// read or write no table's rows (BEGIN, COMMIT, SET…) are left out.
func (r *Recorder) Record(query string, args []any) {
	switch strings.ToUpper(strings.Fields(query + " x")[0]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[query] {
		r.seen[query] = true
		r.stmts = append(r.stmts, Statement{query, slices.Clone(args)})
	}
}

// Statements returns what was recorded, in the order first seen.
func (r *Recorder) Statements() []Statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stmts)
}
