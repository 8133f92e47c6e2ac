// Package metrics keeps creditd's Prometheus metrics. A Metrics implements
// the observer interfaces of the packages it measures (httpapi's
// RequestObserver, ledger's Observer, webhook's Observer) without importing
// them; serve wires one to each. Everything is registered on a registry the
// caller makes, never on the global default, so that several servers can
// run in one process (the tests do).
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/creditd/creditd/internal/store"
)

// Unmatched is the route label of a request that matched no route (404,
// 405): the raw path would make a series per path a client cares to send.
const Unmatched = "unmatched"

// latencyBuckets span a cached read (well under a millisecond) to a request
// held by a hung database until its deadline (5 s by default).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is creditd's set of metrics. Its methods are safe for concurrent
// use.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series maps a request's labels to its resolved counter and histogram.
	// It is replaced, never changed, so the request path reads it without a
	// lock; mu serializes the rare additions (a route, method and status seen
	// for the first time).
	series atomic.Pointer[map[seriesKey]requestSeries]
	mu     sync.Mutex

	groupSize     prometheus.Histogram
	groupDuration prometheus.Histogram
	groupsOK      prometheus.Counter
	groupsFailed  prometheus.Counter

	attemptDuration prometheus.Histogram
	delivered       prometheus.Counter
	failedAttempts  prometheus.Counter
	failed          prometheus.Counter
	outboxLag       prometheus.Gauge

	sweepsOK, sweepsFailed prometheus.Counter
	lastSweep              prometheus.Gauge
}

type seriesKey struct {
	route, method string
	status        int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New makes the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	groups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "creditd_commit_groups_total",
		Help: "Group-commit transactions, by result: ok (committed) or error (rolled back as a whole).",
	}, []string{"result"})
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "creditd_webhook_attempts_total",
		Help: "Webhook delivery attempts, by result: delivered, failed_attempt (to be retried) or failed (retry schedule spent).",
	}, []string{"result"})
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_http_requests_total",
			Help: "HTTP requests answered, by route (the mux pattern, or \"unmatched\"), method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "creditd_http_request_duration_seconds",
			Help:    "Time the server took to handle a request, from its headers read to its answer written, by route and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "creditd_commit_group_size",
			Help:    "Commands carried by one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024, the committer's bound
		}),
		groupDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "creditd_commit_duration_seconds",
			Help:    "Time one group-commit transaction took, commit included.",
			Buckets: latencyBuckets,
		}),
		groupsOK:     groups.WithLabelValues("ok"),
		groupsFailed: groups.WithLabelValues("error"),
		attemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "creditd_webhook_attempt_duration_seconds",
			Help:    "Time a webhook delivery attempt took, from sending to the receiver's answer or the error.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		delivered:      attempts.WithLabelValues("delivered"),
		failedAttempts: attempts.WithLabelValues("failed_attempt"),
		failed:         attempts.WithLabelValues("failed"),
		outboxLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "creditd_webhook_outbox_lag_seconds",
			Help: "Age of the oldest event in this instance's last claim of due webhook queues; 0 when that claim found nothing due.",
		}),
	}
	sweeps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "creditd_sweeper_runs_total",
		Help: "Rounds of the sweeper (due expiries, lapsed idempotency records), by result: ok or error.",
	}, []string{"result"})
	m.sweepsOK, m.sweepsFailed = sweeps.WithLabelValues("ok"), sweeps.WithLabelValues("error")
	m.lastSweep = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "creditd_sweeper_last_success_timestamp_seconds",
		Help: "When the sweeper last finished a round without error (Unix seconds); alert when it falls behind.",
	})
	m.series.Store(&map[seriesKey]requestSeries{})
	reg.MustRegister(m.requests, m.duration, m.groupSize, m.groupDuration, groups,
		m.attemptDuration, attempts, m.outboxLag, sweeps, m.lastSweep)
	return m
}

// Handler serves what g gathers in the Prometheus text format (or another
// the scraper asks for). Errors of collectors are logged, and the metrics
// that could be gathered are served anyway.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveRequest counts a request answered and its latency (httpapi's
// RequestObserver). After the first request of a route, method and status,
// it takes no lock and allocates nothing.
func (m *Metrics) ObserveRequest(pattern, method string, status int, elapsed time.Duration) {
	k := seriesKey{route: pattern, method: normalMethod(method), status: status}
	if k.route == "" {
		k.route = Unmatched
	}
	s, ok := (*m.series.Load())[k]
	if !ok {
		s = m.addSeries(k)
	}
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (m *Metrics) addSeries(k seriesKey) requestSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	s := requestSeries{
		count:    m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route, k.method),
	}
	next := make(map[seriesKey]requestSeries, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = s
	m.series.Store(&next)
	return s
}

// normalMethod bounds the method label: a client may send any token as its
// method, and each would be a series of its own.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// Swept records one round of the sweeper (jobs.Sweeper's Observe).
func (m *Metrics) Swept(at time.Time, err error) {
	if err != nil {
		m.sweepsFailed.Inc()
		return
	}
	m.sweepsOK.Inc()
	m.lastSweep.Set(float64(at.UnixMilli()) / 1000)
}

// GroupCommitted records one group-commit transaction (ledger's Observer).
func (m *Metrics) GroupCommitted(size int, elapsed time.Duration, err error) {
	m.groupSize.Observe(float64(size))
	m.groupDuration.Observe(elapsed.Seconds())
	if err != nil {
		m.groupsFailed.Inc()
		return
	}
	m.groupsOK.Inc()
}

// Claimed sets the outbox lag from a claim of due webhook queues (webhook's
// Observer): the age of the oldest event claimed. Each queue lists its
// events oldest first, so only the heads are looked at. Cheap, and it needs
// no query of its own; the price is that it moves only when this instance
// claims, which it does at least every poll interval while a worker is free.
func (m *Metrics) Claimed(now time.Time, qs []store.WebhookQueue) {
	var oldest time.Time
	for _, q := range qs {
		if len(q.Events) > 0 && (oldest.IsZero() || q.Events[0].CreatedAt.Before(oldest)) {
			oldest = q.Events[0].CreatedAt
		}
	}
	if oldest.IsZero() {
		m.outboxLag.Set(0)
		return
	}
	m.outboxLag.Set(max(0, now.Sub(oldest).Seconds()))
}

// Attempted counts a webhook delivery attempt by the event's status after
// it (webhook's Observer). An attempt that never reached the network (a
// scope without a target) has no duration to record.
func (m *Metrics) Attempted(status string, a store.WebhookAttempt) {
	switch status {
	case store.WebhookDelivered:
		m.delivered.Inc()
	case store.WebhookFailed:
		m.failed.Inc()
	default:
		m.failedAttempts.Inc()
	}
	if a.Duration > 0 {
		m.attemptDuration.Observe(a.Duration.Seconds())
	}
}
