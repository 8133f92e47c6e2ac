package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/jobs"
	"github.com/creditd/creditd/internal/ledger"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := c.flags("serve", getenv, stderr)
	pprofAddr := fs.String("pprof-addr", getenv("CREDITD_PPROF_ADDR"), "serve net/http/pprof at this address, e.g. 127.0.0.1:6060; off when empty (CREDITD_PPROF_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := c.logger(stderr)
	st, err := openStore(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := bootstrap(ctx, st, c.bootstrapKey, time.Now(), stdout); err != nil {
		return err
	}
	svc := ledger.New(st, time.Now)
	defer svc.Close()
	ready := func(ctx context.Context) error {
		_, err := st.APIKeyCount(ctx)
		return err
	}
	srv := &http.Server{
		Handler:           httpapi.NewServer(svc, newKeyCache(st, time.Now), log, ready),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
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
	sweeper := &jobs.Sweeper{Service: svc, Interval: c.sweep, Log: log}
	done := make(chan struct{})
	go func() { defer close(done); sweeper.Run(ctx) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		cancel()
		<-done
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	err = srv.Shutdown(shutdown)
	<-done
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
