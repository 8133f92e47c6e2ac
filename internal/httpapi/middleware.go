package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

// drainUnread is how long the server goes on reading a body it answered
// without reading, before it closes the connection. Long enough for a client
// that is still sending to finish, so that it reads the answer instead of a
// reset; short enough that a client that stalls holds nothing for long.
const drainUnread = time.Second

// public reports whether a request needs no API key. It judges the path as
// sent, and only a clean one: "/problems/../v1/customers" cleans to a path
// that needs a key, so it needs one too, and 401 comes before anything else.
func public(u *url.URL) bool {
	p := u.Path
	if path.Clean(p) != p || path.Clean(u.EscapedPath()) != u.EscapedPath() {
		return false
	}
	if p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/openapi.json" || p == "/docs" {
		return true
	}
	slug, ok := strings.CutPrefix(p, "/problems/")
	return ok && slug != "" && !strings.Contains(slug, "/")
}

// middleware runs every request through the checks in the order the API
// fixes: 401 → route 404/405 → 413/415 → Idempotency-Key → handler (which
// replays, then validates the body, then executes). It also recovers panics,
// logs one line per request and reports it to the observer.
func (s *Server) middleware(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(r.Context(), "panic", "request_id", reqID, "panic", p)
			if sw.status == 0 {
				sendProblem(sw, newProblem("internal", "the server failed to handle the request; it has been logged"))
			}
		}
		elapsed := time.Since(start)
		s.log.InfoContext(r.Context(), "request", "request_id", reqID, "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration_ms", elapsed.Milliseconds())
		if s.observe != nil {
			status := sw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http answers 200
			}
			s.observe.ObserveRequest(r.Pattern, r.Method, status, elapsed)
		}
	}()
	// admit gets the bare writer: http.MaxBytesReader tells the server
	// through it that the connection cannot be reused.
	if err := s.admit(w, r); err != nil {
		if allow, ok := err.Extra["allow"].(string); ok {
			sw.Header().Set("Allow", allow)
		}
		sendProblem(sw, *err)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// admit runs the checks before the handler; a non-nil problem answers the
// request. It may replace r's context (the scope) and body (buffered).
func (s *Server) admit(w http.ResponseWriter, r *http.Request) *Problem {
	if p := s.screen(r); p != nil {
		leaveBody(w, r)
		return p
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodPut {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge()
	}
	if err != nil {
		p := problemOf(credit.Invalid("body", "could not be read"))
		return &p
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		p := newProblem("idempotency-key-required", "every POST and PATCH needs an Idempotency-Key header; retries reuse it")
		return &p
	}
	if err := checkID("Idempotency-Key", key); err != nil {
		p := problemOf(err)
		return &p
	}
	return nil
}

// screen runs the checks that need only the request's head: 401, route
// 404/405, then 415 and 413 on the announced length. A problem it finds
// answers the request with its body unread.
func (s *Server) screen(r *http.Request) *Problem {
	// The route is looked up before the key is checked, though 401 answers
	// first, so that a request refused here is still counted under its
	// route (r.Pattern, which the mux sets again when it serves r).
	_, r.Pattern = s.mux.Handler(r)
	if !public(r.URL) {
		scope, p := s.authenticate(r)
		if p != nil {
			return p
		}
		*r = *r.WithContext(context.WithValue(r.Context(), scopeKey{}, scope))
	}
	if r.Pattern == "" {
		return s.routeProblem(r)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodPut {
		return nil
	}
	// 415 is for a body that is not JSON; a POST without a body (a retry
	// that relies on its replay, say) is judged by the checks that follow.
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) && r.ContentLength != 0 {
		p := newProblem("unsupported-media-type", fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct))
		return &p
	}
	if r.ContentLength > maxBody {
		return tooLarge()
	}
	return nil
}

func tooLarge() *Problem {
	p := newProblem("payload-too-large", fmt.Sprintf("the request body is over %d bytes", maxBody))
	return &p
}

// leaveBody prepares an answer given before the request's body was read.
// Unless the answer closes the connection, Go's server reads the rest of a
// small body before it writes the answer (to keep the connection alive), so
// a client that announces a body and stalls would wait for the read timeout
// for its 401. After the answer, the server reads on for drainUnread at most
// (see net/http's body.Close), then closes.
func leaveBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return // no body: the connection stays reusable
	}
	w.Header().Set("Connection", "close")
	// An error means a writer that cannot set deadlines (a test recorder):
	// there is no connection to free.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainUnread))
}

func (s *Server) authenticate(r *http.Request) (store.Scope, *Problem) {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			key = strings.TrimSpace(v)
		}
	}
	if key == "" {
		p := newProblem("unauthorized", "an API key is required in the X-API-Key header")
		return store.Scope{}, &p
	}
	if apikey.Env(key) == "" {
		p := newProblem("unauthorized", "the API key is not valid")
		return store.Scope{}, &p
	}
	k, err := s.keys.APIKeyByHash(r.Context(), apikey.Hash(key))
	if errors.Is(err, store.ErrNotFound) {
		p := newProblem("unauthorized", "the API key is not valid")
		return store.Scope{}, &p
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "api key lookup", "err", err)
		p := problemOf(err)
		return store.Scope{}, &p
	}
	return store.Scope{TenantID: k.TenantID, Env: k.Env}, nil
}

// routeProblem tells an unknown path (404) from a known path with another
// method (405, with Allow), asking the mux which it is.
func (s *Server) routeProblem(r *http.Request) *Problem {
	h, _ := s.mux.Handler(r)
	rec := &statusWriter{ResponseWriter: discard{header: http.Header{}}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		p := newProblem("method-not-allowed", fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.Header().Get("Allow")))
		p.Extra = map[string]any{"allow": rec.Header().Get("Allow")}
		return &p
	}
	p := problemOf(credit.Errorf(credit.ENotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	return &p
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discard is a ResponseWriter that keeps only headers.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
