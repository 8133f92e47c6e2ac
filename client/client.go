// Package client is a Go client of creditd's HTTP API (the QuotaStack-
// compatible /v1 API): customers, metrics and rules, grants, usage,
// balances, ledgers, entitlement checks, reservations, plans and their
// purchases, linked transactions, settings and the webhook log, with
// amounts as int64 millicredits exactly as the API answers them.
//
// Every mutating call is sent under an Idempotency-Key. A caller that owns
// the operation's identity (an order id, a payment id) sets it in the
// request's WriteOptions; otherwise the client draws a random key once per
// call. Retries of that call always reuse its key, so the server applies the
// operation at most once however many attempts it takes.
//
// A call is retried, with exponential backoff and jitter, when the server
// answers 429 or 503 (after its Retry-After when it sends one) or when the
// connection fails. A write is safe to retry after a failed connection only
// because of its key: the server may have committed it before the answer was
// lost, and the retry then replays the stored answer instead of writing
// again. Reads change nothing and are retried the same way. Other answers
// (400, 401, 402, 404, 409, 422, 500…) are returned at once as an *Error.
//
//	c := client.New("http://127.0.0.1:8080", os.Getenv("CREDITD_API_KEY"))
//	_, err := c.Usage(ctx, client.UsageRequest{ExternalCustomerID: "user42",
//		BillableMetricKey: "tokens", Units: 1200})
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == client.CodeInsufficientCredits {
//		// e.Required and e.Available say by how much
//	}
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the retry policy.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 200 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// maxResponse bounds what the client reads of one answer: a ledger page of
// 500 entries with large metadata fits many times over.
const maxResponse = 64 << 20

// Client calls one creditd server with one API key. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	baseErr   error // a base URL that does not parse fails every call
	key       string
	hc        *http.Client
	attempts  int
	baseDelay time.Duration
	maxDelay  time.Duration
	userAgent string
	sleep     func(ctx context.Context, d time.Duration) error // replaced by tests
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc instead of a client of the
// package's own (which bounds each attempt at 70 s, past the server's own
// 60 s write timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithMaxAttempts bounds the attempts of one call, the first included
// (default 4). 1 turns retries off.
func WithMaxAttempts(n int) Option {
	return func(c *Client) { c.attempts = max(1, n) }
}

// WithBackoff sets the retry delays: the first retry waits about base, each
// next one twice as long, never more than maxDelay. A Retry-After longer
// than maxDelay is not waited for: the call returns the answer that asked
// for it.
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(c *Client) {
		c.baseDelay = max(base, 0)
		c.maxDelay = max(maxDelay, c.baseDelay)
	}
}

// WithUserAgent sets the User-Agent header sent with every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the server at baseURL (http://127.0.0.1:8080;
// with or without a trailing slash or /v1) calling with apiKey. A baseURL
// that is not an http or https URL makes every call fail.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		key:       apiKey,
		hc:        &http.Client{Timeout: 70 * time.Second},
		attempts:  DefaultMaxAttempts,
		baseDelay: DefaultBaseDelay,
		maxDelay:  DefaultMaxDelay,
		userAgent: "creditd-go-client",
		sleep:     sleep,
	}
	c.base, c.baseErr = parseBase(baseURL)
	for _, o := range opts {
		o(c)
	}
	return c
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("creditd client: base URL %q is not an http:// or https:// URL", raw)
	}
	// Paths are written from /v1 on; a base that already ends in it would
	// double it.
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/v1")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// WriteOptions are the options of one mutating call, embedded in its
// request; none of them is sent in the body.
type WriteOptions struct {
	// IdempotencyKey names the operation: the server applies one key's
	// request once and replays its answer to every retry for 24 hours. Give
	// one derived from what makes the operation unique (an order id) so that
	// a retry of the whole program is safe too; empty, the client draws a
	// random key for this call, which protects only its own retries.
	IdempotencyKey string `json:"-"`
}

// NewIdempotencyKey returns a fresh random key, for a caller that wants to
// know the key of a call before making it (to log it, or to retry the call
// later by hand).
func NewIdempotencyKey() string {
	var b [16]byte
	crand.Read(b[:]) // never fails
	return "idem-" + hex.EncodeToString(b[:])
}

