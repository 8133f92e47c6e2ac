package main

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/creditd/creditd/internal/metrics"
	"github.com/creditd/creditd/internal/store"
)

// newMetrics makes the registry /metrics serves, one per serve (never the
// global default: the tests run several servers in one process), with the
// process's and the Go runtime's metrics, creditd's own, and the
// PostgreSQL pool's use when st has a pool. The SQLite store keeps its
// connection pools to itself, so they are not measured.
func newMetrics(st store.Store) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	if p, ok := st.(interface{ Pool() *pgxpool.Pool }); ok {
		reg.MustRegister(metrics.NewPoolCollector(p.Pool()))
	}
	return reg, metrics.New(reg)
}
