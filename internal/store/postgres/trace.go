package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// traceQuery, when set (by this package's tests) before Open, sees every
// statement the store's pool runs with its arguments, batched ones included:
// the query-plan test explains each.
var traceQuery func(sql string, args []any)

// tracer hands pgx's statements to a trace function. It sees a batch's
// statements when the batch is sent, so that statements after a failed one
// are not missed.
type tracer struct{ trace func(sql string, args []any) }

func (t tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.trace(d.SQL, d.Args)
	return ctx
}

func (tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		t.trace(q.SQL, q.Arguments)
	}
	return ctx
}

func (tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
