package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditd/creditd/internal/store"
)

// value gathers reg and returns the counter, gauge or histogram count of the
// series of name with exactly the given labels ("k=v").
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() { // gathered labels are sorted by name
				if l.GetName()+"="+l.GetValue() != labels[i] {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestObserveRequest(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ObserveRequest("POST /v1/usage", "POST", 200, time.Millisecond)
	m.ObserveRequest("POST /v1/usage", "POST", 200, time.Millisecond)
	m.ObserveRequest("POST /v1/usage", "POST", 402, time.Millisecond)
	m.ObserveRequest("", "GET", 404, time.Millisecond)
	m.ObserveRequest("", "BREW", 405, time.Millisecond)
	m.ObserveRequest("", "X-"+strings.Repeat("a", 100), 405, time.Millisecond)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"creditd_http_requests_total", []string{"method=POST", "route=POST /v1/usage", "status=200"}, 2},
		{"creditd_http_requests_total", []string{"method=POST", "route=POST /v1/usage", "status=402"}, 1},
		{"creditd_http_request_duration_seconds", []string{"method=POST", "route=POST /v1/usage"}, 3},
		{"creditd_http_requests_total", []string{"method=GET", "route=unmatched", "status=404"}, 1},
		// Any method a client makes up is one series.
		{"creditd_http_requests_total", []string{"method=other", "route=unmatched", "status=405"}, 2},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// The request path: once a series exists, counting a request takes no
// allocation.
func TestObserveRequestAllocs(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.ObserveRequest("POST /v1/usage", "POST", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("POST /v1/usage", "POST", 200, time.Millisecond)
	}); n != 0 {
		t.Errorf("ObserveRequest: %v allocations per request, want 0", n)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("POST /v1/usage", "POST", 200, time.Millisecond)
		}
	})
}

func TestGroupCommitted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.GroupCommitted(5, 2*time.Millisecond, nil)
	m.GroupCommitted(1, time.Millisecond, errors.New("boom"))
	if got := value(t, reg, "creditd_commit_groups_total", "result=ok"); got != 1 {
		t.Errorf("groups ok = %v, want 1", got)
	}
	if got := value(t, reg, "creditd_commit_groups_total", "result=error"); got != 1 {
		t.Errorf("groups error = %v, want 1", got)
	}
	if got := value(t, reg, "creditd_commit_group_size"); got != 2 {
		t.Errorf("group_size count = %v, want 2", got)
	}
	if got := value(t, reg, "creditd_commit_duration_seconds"); got != 2 {
		t.Errorf("commit_duration count = %v, want 2", got)
	}
}

func TestWebhooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Attempted(store.WebhookDelivered, store.WebhookAttempt{StatusCode: 204, Duration: 3 * time.Millisecond})
	m.Attempted(store.WebhookPending, store.WebhookAttempt{StatusCode: 500, Error: "500", Duration: time.Millisecond})
	m.Attempted(store.WebhookFailed, store.WebhookAttempt{Error: "no webhook_url and webhook_secret configured"})
	for result, want := range map[string]float64{"delivered": 1, "failed_attempt": 1, "failed": 1} {
		if got := value(t, reg, "creditd_webhook_attempts_total", "result="+result); got != want {
			t.Errorf("attempts{%s} = %v, want %v", result, got, want)
		}
	}
	// The attempt that was never sent has no duration.
	if got := value(t, reg, "creditd_webhook_attempt_duration_seconds"); got != 2 {
		t.Errorf("attempt_duration count = %v, want 2", got)
	}

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ev := func(age time.Duration) store.WebhookEvent { return store.WebhookEvent{CreatedAt: now.Add(-age)} }
	m.Claimed(now, []store.WebhookQueue{
		{Events: []store.WebhookEvent{ev(3 * time.Second), ev(time.Second)}},
		{Events: []store.WebhookEvent{ev(90 * time.Second)}},
	})
	if got := value(t, reg, "creditd_webhook_outbox_lag_seconds"); got != 90 {
		t.Errorf("outbox lag = %v, want 90 (the oldest head)", got)
	}
	m.Claimed(now, nil)
	if got := value(t, reg, "creditd_webhook_outbox_lag_seconds"); got != 0 {
		t.Errorf("outbox lag after an empty claim = %v, want 0", got)
	}
}
