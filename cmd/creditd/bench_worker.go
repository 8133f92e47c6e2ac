package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// worker keeps one request in flight at a time, on its own connection. It
// reuses its request, body buffer and response buffer, so that a measured
// request costs the client little more than net/http's own allocations.
type worker struct {
	b    *bencher
	id   string
	seq  int
	ctx  context.Context
	wire wire
	req  *http.Request
	buf  []byte   // the request body being built
	key  []byte   // the request's Idempotency-Key being built
	idem []string // the Idempotency-Key header's value, rewritten in place
	resp bytes.Buffer

	// What the worker saw: in the measured window, except debits.
	lat       []time.Duration
	requests  int64
	ok        int64
	events    int64
	dups      int64
	debits    int64 // whole run: what the balances lost
	abandoned int64
	errs      map[string]int64
	firstErr  string
}

func (b *bencher) newWorker(ctx context.Context, i int) *worker {
	w := &worker{b: b, id: strconv.Itoa(i), ctx: ctx, wire: wire{base: b.base}, errs: map[string]int64{},
		lat: make([]time.Duration, 0, 4096)}
	u := *b.base
	u.RawPath = ""
	method := http.MethodPost
	switch b.cfg.mode {
	case "usage":
		u.Path += "/v1/usage"
	case "batch":
		u.Path += "/v1/usage/batch"
	case "check":
		method, u.RawQuery = http.MethodGet, "units=1"
	}
	w.req = &http.Request{Method: method, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: u.Host}
	w.req.Header.Set("X-API-Key", b.cfg.key)
	if method == http.MethodPost {
		w.req.Header.Set("Content-Type", "application/json")
		w.req.Header.Set("Idempotency-Key", "")
		w.idem = w.req.Header["Idempotency-Key"]
	}
	return w
}

// loop sends requests until the measured window ends or ctx is cancelled.
func (w *worker) loop(ctx context.Context, win window, p *pacer) {
	defer w.wire.close()
	var timer *time.Timer
	for ctx.Err() == nil {
		start := time.Now()
		if p != nil {
			due := p.next()
			if !due.Before(win.end) {
				return
			}
			if d := time.Until(due); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
			// Latency counts from when the request was due, so that a server
			// that falls behind is charged for the wait it caused.
			start = due
		} else if !start.Before(win.end) {
			return
		}
		o := w.do()
		done := time.Now()
		if o.err != nil && ctx.Err() != nil {
			w.abandoned++ // cut off by a signal or the drain's end, not failed by the server
			return
		}
		w.record(o, start, done, win)
	}
}

// outcome is what one request came to.
type outcome struct {
	status   int   // 0 when err is set
	err      error // transport error
	events   int64 // usage events newly accepted
	dups     int64 // usage events answered as duplicates
	rejected map[string]int64
}

func (w *worker) record(o outcome, start, done time.Time, win window) {
	failed := o.err != nil || o.status/100 != 2
	nerr := int64(0)
	for _, n := range o.rejected {
		nerr += n
	}
	if failed {
		nerr++
	}
	w.debits += o.events
	w.b.requests.Add(1)
	if nerr > 0 {
		w.b.errors.Add(nerr)
	}
	if done.Before(win.start) || !done.Before(win.end) {
		return // warmup or drain
	}
	if nerr > 0 && w.firstErr == "" {
		w.firstErr = w.describe(o)
	}
	w.requests++
	w.lat = append(w.lat, done.Sub(start))
	switch {
	case o.err != nil:
		w.errs["transport"]++
	case failed:
		w.errs[strconv.Itoa(o.status)]++
	default:
		w.ok++
		w.events += o.events
		w.dups += o.dups
		for k, n := range o.rejected {
			w.errs[k] += n
		}
	}
}

// describe is the first error a worker saw, for the report.
func (w *worker) describe(o outcome) string {
	if o.err != nil {
		return o.err.Error()
	}
	if o.status/100 != 2 {
		body := bytes.TrimSpace(w.resp.Bytes())
		return fmt.Sprintf("%d %s", o.status, body[:min(len(body), 300)])
	}
	return strings.Join(slices.Sorted(maps.Keys(o.rejected)), ", ")
}

