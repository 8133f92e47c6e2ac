package sqlite

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/storetest"
)

// TestQueryPlans holds every statement the conformance suite runs to an
// index search that binds the rows' identity (storetest.PlanProblems), so
// that a write costs the same with a hundred customers as with a hundred
// thousand. It lives inside the package to set the traceQuery hook.
func TestQueryPlans(t *testing.T) {
	rec := storetest.NewRecorder()
	traceQuery = rec.Record
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return openPlanDB(t) })
	})
	traceQuery = nil
	if t.Failed() {
		return
	}

	db := openPlanDB(t)
	ctx := t.Context()
	columns := tableColumns(t, ctx, db)
	stmts := rec.Statements()
	if len(stmts) < 30 {
		t.Fatalf("recorded %d statements; is the trace hook still called for every statement?", len(stmts))
	}
	for _, st := range stmts {
		searches, err := explain(ctx, db, st)
		if err != nil {
			t.Errorf("EXPLAIN QUERY PLAN %s: %v", oneLine(st.Query), err)
			continue
		}
		t.Logf("%s\n\t%+v", oneLine(st.Query), searches)
		for _, p := range storetest.PlanProblems(st.Query, searches, columns) {
			t.Errorf("%s\n\t%s", p, oneLine(st.Query))
		}
		if multiRowWrite(st.Query) {
			aborts, err := mayAbort(ctx, db, st)
			if err != nil {
				t.Errorf("EXPLAIN %s: %v", oneLine(st.Query), err)
			} else if aborts {
				t.Errorf("a statement that writes many rows may abort halfway, so SQLite journals every page it touches: "+
					"give it OR FAIL and no DO UPDATE\n\t%s", oneLine(st.Query))
			}
		}
	}
}

// multiRowWrite reports whether query is one of the group commit's
// statements, which write rows from a VALUES list: one that has more than
// one row now, or any that says OR FAIL (the same statement cut for fewer
// rows).
func multiRowWrite(query string) bool {
	q := oneLine(strings.ToUpper(query))
	write := strings.HasPrefix(q, "INSERT") || strings.HasPrefix(q, "UPDATE")
	return write && (strings.Contains(q, "), (") || strings.Contains(q, " OR FAIL "))
}

// mayAbort reports whether st's program has a constraint check that aborts
// the statement (OE_Abort) rather than failing it where it stands (OE_Fail).
// Inside a transaction SQLite gives such a statement, when it writes more
// than one row, a statement journal holding a copy of each page it changes,
// so that an abort can undo the rows already written; the group's statements
// need none, since any error rolls the whole group back.
func mayAbort(ctx context.Context, db *DB, st storetest.Statement) (bool, error) {
	rows, err := db.writer.QueryContext(ctx, "EXPLAIN "+st.Query, st.Args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	const oeAbort = 2
	aborts := false
	for rows.Next() {
		var p1, p2 int64
		var opcode string
		var addr, p3, p4, p5, comment any
		if err := rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			return false, err
		}
		if (opcode == "Halt" || opcode == "HaltIfNull") && p1 != 0 && p2 == oeAbort {
			aborts = true
		}
	}
	return aborts, rows.Err()
}

func openPlanDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "creditd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// tableColumns returns the columns of every table of the schema.
func tableColumns(t *testing.T, ctx context.Context, db *DB) map[string][]string {
	rows, err := db.writer.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table'`)
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

var (
	// "SEARCH blocks USING INDEX blocks_live (tenant_id=? AND env=?)", "SCAN customers".
	planStep = regexp.MustCompile(`^(SCAN|SEARCH) (\w+)(?: AS \w+)?(.*)$`)
	planIdx  = regexp.MustCompile(`USING (?:COVERING )?INDEX (\w+)`)
	planCond = regexp.MustCompile(`(\w+)(=|>|<|>=|<=)\?`)
)

// explain turns the plan of st into searches. An automatic index is one
// SQLite builds over the whole table for this one statement: a full scan.
func explain(ctx context.Context, db *DB, st storetest.Statement) ([]storetest.Search, error) {
	rows, err := db.writer.QueryContext(ctx, "EXPLAIN QUERY PLAN "+st.Query, st.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storetest.Search
	sorted := false
	aliases := tableAliases(st.Query)
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		if strings.HasPrefix(detail, "USE TEMP B-TREE FOR") && strings.Contains(detail, "ORDER BY") {
			sorted = true
		}
		m := planStep.FindStringSubmatch(detail)
		if m == nil {
			continue
		}
		s := storetest.Search{Table: m[2]}
		if t, ok := aliases[s.Table]; ok {
			s.Table = t
		}
		rest := m[3]
		switch {
		case strings.Contains(rest, "AUTOMATIC"):
		case planIdx.MatchString(rest):
			s.Index = planIdx.FindStringSubmatch(rest)[1]
		case strings.Contains(rest, "PRIMARY KEY"):
			s.Index = "PRIMARY KEY"
		}
		if s.Index != "" {
			if i := strings.Index(rest, "("); i >= 0 {
				for _, c := range planCond.FindAllStringSubmatch(rest[i:], -1) {
					if c[2] == "=" {
						s.Eq = append(s.Eq, c[1])
					} else {
						s.Range = append(s.Range, c[1])
					}
				}
			}
		}
		out = append(out, s)
	}
	if sorted && strings.Contains(strings.ToUpper(st.Query), "LIMIT") {
		for i := range out {
			out[i].SortedAll = true
		}
	}
	return out, rows.Err()
}

// planAlias finds "FROM table alias", "JOIN table AS alias": SQLite's plan
// names an aliased table by its alias, which the rules must not take for a
// table outside the schema.
var planAlias = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+(\w+)(?:\s+AS)?\s+(\w+)`)

// tableAliases maps the aliases query gives its tables to the tables.
func tableAliases(query string) map[string]string {
	out := make(map[string]string)
	for _, m := range planAlias.FindAllStringSubmatch(query, -1) {
		switch strings.ToUpper(m[2]) {
		case "WHERE", "JOIN", "ON", "LEFT", "INNER", "CROSS", "ORDER", "GROUP", "LIMIT", "SET", "USING", "NATURAL", "AS":
			continue
		}
		out[m[2]] = m[1]
	}
	return out
}

func oneLine(q string) string { return strings.Join(strings.Fields(q), " ") }
