package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCheckOrderOddPaths pins that 401 comes first for every path that is
// not public exactly as sent: a path that only cleans to something else
// ("/problems/../v1/customers") needs a key like the path it cleans to.
func TestCheckOrderOddPaths(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		big := `{"x":"` + strings.Repeat("x", 1<<20) + `"}`
		for _, path := range []string{
			"/problems/../v1/customers",
			"/problems/%2e%2e/v1/customers",
			"/problems/..%2Fv1%2Fcustomers",
			"/problems/x/../../v1/customers",
			"/healthz/../v1/customers",
			"/readyz/..",
			"//v1/customers",
			"/v1/customers/",
			"/healthz/",
			"//healthz",
			"/./healthz",
			"/problems/",
			"/problems/a%2Fb",
			"/problems/insufficient-credits/",
		} {
			t.Run(path, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.do(t, req{method: "GET", path: path, apiKey: none}).wantProblem(t, http.StatusUnauthorized, "unauthorized")
				ts.do(t, req{method: "POST", path: path, apiKey: none, body: obj{"external_id": "a"}}).
					wantProblem(t, http.StatusUnauthorized, "unauthorized")
				ts.do(t, req{method: "POST", path: path, apiKey: none, body: big, idem: none}).
					wantProblem(t, http.StatusUnauthorized, "unauthorized")
				ts.do(t, req{method: "POST", path: path, apiKey: none, body: "{", idem: none}).
					wantProblem(t, http.StatusUnauthorized, "unauthorized")
				snap.unchanged(t, path)
			})
		}
		// The public paths, as written, still need no key.
		for _, path := range []string{"/healthz", "/readyz", "/problems/insufficient-credits"} {
			if r := ts.do(t, req{method: "GET", path: path, apiKey: none}); r.status != http.StatusOK {
				t.Errorf("%s without a key = %d, want 200; body: %s", r.desc, r.status, r.body)
			}
		}
	})
}

// TestAnswerBeforeBody pins that an answer given before the body is read
// (401, unknown route, 405, 415, and 413 on an announced length) arrives at
// once, while the client still owes most of its body, and closes the
// connection: the server must not wait for the rest of a body it will
// never use.
func TestAnswerBeforeBody(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		auth := "X-API-Key: " + ts.testKey + "\r\n"
		for _, tc := range []struct {
			name, method, path, header string
			length                     int
			status                     int
		}{
			{"401", "POST", "/v1/customers", "", 100, http.StatusUnauthorized},
			{"401 odd path", "POST", "/problems/../v1/customers", "", 100, http.StatusUnauthorized},
			{"401 wrong key", "POST", "/v1/usage", "X-API-Key: qs_test_nope\r\n", 100, http.StatusUnauthorized},
			{"404 route", "POST", "/v1/nope", auth, 100, http.StatusNotFound},
			{"405", "PUT", "/v1/customers", auth, 100, http.StatusMethodNotAllowed},
			{"405 on a public path", "POST", "/healthz", "", 100, http.StatusMethodNotAllowed},
			{"415", "POST", "/v1/customers", auth + "Content-Type: text/plain\r\n", 100, http.StatusUnsupportedMediaType},
			{"413 announced", "POST", "/v1/customers", auth, 2 << 20, http.StatusRequestEntityTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := stalledRequest(t, ts.URL, tc.method, tc.path, tc.header, tc.length)
				if res.StatusCode != tc.status {
					t.Errorf("%s %s with a stalled body = %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
				}
				if !res.Close {
					t.Errorf("%s %s with a stalled body: the answer keeps the connection open, want Connection: close", tc.method, tc.path)
				}
			})
		}
	})
}

// stalledRequest sends a request announcing a body of length bytes, sends
// one byte of it, and returns the answer (its body closed). It fails the
// test if no answer comes within a few seconds.
func stalledRequest(t *testing.T, baseURL, method, path, header string, length int) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	// Generous against a loaded machine, far below "never".
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: creditd\r\n%sIdempotency-Key: stall\r\nContent-Length: %d\r\n\r\n{",
		method, path, header, length)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s with a stalled body: no answer: %v", method, path, err)
	}
	res.Body.Close()
	return res
}
