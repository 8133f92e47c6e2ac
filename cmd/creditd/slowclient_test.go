package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slack is what the tests allow on top of a configured bound: the server's
// timers, its scheduling on a loaded machine, and the test's own.
const slack = 2 * time.Second

// stall is one way a client can hold a connection: what it sends, then
// stops, and how long the server may take to close the connection.
type stall struct {
	name  string
	send  func(key string, i int) string
	bound time.Duration
}

// TestSlowClients holds 200 connections that stall in every way a client
// can (silent, partial headers, partial bodies with and without a key,
// responses left unread) against a real "creditd serve" with small timeouts,
// checks that a normal client's requests still answer in their usual time
// meanwhile, and that the server closes every stalled connection within its
// bound.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		// Timing-bound, and CI's first run (not short) has it; under the race
		// detector beside the other packages' tests, 30 requests can take longer
		// than the shortest timeout, which leaves the test nothing to prove.
		t.Skip("timing-bound: runs without -short")
	}
	const (
		readHeader = 5 * time.Second
		read       = 6 * time.Second
		write      = 8 * time.Second
		idle       = 6 * time.Second
	)
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key,
		"CREDITD_READ_HEADER_TIMEOUT", readHeader.String(), "CREDITD_READ_TIMEOUT", read.String(),
		"CREDITD_WRITE_TIMEOUT", write.String(), "CREDITD_IDLE_TIMEOUT", idle.String()))
	addr := strings.TrimPrefix(s.URL, "http://")

	body := func(key string, i int) string {
		auth := ""
		if key != "" {
			auth = "X-API-Key: " + key + "\r\n"
		}
		return fmt.Sprintf("POST /v1/customers HTTP/1.1\r\nHost: creditd\r\n%sIdempotency-Key: stall-%d\r\n"+
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{", auth, i)
	}
	stalls := []stall{
		{"silent", func(string, int) string { return "" }, readHeader},
		{"partial headers", func(key string, i int) string {
			if i%2 == 0 {
				key = "" // half without a key: it makes no difference before the headers end
			}
			return "POST /v1/customers HTTP/1.1\r\nHost: creditd\r\nX-API-Key: " + key + "\r\nContent-Le"
		}, readHeader},
		{"partial body with a key", body, read},
		{"partial body without a key", func(_ string, i int) string { return body("", i) }, read},
		{"responses unread", func(key string, _ int) string {
			return strings.Repeat("GET /v1/customers HTTP/1.1\r\nHost: creditd\r\nX-API-Key: "+key+"\r\n\r\n", 20)
			// Each answer must be written within the write timeout; the idle
			// timeout runs from the last one (on a loaded machine, or under
			// the race detector, twenty answers take seconds).
		}, write + idle},
	}

	type held struct {
		stall
		conn   net.Conn
		opened time.Time
	}
	var conns []held
	t.Cleanup(func() {
		for _, h := range conns {
			h.conn.Close()
		}
	})
	for i := range 200 {
		st := stalls[i%len(stalls)]
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial stalled connection %d: %v", i, err)
		}
		conns = append(conns, held{st, conn, time.Now()})
		if _, err := io.WriteString(conn, st.send(key, i)); err != nil {
			t.Fatalf("%s: write: %v", st.name, err)
		}
	}

	// A request that waited on a held connection would take at least the
	// shortest timeout (5 s); the usual time is a few milliseconds.
	const usual = 2 * time.Second
	for i := range 10 {
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/customers", fmt.Sprintf(`{"external_id":"normal-%d"}`, i)},
			{"GET", "/v1/customers", ""},
			{"GET", "/healthz", ""},
		} {
			start := time.Now()
			status := normalRequest(t, s.URL, key, r.method, r.path, r.body)
			if took := time.Since(start); took > usual {
				t.Errorf("%s %s took %v while connections were held, want under %v", r.method, r.path, took, usual)
			}
			if status >= 300 {
				t.Errorf("%s %s = %d while connections were held, want 2xx", r.method, r.path, status)
			}
		}
	}
	if open := conns[0]; !stillOpen(open.conn) {
		t.Fatalf("the normal requests took so long that the stalled connections were gone before they ended (%v); the test proves nothing on a machine this slow", time.Since(open.opened))
	}

	var wg sync.WaitGroup
	for _, h := range conns {
		wg.Go(func() {
			got, err := readUntilClosed(h.conn, h.opened.Add(h.bound+slack))
			if err != nil {
				t.Errorf("%s: connection not closed by the server within %v + %v: %v", h.name, h.bound, slack, err)
				return
			}
			if h.name == "partial body without a key" && !strings.HasPrefix(got, "HTTP/1.1 401 ") {
				t.Errorf("%s: answered %q, want a 401", h.name, firstLine(got))
			}
		})
	}
	wg.Wait()
}

// TestUnauthenticatedStall pins that a request without a key that announces
// a body and stalls gets its 401 at once, not when the body's read timeout
// ends, and that its connection is closed well before that timeout too.
func TestUnauthenticatedStall(t *testing.T) {
	e, _ := dbEnv(t)
	s := startServer(t, e.with("CREDITD_READ_TIMEOUT", "50s"))
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1/usage HTTP/1.1\r\nHost: creditd\r\nIdempotency-Key: k\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	// Far below the 50 s read timeout, generous against a loaded machine.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled request without a key: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !res.Close {
		t.Errorf("stalled request without a key = %d (closing: %v), want 401 closing the connection", res.StatusCode, res.Close)
	}
	if _, err := readUntilClosed(conn, time.Now().Add(10*time.Second)); err != nil {
		t.Errorf("the connection of a stalled request without a key stayed open: %v", err)
	}
}

// TestHeaderSize pins that headers are bounded well below net/http's
// default of 1 MiB, and that ordinary headers fit.
func TestHeaderSize(t *testing.T) {
	e, _ := dbEnv(t)
	s := startServer(t, e)
	for _, tc := range []struct {
		size int
		want int
	}{
		{8 << 10, http.StatusOK},
		{128 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", strings.Repeat("x", tc.size))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /healthz with %d bytes of headers: %v", tc.size, err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET /healthz with %d bytes of headers = %d, want %d", tc.size, res.StatusCode, tc.want)
		}
	}
}

// normalRequest sends one request on a connection of its own and returns
// its status.
func normalRequest(t *testing.T, baseURL, key, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, baseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("normal-%d", time.Now().UnixNano()))
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// readUntilClosed reads conn until the server closes it (what it sent is
// returned), or fails when deadline passes first.
func readUntilClosed(conn net.Conn, deadline time.Time) (string, error) {
	conn.SetReadDeadline(deadline)
	var got strings.Builder
	_, err := io.Copy(&got, conn)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return got.String(), nil // EOF, or a reset: closed either way
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return got.String(), errors.New("still open at the deadline")
	}
	return got.String(), err
}

// stillOpen reports whether the server has not closed conn yet; it is for a
// connection the server sends nothing on.
func stillOpen(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := conn.Read(make([]byte, 1))
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