// keyOf is the key a write is sent under, drawn once per call.
func keyOf(o WriteOptions) string {
	if o.IdempotencyKey != "" {
		return o.IdempotencyKey
	}
	return NewIdempotencyKey()
}

// call is one logical API call: one or more attempts of the same request.
type call struct {
	method string
	path   string     // from /v1 on, with each segment already escaped
	query  url.Values // nil for none
	body   any        // marshalled once; nil for none
	key    string     // the Idempotency-Key of every attempt; writes only
}

// do runs the call with retries and decodes a 2xx answer into out (nil:
// ignore it). It returns the answer's body, for callers that keep it raw.
func (c *Client) do(ctx context.Context, k call, out any) ([]byte, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	var body []byte
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode the request: %w", k.method, k.path, err)
		}
		body = b
	}
	// k.path is escaped already, segment by segment: joined as text, an
	// escaped "/" in an external id stays part of its segment.
	target := c.base.String() + k.path
	if q := k.query.Encode(); q != "" {
		target += "?" + q
	}
	var last error
	for attempt := 1; ; attempt++ {
		data, wait, err := c.attempt(ctx, k, target, body)
		if err == nil {
			if out != nil {
				if err := json.Unmarshal(data, out); err != nil {
					return nil, fmt.Errorf("%s %s: the answer is not the JSON expected: %w", k.method, k.path, err)
				}
			}
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, canceled(ctx, k, last, err)
		}
		if wait < 0 || attempt >= c.attempts {
			if attempt > 1 {
				return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return nil, err
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		last = err
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, canceled(ctx, k, last, serr)
		}
	}
}

// canceled is the error of a call whose context ended: the context's error,
// and the last answer or failure seen, both reachable with errors.Is and
// errors.As.
func canceled(ctx context.Context, k call, last, err error) error {
	if last == nil && !errors.Is(err, ctx.Err()) {
		last = err
	}
	if last == nil {
		return fmt.Errorf("%s %s: %w", k.method, k.path, context.Cause(ctx))
	}
	return fmt.Errorf("%s %s: %w; before that: %w", k.method, k.path, context.Cause(ctx), last)
}

// attempt sends the request once. wait says what to do on failure: < 0
// not to retry, 0 to retry after the usual backoff, > 0 to retry after that
// long (the server's Retry-After).
func (c *Client) attempt(ctx context.Context, k call, target string, body []byte) (data []byte, wait time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, rd)
	if err != nil {
		return nil, -1, fmt.Errorf("%s %s: %w", k.method, k.path, err)
	}
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.key != "" {
		req.Header.Set("Idempotency-Key", k.key)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if permanent(err) {
			return nil, -1, fmt.Errorf("%s %s: %w", k.method, k.path, err)
		}
		return nil, 0, fmt.Errorf("%s %s: %w", k.method, k.path, err)
	}
	defer res.Body.Close()
	data, err = io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	switch {
	case err != nil:
		// The answer was cut off: for a write, whether it committed is
		// unknown, which is what the key is for.
		return nil, 0, fmt.Errorf("%s %s: reading the answer: %w", k.method, k.path, err)
	case len(data) > maxResponse:
		return nil, -1, fmt.Errorf("%s %s: the answer is over %d bytes", k.method, k.path, maxResponse)
	case res.StatusCode/100 == 2:
		return data, 0, nil
	}
	e := newError(k.method, k.path, res, data)
	switch res.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if e.RetryAfter > c.maxDelay {
			return nil, -1, e // longer than this client is willing to wait
		}
		return nil, e.RetryAfter, e
	}
	return nil, -1, e
}

// permanent reports a transport failure that no retry can mend.
func permanent(err error) bool {
	var cert *tls.CertificateVerificationError
	return errors.As(err, &cert)
}

// backoff is the delay before retry n (1 for the first): base·2ⁿ⁻¹ capped
// at maxDelay, of which a random half is kept so that clients failed by the
// same outage do not come back in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.baseDelay
	for i := 1; i < n && d < c.maxDelay; i++ {
		d *= 2
	}
	d = min(d, c.maxDelay)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
// Zero when absent or unreadable.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// segment escapes one path segment: an external id such as "user42:c7" or
// "a/b" stays one segment.
func segment(s string) string { return url.PathEscape(s) }
