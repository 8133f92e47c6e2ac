package main

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

// TestShutdownStalledClient cancels serve's context, as SIGTERM does, while
// one request's body never comes and another's is still on its way: the
// second is finished and answered, the first is cut off, and run returns nil
// (exit 0) within the grace period although the body read timeout is far
// longer.
func TestShutdownStalledClient(t *testing.T) {
	const grace = 2 * time.Second
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key, "CREDITD_SHUTDOWN_GRACE", grace.String(),
		"CREDITD_READ_TIMEOUT", "60s", "CREDITD_WRITE_TIMEOUT", "90s"))
	addr := strings.TrimPrefix(s.URL, "http://")

	body := `{"external_id":"in-flight"}`
	stalled, _ := bodyInFlight(t, addr, key, "stalled", 100)
	finishing, finishingR := bodyInFlight(t, addr, key, "finishing", len(body))
	idle := idleConn(t, addr)

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// Once the listener is closed the shutdown is under way: the rest of
	// the finishing body arrives during it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 10s after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := io.WriteString(finishing, body); err != nil {
		t.Fatalf("send the rest of the in-flight body: %v", err)
	}
	res, err := http.ReadResponse(finishingR, nil)
	if err != nil {
		t.Fatalf("the request in flight at shutdown got no answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("the request in flight at shutdown = %d, want 201", res.StatusCode)
	}

	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v after its context was cancelled, want nil (exit 0)\nstderr:\n%s", err, s.stderr)
	}
	if took := time.Since(start); took > grace+slack {
		t.Errorf("run returned %v after its context was cancelled, want within the %v grace period", took, grace)
	}
	if !strings.Contains(s.stderr.String(), "level=WARN") {
		t.Errorf("cutting off a stalled client logged no warning\nstderr:\n%s", s.stderr)
	}
	for name, c := range map[string]net.Conn{"stalled body": stalled, "idle keep-alive": idle} {
		if _, err := readUntilClosed(c, time.Now().Add(slack)); err != nil {
			t.Errorf("%s connection after shutdown: %v", name, err)
		}
	}
}

// TestShutdownIdleConnections pins that idle keep-alive connections do not
// hold a shutdown: with nothing in flight, run returns at once, far within
// the grace period.
func TestShutdownIdleConnections(t *testing.T) {
	const grace = 30 * time.Second
	e, _ := dbEnv(t)
	s := startServer(t, e.with("CREDITD_SHUTDOWN_GRACE", grace.String(), "CREDITD_IDLE_TIMEOUT", "5m"))
	addr := strings.TrimPrefix(s.URL, "http://")
	var conns []net.Conn
	for range 20 {
		conns = append(conns, idleConn(t, addr))
	}
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("run returned %v after its context was cancelled, want nil\nstderr:\n%s", err, s.stderr)
	}
	// The shutdown polls its connections every half second at most.
	if took := time.Since(start); took > slack {
		t.Errorf("run returned %v after its context was cancelled with only idle connections open, want within %v", took, slack)
	}
	for _, c := range conns {
		if _, err := readUntilClosed(c, time.Now().Add(slack)); err != nil {
			t.Errorf("idle keep-alive connection after shutdown: %v", err)
		}
	}
}

// bodyInFlight starts a POST /v1/customers announcing a body of length
// bytes and returns once its handler is reading the body (the server sent
// 100 Continue); the body is left to the caller. The connection closes at
// the end of the test.
func bodyInFlight(t *testing.T, addr, key, idem string, length int) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/customers HTTP/1.1\r\nHost: creditd\r\nX-API-Key: %s\r\nIdempotency-Key: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", key, idem, length)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("POST with Expect: 100-continue: %v", err)
	}
	if res.StatusCode != http.StatusContinue {
		t.Fatalf("POST with Expect: 100-continue = %d, want 100", res.StatusCode)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, r
}

// idleConn returns a keep-alive connection that has been answered once and
// now waits for its next request.
func idleConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: creditd\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Close {
		t.Fatal("GET /healthz closed its connection, want it kept alive")
	}
	return conn
}
