package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/storetest"
)

// TestQueryPlans holds every statement the conformance suite runs to an
// index search that binds the rows' identity (storetest.PlanProblems), so
// that a write costs the same with a hundred customers as with a hundred
// thousand, and checks that the statements that lock many rows or keys lock
// them in sorted order.
//
// The plans are made on a database filled with made-up rows (fillSQL) and
// analyzed: on the suite's empty tables the planner has nothing to tell
// indexes apart with, and picked customers_external_id for a primary-key
// lookup. Each statement is explained twice: with the arguments of its first
// run (a custom plan, as for a statement's first runs) and as a generic plan
// (what a cached statement settles on), both with sequential scans off, so
// that a sequential scan left in a plan means no index can serve it.
func TestQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the conformance suite again, then explains every statement twice (about 15s)")
	}
	pgtest.NewDatabase(t) // the server and its template, before the hook: migrations are not ours to explain
	rec := storetest.NewRecorder()
	postgres.SetTraceQuery(rec.Record)
	t.Run("Suite", func(t *testing.T) { storetest.Run(t, func(t *testing.T) store.Store { return open(t) }) })
	postgres.SetTraceQuery(nil)
	if t.Failed() {
		return
	}

	ctx := t.Context()
	db := open(t)
	pc, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer pc.Release()
	if _, err := pc.Exec(ctx, fillSQL); err != nil {
		t.Fatalf("fill the database: %v", err)
	}
	if _, err := pc.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatalf("SET: %v", err)
	}
	columns := tableColumns(t, ctx, db.Pool())
	predicates := partialPredicates(t, ctx, db.Pool())
	stmts := rec.Statements()
	if len(stmts) < 30 {
		t.Fatalf("recorded %d statements; is the trace hook still installed by Open?", len(stmts))
	}
	for _, st := range stmts {
		for _, generic := range []bool{false, true} {
			plan, err := explain(ctx, pc.Conn(), st, generic)
			if err != nil {
				t.Errorf("EXPLAIN %s: %v", oneLine(st.Query), err)
				continue
			}
			kind := map[bool]string{false: "custom plan", true: "generic plan"}[generic]
			var searches []storetest.Search
			problems := walk(plan, walkState{}, &searches)
			for i, s := range searches {
				searches[i].Eq = append(s.Eq, predicates[s.Index]...)
			}
			if !generic {
				// A custom plan weighs the page size it is given against the
				// rows of an average scope, and may rightly sort a few dozen
				// metrics instead of walking an index in order; a cached
				// statement's generic plan must not need the sort.
				for i := range searches {
					searches[i].SortedAll = false
				}
			}
			problems = append(problems, lockOrder(st.Query, plan)...)
			t.Logf("%s: %s\n\t%+v", kind, oneLine(st.Query), searches)
			problems = append(problems, storetest.PlanProblems(st.Query, searches, columns)...)
			for _, p := range problems {
				t.Errorf("%s: %s\n\t%s", kind, p, oneLine(st.Query))
			}
		}
	}
}

// explain returns the plan of st: a custom plan for its arguments, or the
// generic plan of st prepared, which depends on no argument (PostgreSQL 15
// has no EXPLAIN (GENERIC_PLAN), hence PREPARE and EXECUTE with NULLs).
func explain(ctx context.Context, c *pgx.Conn, st storetest.Statement, generic bool) (*planNode, error) {
	var raw []byte
	if !generic {
		if _, err := c.Exec(ctx, `SET plan_cache_mode = force_custom_plan`); err != nil {
			return nil, err
		}
		if err := c.QueryRow(ctx, `EXPLAIN (FORMAT JSON, VERBOSE) `+st.Query, st.Args...).Scan(&raw); err != nil {
			return nil, err
		}
	} else {
		if _, err := c.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
			return nil, err
		}
		if _, err := c.Exec(ctx, `PREPARE plan_check AS `+st.Query); err != nil {
			return nil, err
		}
		defer c.Exec(context.WithoutCancel(ctx), `DEALLOCATE plan_check`)
		var n int
		err := c.QueryRow(ctx, `SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'plan_check'`).Scan(&n)
		if err != nil {
			return nil, err
		}
		args := ""
		if n > 0 {
			args = "(" + strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ") + ")"
		}
		if err := c.QueryRow(ctx, `EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE plan_check`+args).Scan(&raw); err != nil {
			return nil, err
		}
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil {
		return nil, err
	}
	if len(plans) != 1 {
		return nil, fmt.Errorf("%d plans", len(plans))
	}
	return &plans[0].Plan, nil
}

// planNode is the part of EXPLAIN's JSON the test reads.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	Index     string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Output    []string   `json:"Output"`
	Plans     []planNode `json:"Plans"`
}

