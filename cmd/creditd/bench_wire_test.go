package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen serves each connection with handle, on a listener of its own, and
// counts the connections.
func listen(t *testing.T, handle func(net.Conn)) (base *url.URL, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go handle(c)
		}
	}()
	base, _ = url.Parse("http://" + ln.Addr().String())
	return base, conns
}

// answerOnce serves each connection one answer and then closes it without
// saying so (no "Connection: close"), as a server does that closes an idle
// connection while a request is on its way. It counts connections and
// requests.
func answerOnce(t *testing.T) (base *url.URL, conns, reqs *atomic.Int64) {
	reqs = new(atomic.Int64)
	base, conns = listen(t, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		reqs.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
		c.Write(body)
	})
	return base, conns, reqs
}

func TestWireSendsAgainOnAClosedKeptConnection(t *testing.T) {
	base, conns, reqs := answerOnce(t)
	w := wire{base: base}
	defer w.close()
	req := &http.Request{Method: http.MethodPost, URL: base, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: base.Host}
	var out bytes.Buffer
	for i, body := range []string{`{"a":1}`, `{"b":22}`, `{"c":333}`} {
		status, err := w.roundTrip(context.Background(), req, []byte(body), &out)
		if err != nil || status != 200 || out.String() != body {
			t.Fatalf("request %d: status %d, body %q, err %v; want 200 echoing %q", i, status, out.String(), err, body)
		}
	}
	// Each request after the first found its kept connection closed and
	// went again, whole, on a new one: three answers, three connections.
	if conns.Load() != 3 || reqs.Load() != 3 {
		t.Errorf("connections %d, requests answered %d; want 3 and 3", conns.Load(), reqs.Load())
	}
}

func TestWireNewConnectionFailsOnce(t *testing.T) {
	base, conns := listen(t, func(c net.Conn) { c.Close() }) // reads nothing, answers nothing
	w := wire{base: base}
	req := &http.Request{Method: http.MethodGet, URL: base, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: base.Host}
	var out bytes.Buffer
	if _, err := w.roundTrip(context.Background(), req, nil, &out); err == nil {
		t.Fatal("a connection closed before any answer: want an error")
	}
	// A fresh connection that fails is the server's failure, not an idle
	// close: it is reported, not sent again.
	if conns.Load() != 1 {
		t.Errorf("connections %d, want 1", conns.Load())
	}
}

func TestWireCancelEndsTheRequestInFlight(t *testing.T) {
	held := make(chan net.Conn, 1)
	base, _ := listen(t, func(c net.Conn) { held <- c }) // holds the connection, never answers
	t.Cleanup(func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	})
	w := wire{base: base}
	defer w.close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req := &http.Request{Method: http.MethodGet, URL: base, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: base.Host}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := w.roundTrip(ctx, req, nil, &out); done <- err }()
	select {
	case err := <-done:
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("cancelled request: err %v, want the deadline the cancel set", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled run's request still waits for its answer")
	}
}
