package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditd/creditd/client"
)

// benchMetric prices every bench event at 1 mc per unit, so a customer's
// balance falls by exactly one per accepted event and a run can be audited
// from the balances alone.
const benchMetric = "bench_debit"

// benchGrant is each bench customer's starting balance in mc: large enough
// that no run of any length reaches the paywall, whose 402s would measure
// rejection, not the write path.
const benchGrant = 1_000_000_000_000

// benchConfig is what "creditd bench" reads from its flags.
type benchConfig struct {
	url         string
	key         string
	mode        string
	customers   int
	concurrency int
	batchSize   int
	duration    time.Duration
	warmup      time.Duration
	setup       bool
	rate        float64
	json        bool
}

func (c *benchConfig) parse(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := getenv("CREDITD_BENCH_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.url, "url", base, "base URL of the running server (CREDITD_BENCH_URL)")
	fs.StringVar(&c.key, "key", getenv("CREDITD_API_KEY"), "API key (CREDITD_API_KEY); required")
	fs.StringVar(&c.mode, "mode", "usage", "usage, batch or check")
	fs.IntVar(&c.customers, "customers", 10000, "customers to spread requests over (1: one hot customer)")
	fs.IntVar(&c.concurrency, "concurrency", 32, "requests in flight")
	fs.IntVar(&c.batchSize, "batch-size", 1000, "events per request in batch mode (1–1000)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time; 0 runs the setup only")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "time spent before measuring, not counted")
	fs.BoolVar(&c.setup, "setup", true, "create the metric, its rule and the customers' grants first (idempotent)")
	fs.Float64Var(&c.rate, "rate", 0, "cap on requests/s across all workers (0: as fast as the server answers)")
	fs.BoolVar(&c.json, "json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	case c.key == "":
		return errors.New("bench: an API key is required: --key or CREDITD_API_KEY")
	case c.mode != "usage" && c.mode != "batch" && c.mode != "check":
		return fmt.Errorf("bench: --mode must be usage, batch or check, not %q", c.mode)
	case c.customers < 1:
		return errors.New("bench: --customers must be at least 1")
	case c.concurrency < 1:
		return errors.New("bench: --concurrency must be at least 1")
	case c.batchSize < 1 || c.batchSize > 1000:
		return errors.New("bench: --batch-size must be between 1 and 1000 (the server's limit)")
	case c.duration < 0 || c.warmup < 0:
		return errors.New("bench: --duration and --warmup must not be negative")
	case c.duration == 0 && !c.setup:
		return errors.New("bench: --duration 0 with --setup=false has nothing to do")
	case c.rate < 0:
		return errors.New("bench: --rate must not be negative")
	}
	u, err := url.Parse(strings.TrimRight(c.url, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bench: --url %q is not an http:// or https:// URL", c.url)
	}
	c.url = u.String()
	return nil
}

// bench drives a running server over HTTP and reports its throughput and
// latency. It measures the server, not itself: the client reuses its
// connections, requests and buffers because it shares the machine's cores
// with the server it measures.
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c benchConfig
	if err := c.parse(args, getenv, stderr); err != nil {
		return err
	}
	b, err := newBencher(c)
	if err != nil {
		return err
	}
	defer b.tr.CloseIdleConnections()
	if c.setup {
		if err := b.runSetup(ctx, stderr); err != nil {
			return fmt.Errorf("bench setup: %w", err)
		}
	}
	if c.duration == 0 {
		fmt.Fprintf(stdout, "creditd bench: setup done: %d customers hold %s credits\n", c.customers, benchMetric)
		return nil
	}
	res := b.run(ctx, stderr)
	if c.json {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		res.print(stdout)
	}
	switch {
	case res.Requests == 0:
		return errors.New("bench: no request completed in the measured time")
	case res.OK == 0:
		return fmt.Errorf("bench: every request failed; errors: %s", res.errorSummary())
	}
	return nil
}

// bencher holds what every worker shares.
type bencher struct {
	cfg   benchConfig
	base  *url.URL
	tr    *http.Transport
	ids   []string // "bench-<i>", built once so that no request formats one
	paths []string // check mode: each customer's entitlement path
	run0  string   // this run's prefix of every idempotency key

	requests atomic.Int64 // for the progress line: every request, warmup included
	errors   atomic.Int64
}

func newBencher(c benchConfig) (*bencher, error) {
	base, err := url.Parse(c.url)
	if err != nil {
		return nil, err
	}
	b := &bencher{
		cfg:  c,
		base: base,
		// The setup's transport (package client runs the setup). The
		// measured requests go on each worker's own connection (wire).
		// Nothing between them and the server: no proxy, no gzip, no
		// HTTP/2 negotiation.
		tr: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          c.concurrency + 8,
			MaxIdleConnsPerHost:   c.concurrency + 8,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: time.Minute, // a wedged server fails requests instead of hanging the run
			DisableCompression:    true,
		},
		ids:  make([]string, c.customers),
		run0: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	for i := range b.ids {
		b.ids[i] = "bench-" + strconv.Itoa(i)
		if c.mode == "check" {
			b.paths = append(b.paths, base.Path+"/v1/customer-by-external-id/"+b.ids[i]+"/entitlements/"+benchMetric)
		}
	}
	return b, nil
}

