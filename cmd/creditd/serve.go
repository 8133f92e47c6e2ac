package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/jobs"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/metrics"
)

// serveGCPercent is the garbage collector's target unless GOGC is set. The
// server's live heap is small (about 10 MB under checks) and every request
// allocates, so at Go's default of 100 the collector ran four times a
// second under 7,000 entitlement checks/s, each mark phase taking a share
// of one of two cores for 11–19 ms: the checks in those windows made the
// tail. At 400 it runs a quarter as often, for about 40 MB more heap; p99
// of the check on PostgreSQL went from 1.8–2.7 to 1.5–2.1 ms in five
// interleaved pairs (BENCHMARKS.md).
const serveGCPercent = 400

// gcTarget is the collector's target serve sets, and false where the
// environment's GOGC (a number or "off") already decided it.
func gcTarget(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return serveGCPercent, true
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := c.flags("serve", getenv, stderr)
	pprofAddr := fs.String("pprof-addr", getenv("CREDITD_PPROF_ADDR"), "serve net/http/pprof at this address, e.g. 127.0.0.1:6060; off when empty (CREDITD_PPROF_ADDR)")
	var wh webhookConfig
	wh.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := c.logger(stderr)
	if pct, ok := gcTarget(getenv); ok {
		debug.SetGCPercent(pct)
	}
	disp, err := wh.dispatcher(log)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := bootstrap(ctx, st, c.bootstrapKey, time.Now(), stdout); err != nil {
		return err
	}
	reg, m := newMetrics(st)
	svc := ledger.New(st, time.Now, ledger.WithTimeout(c.dbTimeout), ledger.WithWebhooks(httpapi.EncodeEvent, disp.Notify),
		ledger.WithObserver(m))
	defer svc.Close()
	disp.Outbox = svc
	disp.Observer = m
	// A database that cannot take writes (a read-only file, a full disk, a
	// standby) would answer every write 503: say so now instead of
	// starting "ready".
	if err := svc.Ready(ctx); err != nil {
		return fmt.Errorf("the database cannot take writes: %w", err)
	}
	var running handlers
	api := httpapi.NewServer(svc, st, log, svc.Ready, httpapi.WithMetrics(metrics.Handler(reg, log), m))
	srv := c.timeouts.server(running.track(api))
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr, stdout, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "creditd: listening on http://%s\n", ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sweeper := &jobs.Sweeper{Service: svc, Interval: c.sweep, Log: log, WebhookRetention: wh.retention, Observe: m.Swept}
	done, dispatched := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); sweeper.Run(ctx) }()
	// The dispatcher stops last, after the HTTP server: a delivery cut short
	// by the shutdown is sent again, by any instance, once its lease ends.
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopDispatch(); <-dispatched }()
	go func() { defer close(dispatched); disp.Run(dctx) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		cancel()
		<-done
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	err = shutdown(srv, &running, c.timeouts.grace, log)
	<-done
	return err
}

// maxHeaderBytes bounds a request's headers (net/http's default is 1 MiB):
// the API's headers are a key, an Idempotency-Key and a few standard ones,
// and a client that stalls should hold kilobytes, not a megabyte.
const maxHeaderBytes = 64 << 10

// server is the HTTP server with every way a client can hold a connection
// bounded: its headers, its body, its answer, and the wait between requests.
// WriteTimeout runs from the end of the headers (net/http's rule), so it
// covers the body's upload as well as the handler and the answer.
func (t timeouts) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// shutdown stops srv within grace: it stops accepting, closes idle
// connections at once, and lets in-flight requests finish. What is still
// open when the grace is nearly over (a client that never finishes its body,
// a handler blocked on it) is cut off, and that is not a failure: the exit
// stays clean. The last tenth of the grace is kept for the cut-off handlers
// to return, so that the store they use outlives them.
func shutdown(srv *http.Server, running *handlers, grace time.Duration, log *slog.Logger) error {
	end := time.Now().Add(grace)
	ctx, stop := context.WithDeadline(context.Background(), end.Add(-grace/10))
	defer stop()
	err := srv.Shutdown(ctx)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Warn("shutdown grace period over: cutting off the connections still open", "grace", grace, "requests", running.count())
	if err := srv.Close(); err != nil {
		log.Warn("shutdown: close", "err", err)
	}
	ctx, stop = context.WithDeadline(context.Background(), end)
	defer stop()
	if !running.wait(ctx) {
		log.Warn("shutdown: handlers still running after the cut-off", "requests", running.count())
	}
	return nil
}

// handlers counts the requests being handled, so that a shutdown that cut
// connections off can wait for their handlers (http.Server.Close does not).
type handlers struct{ n atomic.Int64 }

func (h *handlers) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.n.Add(1)
		defer h.n.Add(-1)
		next.ServeHTTP(w, r)
	})
}

func (h *handlers) count() int64 { return h.n.Load() }

// wait reports whether every handler returned before ctx ended. It polls,
// as http.Server.Shutdown does: a cut-off handler returns within moments.
func (h *handlers) wait(ctx context.Context) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.count() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