// do sends one request of the run's mode and reads its answer.
func (w *worker) do() outcome {
	b := w.b
	n := len(b.ids)
	w.seq++
	if w.idem != nil {
		w.key = append(w.key[:0], b.run0...)
		w.key = append(w.key, '-')
		w.key = append(w.key, w.id...)
		w.key = append(w.key, '-')
		w.key = strconv.AppendInt(w.key, int64(w.seq), 10)
		w.idem[0] = string(w.key)
	}
	switch b.cfg.mode {
	case "usage":
		w.buf = appendEvent(w.buf[:0], b.ids[rand.IntN(n)], nil, -1)
	case "batch":
		w.buf = append(w.buf[:0], `{"events":[`...)
		for j := range b.cfg.batchSize {
			if j > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = appendEvent(w.buf, b.ids[rand.IntN(n)], w.key, j)
		}
		w.buf = append(w.buf, "]}"...)
	case "check":
		w.req.URL.Path = b.paths[rand.IntN(n)]
	}
	status, err := w.wire.roundTrip(w.ctx, w.req, w.buf, &w.resp)
	if err != nil {
		return outcome{err: err}
	}
	o := outcome{status: status}
	if o.status/100 != 2 {
		return o
	}
	switch b.cfg.mode {
	case "usage":
		if w.duplicate() {
			o.dups = 1
		} else {
			o.events = 1
		}
	case "batch":
		w.tally(&o)
	}
	return o
}

// appendEvent appends one usage event; j ≥ 0 gives it the idempotency key
// batchKey-j, as a batch event needs.
func appendEvent(dst []byte, customer string, batchKey []byte, j int) []byte {
	dst = append(dst, `{"external_customer_id":"`...)
	dst = append(dst, customer...)
	dst = append(dst, `","billable_metric_key":"`+benchMetric+`","units":1`...)
	if j >= 0 {
		dst = append(dst, `,"idempotency_key":"`...)
		dst = append(dst, batchKey...)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(j), 10)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// duplicate reports whether a usage answer is a replay. The byte search
// answers the usual case without decoding; anything else is decoded.
func (w *worker) duplicate() bool {
	if bytes.Contains(w.resp.Bytes(), []byte(`"duplicate":false`)) {
		return false
	}
	var u struct {
		Duplicate bool `json:"duplicate"`
	}
	json.Unmarshal(w.resp.Bytes(), &u) // a 2xx that does not parse is still an accepted event
	return u.Duplicate
}

// tally counts a batch answer's events. When every event says accepted and
// none is a duplicate, counting bytes is enough; otherwise the answer is
// decoded to say what went wrong.
func (w *worker) tally(o *outcome) {
	size := w.b.cfg.batchSize
	body := w.resp.Bytes()
	if bytes.Count(body, []byte(`"status":"accepted"`)) == size && !bytes.Contains(body, []byte(`"duplicate":true`)) {
		o.events = int64(size)
		return
	}
	var out struct {
		Results []struct {
			Status    string `json:"status"`
			Duplicate bool   `json:"duplicate"`
			Error     *struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	o.rejected = map[string]int64{}
	if err := json.Unmarshal(body, &out); err != nil {
		o.rejected["event: batch answer is not JSON"] += int64(size)
		return
	}
	for _, r := range out.Results {
		switch {
		case r.Status == "accepted" && r.Duplicate:
			o.dups++
		case r.Status == "accepted":
			o.events++
		case r.Error != nil:
			o.rejected[fmt.Sprintf("event %d %s", r.Error.Status, r.Error.Code)]++
		default:
			o.rejected["event "+r.Status]++
		}
	}
	if missing := size - len(out.Results); missing > 0 {
		o.rejected["event: missing from the answer"] += int64(missing)
	}
}
