package postgres

// SetTraceQuery sets the hook that sees every statement of the stores opened
// after it, for the query-plan test, which cannot live in this package: it
// needs pgtest, which imports this package.
func SetTraceQuery(f func(sql string, args []any)) { traceQuery = f }
