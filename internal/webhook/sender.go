package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/creditd/creditd/internal/store"
)

// DefaultTimeout bounds one attempt, from dialling to the answer's headers
// and the part of its body that is read (the API spec's 5 s).
const DefaultTimeout = 5 * time.Second

// UserAgent is sent with every delivery, so receivers can tell webhooks
// apart in their logs.
const UserAgent = "creditd-webhooks"

// drainLimit is how much of an answer's body is read before closing it:
// enough that a short body leaves the connection reusable, little enough
// that a receiver streaming a large answer costs nothing.
const drainLimit = 4 << 10

// maxErrorLen keeps an attempt's Error short: it is shown to people, and a
// driver's error can quote a whole certificate chain.
const maxErrorLen = 200

// SenderOptions configures a Sender. The zero value is the spec's: a 5 s
// timeout, private addresses allowed.
type SenderOptions struct {
	// Timeout bounds one attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// DenyPrivate refuses to connect to loopback, private, link-local,
	// unspecified, multicast, CGNAT and IPv6 unique-local addresses. The
	// check runs on the address being dialled, after DNS resolution, so a
	// name that resolves (or is rebound) to such an address is refused too.
	DenyPrivate bool
}

// Sender makes delivery attempts. It is safe for concurrent use, and keeps
// connections to receivers open between attempts.
type Sender struct {
	client  *http.Client
	timeout time.Duration
}

// NewSender returns a Sender configured by o.
func NewSender(o SenderOptions) *Sender {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if o.DenyPrivate {
		dialer.Control = denyPrivate
	}
	transport := &http.Transport{
		// No proxy, even one set in the environment: the deny-private check
		// must see the receiver's address, not a proxy's.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 16, // a tenant's customers share one URL, one per worker
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
	}
	return &Sender{
		timeout: timeout,
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// A redirect is an answer, and not a 2xx: following it would
			// send a signed event to a URL the tenant did not configure.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Timeout is the bound of one attempt.
func (s *Sender) Timeout() time.Duration { return s.timeout }

// CloseIdleConnections closes the connections kept for later attempts.
func (s *Sender) CloseIdleConnections() { s.client.CloseIdleConnections() }

// Send delivers payload, the body of event eventID, to url, signed with
// secret as of now (the Standard Webhooks scheme), and describes the attempt.
// Any 2xx answer is a success: StatusCode set, Error empty. Otherwise Error
// says what went wrong, and StatusCode is the answer's status, or 0 when
// there was no answer.
func (s *Sender) Send(ctx context.Context, url string, secret []byte, eventID string, payload []byte, now time.Time) store.WebhookAttempt {
	a := store.WebhookAttempt{EventID: eventID, At: now}
	// The elapsed time is measured on the monotonic clock; now only stamps
	// the attempt (and the signature), so a test clock can drive it.
	start := time.Now()
	status, err := s.send(ctx, url, secret, eventID, payload, now)
	a.Duration = time.Since(start)
	a.StatusCode = status
	if err != nil {
		a.Error = truncate(describe(err, s.timeout))
	}
	return a
}

// attemptError is a failure already described for people.
type attemptError struct{ msg string }

func (e attemptError) Error() string { return e.msg }

func (s *Sender) send(ctx context.Context, rawURL string, secret []byte, eventID string, payload []byte, now time.Time) (int, error) {
	if rawURL == "" {
		return 0, attemptError{"no webhook url"}
	}
	if len(secret) == 0 {
		// An empty HMAC key signs nothing a receiver could trust.
		return 0, attemptError{"no webhook secret"}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, attemptError{"invalid url"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return 0, attemptError{fmt.Sprintf("unsupported url scheme %q", u.Scheme)}
	}
	wh, err := standardwebhooks.NewWebhookRaw(secret)
	if err != nil {
		return 0, fmt.Errorf("signing key: %w", err)
	}
	sig, err := wh.Sign(eventID, now, payload)
	if err != nil {
		return 0, fmt.Errorf("signing: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return 0, attemptError{"invalid url"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(standardwebhooks.HeaderWebhookID, eventID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Reading a little of the body lets the transport reuse the
	// connection; the answer's content means nothing to us.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, nil
	case code >= 300 && code < 400:
		return code, attemptError{fmt.Sprintf("status %d: redirects are not followed", code)}
	default:
		return code, attemptError{fmt.Sprintf("status %d", code)}
	}
}

// describe turns a failed attempt's error into a short sentence for people:
// the cause, without Go's layers of "Post \"url\": dial tcp …".
func describe(err error, timeout time.Duration) string {
	var st attemptError
	var pe *privateAddrError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	case errors.As(err, &st):
		return st.msg
	case errors.As(err, &pe):
		return pe.Error()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout after " + timeout.String()
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "dns: no such host " + dnsErr.Name
		}
		return "dns: " + dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case errors.As(err, &certErr):
		return "tls: " + certErr.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	// Cut on a rune boundary so the stored text stays valid UTF-8.
	cut := maxErrorLen
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// privateAddrError is a dial refused by DenyPrivate.
type privateAddrError struct{ addr string }

func (e *privateAddrError) Error() string { return "refused: private address " + e.addr }

// denyPrivate is a net.Dialer Control function: it runs after resolution,
// on the very address about to be connected, which is what makes the check
// immune to DNS rebinding.
func denyPrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address we cannot read is not one we can vouch for.
		return &privateAddrError{addr: address}
	}
	if isPrivate(ap.Addr()) {
		return &privateAddrError{addr: ap.Addr().WithZone("").Unmap().String()}
	}
	return nil
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8") // Linux dials 0.x as the local host
)

// isPrivate reports whether a is an address a public webhook must not reach:
// loopback, private (RFC 1918 and IPv6 unique-local fc00::/7), link-local
// (cloud metadata lives at 169.254.169.254), unspecified, multicast, CGNAT.
// An IPv4-mapped IPv6 address is judged by its IPv4 address.
func isPrivate(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsLinkLocalMulticast() || cgnat.Contains(a) || thisNetwork.Contains(a)
}
