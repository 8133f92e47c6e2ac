package webhook_test

import (
	"slices"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/webhook"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want webhook.Schedule
	}{
		{"1s,2s,5s", webhook.Schedule{time.Second, 2 * time.Second, 5 * time.Second}},
		{" 500ms , 2m ", webhook.Schedule{500 * time.Millisecond, 2 * time.Minute}},
		{"0s", webhook.Schedule{0}},
		{"5s,30s,2m,10m,30m,2h,6h", webhook.DefaultSchedule()},
	} {
		got, err := webhook.ParseSchedule(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := webhook.ParseSchedule(got.String()); err != nil || !slices.Equal(again, got) {
			t.Errorf("String() %q does not parse back: %v, %v", got.String(), again, err)
		}
	}
	for _, in := range []string{"", " ", "1s,,2s", "x", "1s,2", "-1s", "1s,"} {
		if got, err := webhook.ParseSchedule(in); err == nil {
			t.Errorf("ParseSchedule(%q) = %v, want an error", in, got)
		}
	}
}

func TestDefaultSchedule(t *testing.T) {
	s := webhook.DefaultSchedule()
	want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour}
	if !slices.Equal(s, want) {
		t.Fatalf("DefaultSchedule() = %v", s)
	}
	s[0] = time.Hour
	if webhook.DefaultSchedule()[0] != 5*time.Second {
		t.Error("changing one default schedule changed the next")
	}
}

func TestScheduleNext(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := webhook.DefaultSchedule()
	for tries, wait := range s {
		next, failed := s.Next(tries+1, now)
		if failed || !next.Equal(now.Add(wait)) {
			t.Errorf("Next(%d) = %v, %v; want %v", tries+1, next, failed, now.Add(wait))
		}
	}
	if next, failed := s.Next(8, now); !failed || !next.IsZero() {
		t.Errorf("Next(8) = %v, %v; want failed", next, failed)
	}

	// Attempts until failed, as the dispatcher counts them: 1 + 7 retries.
	attempts := 0
	for tries := 1; ; tries++ {
		attempts++
		if _, failed := s.Next(tries, now); failed {
			break
		}
	}
	if attempts != 8 {
		t.Errorf("failed after %d attempts, want 8", attempts)
	}

	if _, failed := (webhook.Schedule{}).Next(1, now); !failed {
		t.Error("an empty schedule retries")
	}
	if _, failed := (webhook.Schedule{}).Next(0, now); !failed {
		t.Error("an empty schedule retries after 0 tries")
	}
	if next, _ := s.Next(0, now); !next.Equal(now.Add(5 * time.Second)) {
		t.Errorf("Next(0) = %v, want the first wait", next)
	}
}