// walkState is what the path from the plan's root to a node tells.
type walkState struct {
	relation string // the nearest relation above (a bitmap index scan has its heap scan's)
	limit    bool   // a Limit above
	sorted   bool   // a Sort above
	sortAll  bool   // a Sort between a Limit and here
}

// boundCol finds "(tenant_id = …" and "(c.seq < …" in an Index Cond: the
// indexed column comes first.
var boundCol = regexp.MustCompile(`\((?:\w+\.)?(\w+) (=|<|>|<=|>=) `)

// walk adds the table searches under n to out and returns what is wrong with
// the order the plan locks in: rows locked (LockRows) or advisory locks
// taken (pg_advisory_xact_lock in a node's output) below a Sort are taken in
// the order rows arrive, not the sorted order the statement promises.
func walk(n *planNode, st walkState, out *[]storetest.Search) []string {
	var problems []string
	switch n.NodeType {
	case "Limit":
		st.limit = true
	case "Sort", "Incremental Sort":
		st.sorted = true
		st.sortAll = st.sortAll || st.limit
	case "LockRows":
		if st.sorted {
			problems = append(problems, "rows are locked before they are sorted: LockRows below a Sort")
		}
	case "Seq Scan":
		*out = append(*out, storetest.Search{Table: n.Relation, SortedAll: st.sortAll})
	case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
		rel := n.Relation
		if rel == "" {
			rel = st.relation
		}
		s := storetest.Search{Table: rel, Index: n.Index, SortedAll: st.sortAll}
		for _, m := range boundCol.FindAllStringSubmatch(n.IndexCond, -1) {
			if m[2] == "=" {
				s.Eq = append(s.Eq, m[1])
			} else {
				s.Range = append(s.Range, m[1])
			}
		}
		*out = append(*out, s)
	}
	if st.sorted && slices.ContainsFunc(n.Output, func(o string) bool { return strings.Contains(o, "pg_advisory_xact_lock") }) {
		problems = append(problems, "advisory locks are taken before their keys are sorted")
	}
	if n.Relation != "" {
		st.relation = n.Relation
	}
	for i := range n.Plans {
		problems = append(problems, walk(&n.Plans[i], st, out)...)
	}
	return problems
}

// lockOrder checks that a statement that locks many rows or keys (FOR
// UPDATE or advisory locks, over an array or with an ORDER BY) has a Sort
// under the node that locks, so that concurrent groups lock in one order;
// walk checks that no Sort is above it. A statement that skips locked rows
// never waits for a lock, so the order it takes them in cannot deadlock.
func lockOrder(query string, plan *planNode) []string {
	locks := strings.Contains(query, "FOR UPDATE") || strings.Contains(query, "pg_advisory_xact_lock")
	if strings.Contains(query, "SKIP LOCKED") {
		locks = false
	}
	if !locks || !strings.Contains(query, "ORDER BY") && !strings.Contains(query, "unnest(") {
		return nil
	}
	var locker *planNode
	var find func(n *planNode)
	find = func(n *planNode) {
		if locker != nil {
			return
		}
		if n.NodeType == "LockRows" || slices.ContainsFunc(n.Output, func(o string) bool { return strings.Contains(o, "pg_advisory_xact_lock") }) {
			locker = n
			return
		}
		for i := range n.Plans {
			find(&n.Plans[i])
		}
	}
	find(plan)
	if locker == nil || !hasSort(locker) {
		return []string{"locks are not taken in sorted order: no Sort under the node that locks"}
	}
	return nil
}

func hasSort(n *planNode) bool {
	if n.NodeType == "Sort" || n.NodeType == "Incremental Sort" {
		return true
	}
	return slices.ContainsFunc(n.Plans, func(c planNode) bool { return hasSort(&c) })
}

// predicateEq finds "(status = 'active'::text)" in a partial index's
// predicate.
var predicateEq = regexp.MustCompile(`\((\w+) = '[^']*'(?:::\w+)?\)`)

// partialPredicates returns, per partial index, the columns its predicate
// pins to a value: a search of the index binds them as surely as an Index
// Cond would (a scope's active holds through reservations_active, say).
func partialPredicates(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string][]string {
	rows, err := pool.Query(ctx, `SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index AS i
		JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL`)
	if err != nil {
		t.Fatalf("list partial indexes: %v", err)
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var index, pred string
		if err := rows.Scan(&index, &pred); err != nil {
			t.Fatalf("list partial indexes: %v", err)
		}
		for _, m := range predicateEq.FindAllStringSubmatch(pred, -1) {
			out[index] = append(out[index], m[1])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list partial indexes: %v", err)
	}
	return out
}

// tableColumns returns the columns of every table of the schema.
func tableColumns(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string][]string {
	rows, err := pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatalf("list columns: %v", err)
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatalf("list columns: %v", err)
		}
		out[table] = append(out[table], col)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list columns: %v", err)
	}
	return out
}

func oneLine(q string) string { return strings.Join(strings.Fields(q), " ") }
