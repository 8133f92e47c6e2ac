package webhook

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Schedule is the retry schedule: the waits before the retries of an event,
// the first after its first failed attempt. An event gets 1+len(s) attempts;
// the one after the last retry fails it.
type Schedule []time.Duration

// DefaultSchedule is the API spec's schedule: 7 retries over about 8¾ hours,
// 8 attempts in all. A function, so that no caller can change the default of
// another.
func DefaultSchedule() Schedule {
	return Schedule{
		5 * time.Second,
		30 * time.Second,
		2 * time.Minute,
		10 * time.Minute,
		30 * time.Minute,
		2 * time.Hour,
		6 * time.Hour,
	}
}

// ParseSchedule parses a comma-separated list of durations ("1s,2s,5s",
// spaces allowed), as an operator setting or a test writes it. An empty
// setting is an error rather than "no retries": an unset variable should
// mean the default, which is the caller's to decide.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("webhook retry schedule: empty")
	}
	parts := strings.Split(s, ",")
	sched := make(Schedule, 0, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("webhook retry schedule: retry %d: %w", i+1, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("webhook retry schedule: retry %d: negative wait %s", i+1, d)
		}
		sched = append(sched, d)
	}
	return sched, nil
}

// String formats s as ParseSchedule reads it.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Next says when an event is due again after a failed attempt: tries is the
// event's Tries counting that attempt. failed is true, and next zero, when
// the attempt was the last the schedule allows (tries > len(s)).
func (s Schedule) Next(tries int, now time.Time) (next time.Time, failed bool) {
	// Tries counts the failed attempt, so it is at least 1; a smaller value
	// is a caller's bug, and the first wait is the least surprising answer.
	if tries < 1 {
		tries = 1
	}
	if tries > len(s) {
		return time.Time{}, true
	}
	return now.Add(s[tries-1]), false
}
