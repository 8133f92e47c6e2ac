package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// wire is a worker's own kept-alive HTTP/1.1 connection, driven by the
// worker's goroutine: it writes a request and reads its answer itself. The
// load tool shares the machine's two cores with the server and the
// database it measures, so what it spends per request is taken from them.
// http.Transport hands each request to a writer and a reader goroutine of
// its connection, three wake-ups a request; that cost 63 µs of CPU per
// entitlement check, more than PostgreSQL spent on it (BENCHMARKS.md).
// Writing and parsing stay net/http's (Request.Write, ReadResponse).
type wire struct {
	base   *url.URL
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool // the connection has answered before
	stop   func() bool
}

// requestTimeout bounds a request, so that a wedged server fails requests
// instead of hanging the run.
const requestTimeout = time.Minute

// roundTrip sends req, with payload as its body when req is a POST, and
// reads its answer's body into out. A request
// that fails on a connection that had answered before, with nothing read
// back, is sent once more on a new connection: the server may have closed
// the idle connection as the request left. That is safe: a check changes
// nothing, and every debit carries its Idempotency-Key.
func (w *wire) roundTrip(ctx context.Context, req *http.Request, payload []byte, out *bytes.Buffer) (int, error) {
	status, answered, err := w.try(ctx, req, payload, out)
	if err != nil && !answered && w.reused && ctx.Err() == nil {
		w.close()
		status, _, err = w.try(ctx, req, payload, out)
	}
	if err != nil {
		w.close()
	}
	return status, err
}

func (w *wire) try(ctx context.Context, req *http.Request, payload []byte, out *bytes.Buffer) (status int, answered bool, err error) {
	if w.conn == nil {
		if err := w.dial(ctx); err != nil {
			return 0, false, err
		}
	}
	if err := w.conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return 0, false, err
	}
	if req.Method == http.MethodPost {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(payload)), int64(len(payload))
	}
	if err := req.Write(w.bw); err != nil {
		return 0, false, err
	}
	if err := w.bw.Flush(); err != nil {
		return 0, false, err
	}
	if _, err := w.br.Peek(1); err != nil {
		return 0, false, err
	}
	res, err := http.ReadResponse(w.br, req)
	if err != nil {
		return 0, true, err
	}
	out.Reset()
	_, err = out.ReadFrom(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, true, err
	}
	w.reused = true
	if res.Close {
		w.close()
	}
	return res.StatusCode, true, nil
}

func (w *wire) dial(ctx context.Context) error {
	u := w.base
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if u.Scheme == "https" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname()}}).DialContext(ctx, "tcp", host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return err
	}
	w.conn, w.reused = conn, false
	w.br = bufio.NewReaderSize(conn, 16<<10)
	w.bw = bufio.NewWriterSize(conn, 64<<10) // a 1,000-event batch is about 100 KiB
	// A cancelled run ends the request in flight: its read fails at once.
	w.stop = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (w *wire) close() {
	if w.conn == nil {
		return
	}
	w.stop()
	w.conn.Close()
	w.conn = nil
}
