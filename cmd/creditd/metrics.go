package main

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/creditd/creditd/internal/metrics"
	"github.com/creditd/creditd/internal/store"
)

// newMetrics makes the registry /metrics serves, one per serve (never the
// global default: the tests run several servers in one process), with the
// process's and the Go runtime's metrics, creditd's own, and the
// database's connection pools: pgxpool's on PostgreSQL, database/sql's
// (go_sql_*{db_name="sqlite_write|sqlite_read|sqlite_readers"}) on SQLite.
func newMetrics(st store.Store) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	if p, ok := st.(interface{ Pool() *pgxpool.Pool }); ok {
		reg.MustRegister(metrics.NewPoolCollector(p.Pool()))
	}
	if p, ok := st.(interface{ Pools() map[string]*sql.DB }); ok {
		for name, db := range p.Pools() {
			reg.MustRegister(collectors.NewDBStatsCollector(db, "sqlite_"+name))
		}
	}
	return reg, metrics.New(reg)
}
