// Package httpapi serves creditd's HTTP API, wire-compatible with the public
// QuotaStack API: routing, authentication, JSON in and out, idempotency, and
// the mapping of errors to problem responses (errors.go, the one table).
// Handlers are thin: they decode, call package ledger, and encode.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// Server is the API's http.Handler.
type Server struct {
	svc   *ledger.Service
	keys  KeyLookup
	log   *slog.Logger
	mux   *http.ServeMux
	ready func(context.Context) error
	// observe is told of every request answered (WithMetrics); nil: none.
	observe RequestObserver
}

// Option configures a Server.
type Option func(*Server)

// RequestObserver is told of every request once it is answered, for
// metrics. It runs on the request's goroutine, so it must be quick.
type RequestObserver interface {
	// ObserveRequest reports the mux pattern that matched the request
	// ("POST /v1/usage"; empty when none did), its method as sent, the
	// status answered and how long the answer took.
	ObserveRequest(pattern, method string, status int, elapsed time.Duration)
}

// WithMetrics serves h at GET /metrics, which needs no API key (like
// /healthz), and reports every request to o. Either may be nil.
func WithMetrics(h http.Handler, o RequestObserver) Option {
	return func(s *Server) {
		if h != nil {
			// Here rather than in routes: the endpoint exists only when
			// the caller has metrics to serve.
			s.mux.Handle("GET /metrics", h)
		}
		s.observe = o
	}
}

// KeyLookup finds a stored API key by the hash of the presented key.
type KeyLookup interface {
	APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error)
}

// NewServer returns the API handler. ready reports whether the server can
// take traffic (for /readyz). Keys found through keys are trusted for a
// minute (keyCache).
func NewServer(svc *ledger.Service, keys KeyLookup, log *slog.Logger, ready func(context.Context) error, opts ...Option) *Server {
	cached := newKeyCache(boundedKeys{keys, svc.Timeout()}, time.Now)
	s := &Server{svc: svc, keys: cached, log: log, mux: http.NewServeMux(), ready: ready}
	s.routes()
	for _, o := range opts {
		o(s)
	}
	return s
}

// boundedKeys gives key lookups the service's database deadline: every
// request starts with one, and a hung database must fail it within seconds
// (503), not hold it.
type boundedKeys struct {
	KeyLookup
	timeout time.Duration
}

func (k boundedKeys) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	return k.KeyLookup.APIKeyByHash(ctx, hash)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.middleware(w, r)
}

// handlerFunc is a handler that returns its error for one place to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeProblem(w, r, s.log, err)
		}
	})
}

type scopeKey struct{}

// scopeOf returns the tenant and environment the request's key belongs to.
func scopeOf(ctx context.Context) store.Scope {
	s, _ := ctx.Value(scopeKey{}).(store.Scope)
	return s
}