// runSetup creates the metric and its rule and grants every customer
// benchGrant, through package client (which retries a 503 or a dropped
// connection under the same key). Fixed idempotency keys make it safe to
// rerun on the same database: a second run replays the first's answers and
// grants nothing.
func (b *bencher) runSetup(ctx context.Context, stderr io.Writer) error {
	// The setup shares the workers' transport: no proxy, no gzip.
	cl := client.New(b.cfg.url, b.cfg.key, client.WithHTTPClient(&http.Client{Transport: b.tr}),
		client.WithUserAgent("creditd-bench"))
	_, err := cl.CreateMetric(ctx, client.MetricRequest{WriteOptions: client.WriteOptions{IdempotencyKey: "bench-setup-metric"},
		Key: benchMetric, Name: "bench"})
	if err != nil && client.ErrorCode(err) != client.CodeMetricExists {
		return err
	}
	_, err = cl.CreateRule(ctx, client.RuleRequest{WriteOptions: client.WriteOptions{IdempotencyKey: "bench-setup-rule"},
		BillableMetricKey: benchMetric, CostType: client.CostPerUnit, UnitCost: new(int64(1))})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, granted atomic.Int64
	var wg sync.WaitGroup
	for range min(b.cfg.concurrency, b.cfg.customers) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= b.cfg.customers {
					return
				}
				_, err := cl.Grant(ctx, client.GrantRequest{WriteOptions: client.WriteOptions{IdempotencyKey: "bench-grant-" + strconv.Itoa(i)},
					ExternalCustomerID: b.ids[i], Credits: benchGrant, Source: "topup"})
				if err != nil {
					cancel(fmt.Errorf("grant for %s: %w", b.ids[i], err))
					return
				}
				granted.Add(1)
			}
		})
	}
	stop := b.every(time.Second, func(elapsed time.Duration) {
		fmt.Fprintf(stderr, "bench: setup %4.0fs  granted %d/%d customers\n", elapsed.Seconds(), granted.Load(), b.cfg.customers)
	})
	wg.Wait()
	stop()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: setup done: metric %s, rule 1 mc per unit, %d customers granted\n", benchMetric, b.cfg.customers)
	return nil
}

// every calls f once a period with the time since it was started, until the
// returned stop is called.
func (b *bencher) every(period time.Duration, f func(elapsed time.Duration)) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				f(now.Sub(start))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// window is the measured part of a run: requests that complete inside it
// are counted; those of the warmup before and the drain after are not.
type window struct{ start, end time.Time }

// drainGrace is how long requests still in flight when the window closes
// may take to finish. They are not measured; they are awaited only so that
// debits_total stays exact. A server with a deep queue (32 batches of 1,000
// events) would otherwise hold the run for minutes; past the grace they are
// cancelled and reported as abandoned.
const drainGrace = 10 * time.Second

// pacer spaces requests evenly across all workers for --rate: the n-th
// request of the run is due at start + n/rate.
type pacer struct {
	start    time.Time
	interval float64 // ns
	n        atomic.Int64
}

func (p *pacer) next() time.Time {
	n := p.n.Add(1) - 1
	return p.start.Add(time.Duration(float64(n) * p.interval))
}

// run runs the workers through the warmup and the measured window and
// merges what they saw.
func (b *bencher) run(ctx context.Context, stderr io.Writer) *benchResult {
	c := b.cfg
	start := time.Now()
	w := window{start: start.Add(c.warmup)}
	w.end = w.start.Add(c.duration)
	var p *pacer
	if c.rate > 0 {
		p = &pacer{start: start, interval: float64(time.Second) / c.rate}
	}
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	drained := time.AfterFunc(time.Until(w.end)+drainGrace, cancel)
	defer drained.Stop()
	workers := make([]*worker, c.concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = b.newWorker(reqCtx, i)
		wg.Go(func() { workers[i].loop(reqCtx, w, p) })
	}
	var last int64
	var lastAt time.Duration
	stop := b.every(time.Second, func(elapsed time.Duration) {
		n := b.requests.Load()
		phase := ""
		if lastAt < c.warmup { // this second began in the warmup
			phase = "  (warmup)"
		}
		rate := float64(n-last) / (elapsed - lastAt).Seconds()
		fmt.Fprintf(stderr, "bench: %4.0fs  requests %d  rate %.0f/s  errors %d%s\n",
			elapsed.Seconds(), n, rate, b.errors.Load(), phase)
		last, lastAt = n, elapsed
	})
	wg.Wait()
	stop()
	// A run cut short by a signal is measured up to the signal.
	end := time.Now()
	if end.After(w.end) {
		end = w.end
	}
	measured := max(0, end.Sub(w.start))
	return b.merge(workers, measured)
}

