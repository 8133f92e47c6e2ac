package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

const usage = `creditd — a self-hosted, credit-native billing engine

Usage:
  creditd serve                      serve the HTTP API (migrates first)
  creditd migrate                    bring the database schema up to date
  creditd keys create --env test|live
                                     print a new API key for the server's tenant
  creditd plans create --key K --name N --price MC --credits MC
                [--priority P] [--duration D] [--pay-from-max-priority P]
                --env test|live
                                     add a plan to the server's catalog: price
                                     and credits in millicredits; D a Go duration
                                     (24h) or seconds, none (default): no expiry
  creditd plans list --env test|live list the catalog, archived plans included
  creditd plans archive --key K --env test|live
                                     take a plan out of sale
  creditd bench [--mode usage|batch|check] [--customers N] [--concurrency C]
                [--duration D] [--warmup D] [--rate R] [--batch-size B]
                [--setup=false] [--json] [--url URL] [--key KEY]
                                     load a running server over HTTP and report
                                     throughput, latency percentiles and errors
                                     (creditd bench -h lists every flag)

Commands over a running server's API (--url, --key; --help on each for all
its flags; amounts in millicredits, --credits for credits; --json prints the
API's JSON; a customer is --customer-id ID or --external-id EXT):
  creditd customers list [--limit N] [--cursor C] [--all]
                                     list the customers, one page or --all
  creditd customers get CUSTOMER     show one customer
  creditd grant CUSTOMER --amount MC [--priority P] [--expires-in D |
                --expires-at T] [--source S] [--reason R] [--price-paid N
                --currency C] [--metadata JSON] [--idempotency-key K]
                                     grant a credit block (creates an unknown
                                     --external-id)
  creditd balance CUSTOMER [--blocks]
                                     show the balance, and the live blocks in
                                     burn order
  creditd ledger CUSTOMER [--type T] [--limit N] [--cursor C] [--all]
                                     list the ledger, newest entry first
  creditd usage CUSTOMER --metric KEY --units N [--metadata JSON]
                [--idempotency-key K]
                                     record a usage event; refused with what is
                                     required and available when it costs more
                                     than the effective balance

Configuration (flags of serve override the environment):
  CREDITD_ADDR            listen address (default 127.0.0.1:8080)
  CREDITD_DATABASE_URL    database: a path or sqlite:PATH (default ./creditd.db),
                          or postgres://… for PostgreSQL
  CREDITD_BOOTSTRAP_KEY   on first start, install this qs_test_/qs_live_ key
                          instead of generating a live and a test key
  CREDITD_LOG_FORMAT      text or json (default text)
  CREDITD_SWEEP_INTERVAL  how often due expiries are recorded (default 5s)
  CREDITD_DB_TIMEOUT      deadline of every database call; past it the request
                          answers 503 with Retry-After (default 5s)
  CREDITD_READ_HEADER_TIMEOUT
                          longest time to read a request's headers (default 5s)
  CREDITD_READ_TIMEOUT    longest time to read a whole request, body
                          included (default 30s)
  CREDITD_WRITE_TIMEOUT   longest time from the end of a request's headers to
                          the end of its answer, body upload included; longer
                          than CREDITD_READ_TIMEOUT (default 60s)
  CREDITD_IDLE_TIMEOUT    how long a keep-alive connection may wait for its
                          next request (default 60s)
  CREDITD_SHUTDOWN_GRACE  on SIGTERM, how long in-flight requests may take;
                          what is still open then is cut off (default 10s)
  CREDITD_PPROF_ADDR      serve net/http/pprof at this address, on its own
                          listener (flag --pprof-addr; off by default). It has
                          no authentication: bind it to loopback
                          (127.0.0.1:6060) or a private interface only

Configuration of bench:
  CREDITD_BENCH_URL       the server to load (default http://127.0.0.1:8080)
  CREDITD_API_KEY         the API key bench sends (or --key)

Configuration of the API commands (customers, grant, balance, ledger, usage):
  CREDITD_URL             the server (default http://127.0.0.1:8080; or --url)
  CREDITD_API_KEY         the API key they send (or --key)
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keys(ctx, args[1:], getenv, stdout, stderr)
	case "plans":
		return plans(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], getenv, stdout, stderr)
	case "customers":
		return customersCmd(ctx, args[1:], getenv, stdout, stderr)
	case "grant":
		return grantCmd(ctx, args[1:], getenv, stdout, stderr)
	case "balance":
		return balanceCmd(ctx, args[1:], getenv, stdout, stderr)
	case "ledger":
		return ledgerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "usage":
		return usageCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// config is what every command reads from flags and CREDITD_* variables.
type config struct {
	addr         string
	databaseURL  string
	bootstrapKey string
	logFormat    string
	sweep        time.Duration
	dbTimeout    time.Duration
	timeouts     timeouts
}

// timeouts bound how long a client may hold a connection, and how long a
// shutdown waits for it.
type timeouts struct {
	readHeader time.Duration // the request line and headers
	read       time.Duration // the whole request, body included
	write      time.Duration // from the end of the headers to the last byte answered
	idle       time.Duration // a keep-alive connection between requests
	grace      time.Duration // SIGTERM: in-flight requests finish within it, then are cut off
}

func (c *config) flags(name string, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", env("CREDITD_ADDR", "127.0.0.1:8080"), "listen address (CREDITD_ADDR)")
	fs.StringVar(&c.databaseURL, "database-url", env("CREDITD_DATABASE_URL", "./creditd.db"), "database: a path, sqlite:PATH, or postgres://… (CREDITD_DATABASE_URL)")
	fs.StringVar(&c.bootstrapKey, "bootstrap-key", getenv("CREDITD_BOOTSTRAP_KEY"), "first API key to install on an empty database (CREDITD_BOOTSTRAP_KEY)")
	fs.StringVar(&c.logFormat, "log-format", env("CREDITD_LOG_FORMAT", "text"), "log format: text or json (CREDITD_LOG_FORMAT)")
	duration := func(p *time.Duration, name, variable, def, usage string) {
		d, err := time.ParseDuration(env(variable, def))
		if err != nil || d <= 0 {
			d = -1 // reported by validate
		}
		fs.DurationVar(p, name, d, usage+" ("+variable+")")
	}
	duration(&c.sweep, "sweep-interval", "CREDITD_SWEEP_INTERVAL", "5s", "how often due expiries are recorded")
	duration(&c.dbTimeout, "db-timeout", "CREDITD_DB_TIMEOUT", "5s", "deadline of every database call: a read, a group's transaction, a key lookup")
	duration(&c.timeouts.readHeader, "read-header-timeout", "CREDITD_READ_HEADER_TIMEOUT", "5s", "longest time to read a request's headers")
	duration(&c.timeouts.read, "read-timeout", "CREDITD_READ_TIMEOUT", "30s", "longest time to read a whole request, body included")
	duration(&c.timeouts.write, "write-timeout", "CREDITD_WRITE_TIMEOUT", "60s", "longest time from the end of a request's headers to the end of its answer")
	duration(&c.timeouts.idle, "idle-timeout", "CREDITD_IDLE_TIMEOUT", "60s", "how long a keep-alive connection may wait for its next request")
	duration(&c.timeouts.grace, "shutdown-grace", "CREDITD_SHUTDOWN_GRACE", "10s", "on SIGTERM, how long in-flight requests may take before they are cut off")
	return fs
}

func (c *config) validate() error {
	for _, d := range []struct {
		value    time.Duration
		variable string
		example  string
	}{
		{c.sweep, "CREDITD_SWEEP_INTERVAL", "5s"},
		{c.dbTimeout, "CREDITD_DB_TIMEOUT", "5s"},
		{c.timeouts.readHeader, "CREDITD_READ_HEADER_TIMEOUT", "5s"},
		{c.timeouts.read, "CREDITD_READ_TIMEOUT", "30s"},
		{c.timeouts.write, "CREDITD_WRITE_TIMEOUT", "60s"},
		{c.timeouts.idle, "CREDITD_IDLE_TIMEOUT", "60s"},
		{c.timeouts.grace, "CREDITD_SHUTDOWN_GRACE", "10s"},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s must be a positive duration such as %s", d.variable, d.example)
		}
	}
	// The write timeout runs from the end of the headers, so it includes
	// the body's upload: a request read in time must have time to answer.
	if c.timeouts.write <= c.timeouts.read {
		return fmt.Errorf("CREDITD_WRITE_TIMEOUT (%v) must be longer than CREDITD_READ_TIMEOUT (%v)", c.timeouts.write, c.timeouts.read)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("log format %q is neither text nor json", c.logFormat)
	}
	return nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// openStore opens and migrates the database the URL names.
func openStore(ctx context.Context, url string) (store.Store, error) {
	var st store.Store
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		st = db
	case strings.HasPrefix(url, "sqlite:"):
		db, err := sqlite.Open(strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//"))
		if err != nil {
			return nil, err
		}
		st = db
	default:
		db, err := sqlite.Open(url)
		if err != nil {
			return nil, err
		}
		st = db
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	if err := c.flags("migrate", getenv, stderr).Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "creditd: database is up to date")
	return st.Close()
}
