package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolStater is a PostgreSQL connection pool (a *pgxpool.Pool).
type PoolStater interface {
	Stat() *pgxpool.Stat
}

// poolCollector reads the pool's statistics at scrape time: pgx keeps them
// itself, so copying them on every change would only add work to the
// request path.
type poolCollector struct {
	pool PoolStater

	acquired, idle, constructing, total, maxConns *prometheus.Desc
	acquires, emptyAcquires, canceledAcquires     *prometheus.Desc
	acquireSeconds, emptyWaitSeconds              *prometheus.Desc
}

// NewPoolCollector returns a collector of the PostgreSQL pool's use.
func NewPoolCollector(pool PoolStater) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("creditd_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:             pool,
		acquired:         d("acquired_connections", "Connections of the pool in use."),
		idle:             d("idle_connections", "Connections of the pool open and idle."),
		constructing:     d("constructing_connections", "Connections of the pool being opened."),
		total:            d("open_connections", "Connections of the pool: acquired, idle and being opened."),
		maxConns:         d("max_connections", "The pool's size limit (pool_max_conns)."),
		acquires:         d("acquires_total", "Connections taken from the pool."),
		emptyAcquires:    d("empty_acquires_total", "Acquires that found no idle connection and waited for one to be freed or opened."),
		canceledAcquires: d("canceled_acquires_total", "Acquires given up before a connection was free (the caller's deadline or cancellation)."),
		acquireSeconds:   d("acquire_seconds_total", "Time spent acquiring connections, waits included."),
		emptyWaitSeconds: d("empty_acquire_wait_seconds_total", "Time acquires spent waiting because the pool had no idle connection."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.constructing, c.total, c.maxConns,
		c.acquires, c.emptyAcquires, c.canceledAcquires, c.acquireSeconds, c.emptyWaitSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.constructing, float64(s.ConstructingConns()))
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.maxConns, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
}