// benchResult is what a run reports, in text or as JSON.
type benchResult struct {
	Mode           string           `json:"mode"`
	Customers      int              `json:"customers"`
	Concurrency    int              `json:"concurrency"`
	BatchSize      int              `json:"batch_size,omitempty"`
	RateLimit      float64          `json:"rate_limit,omitempty"`
	Seconds        float64          `json:"duration_s"`
	Requests       int64            `json:"requests"`
	OK             int64            `json:"ok"` // 2xx answers
	RequestsPerSec float64          `json:"requests_per_sec"`
	Events         int64            `json:"events"` // newly accepted usage events (debits); 0 in check mode
	EventsPerSec   float64          `json:"events_per_sec"`
	Duplicates     int64            `json:"duplicates"`
	Abandoned      int64            `json:"abandoned"` // cancelled in flight after the drain grace or by a signal
	P50            float64          `json:"p50_ms"`
	P95            float64          `json:"p95_ms"`
	P99            float64          `json:"p99_ms"`
	Max            float64          `json:"max_ms"`
	Errors         int64            `json:"errors"`
	ErrorsBy       map[string]int64 `json:"errors_by_status"`
	FirstError     string           `json:"first_error,omitempty"`
	// DebitsTotal counts the events accepted over the whole run, warmup and
	// drain included: exactly what the customers' balances lost, in mc.
	DebitsTotal int64 `json:"debits_total"`
}

func (b *bencher) merge(workers []*worker, measured time.Duration) *benchResult {
	c := b.cfg
	r := &benchResult{Mode: c.mode, Customers: c.customers, Concurrency: c.concurrency,
		RateLimit: c.rate, Seconds: measured.Seconds(), ErrorsBy: map[string]int64{}}
	if c.mode == "batch" {
		r.BatchSize = c.batchSize
	}
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	lat := make([]time.Duration, 0, n)
	for _, w := range workers {
		lat = append(lat, w.lat...)
		r.Requests += w.requests
		r.OK += w.ok
		r.Events += w.events
		r.Duplicates += w.dups
		r.DebitsTotal += w.debits
		r.Abandoned += w.abandoned
		for k, v := range w.errs {
			r.ErrorsBy[k] += v
			r.Errors += v
		}
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
	}
	if s := measured.Seconds(); s > 0 {
		r.RequestsPerSec = float64(r.Requests) / s
		r.EventsPerSec = float64(r.Events) / s
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.P50, r.P95, r.P99 = ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99))
	if len(lat) > 0 {
		r.Max = ms(lat[len(lat)-1])
	}
	return r
}

// percentile is the nearest-rank percentile of sorted latencies: exact, not
// interpolated, so that p99 is a latency some request really had.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func (r *benchResult) print(w io.Writer) {
	rate := ""
	if r.RateLimit > 0 {
		rate = fmt.Sprintf(", capped at %.0f req/s (latency from each request's scheduled start)", r.RateLimit)
	}
	fmt.Fprintf(w, "mode         %s\n", r.Mode)
	fmt.Fprintf(w, "customers    %d\n", r.Customers)
	fmt.Fprintf(w, "concurrency  %d%s\n", r.Concurrency, rate)
	fmt.Fprintf(w, "duration     %.2fs\n", r.Seconds)
	fmt.Fprintf(w, "requests     %d (%d ok)\n", r.Requests, r.OK)
	fmt.Fprintf(w, "throughput   %.1f req/s\n", r.RequestsPerSec)
	switch r.Mode {
	case "batch":
		fmt.Fprintf(w, "events       %d accepted, %.1f events/s (%d per request)\n", r.Events, r.EventsPerSec, r.BatchSize)
	case "usage":
		fmt.Fprintf(w, "debits       %d accepted, %.1f debits/s\n", r.Events, r.EventsPerSec)
	}
	fmt.Fprintf(w, "latency      p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n", r.P50, r.P95, r.P99, r.Max)
	fmt.Fprintf(w, "errors       %s\n", r.errorSummary())
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error  %s\n", r.FirstError)
	}
	if r.Abandoned > 0 {
		fmt.Fprintf(w, "abandoned    %d requests still in flight %s after the end (not measured; what they did is not in debits_total)\n",
			r.Abandoned, drainGrace)
	}
}

// errorSummary is "0", or the count followed by each kind's.
func (r *benchResult) errorSummary() string {
	if r.Errors == 0 {
		return "0"
	}
	kinds := make([]string, 0, len(r.ErrorsBy))
	for k := range r.ErrorsBy {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%s: %d", k, r.ErrorsBy[k])
	}
	return fmt.Sprintf("%d (%s)", r.Errors, strings.Join(kinds, ", "))
}
