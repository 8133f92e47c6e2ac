package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/creditd/creditd/internal/webhook"
)

// webhookConfig is how serve delivers webhooks (docs/api.md, "Webhooks").
type webhookConfig struct {
	schedule    string
	timeout     time.Duration
	denyPrivate bool
	workers     int
	poll        time.Duration
	lease       time.Duration
	// retention is how long delivered and failed events are kept; 0 keeps
	// them forever.
	retention time.Duration
}

func (w *webhookConfig) flags(fs *flag.FlagSet, getenv func(string) string) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&w.schedule, "webhook-retry-schedule", getenv("CREDITD_WEBHOOK_RETRY_SCHEDULE"),
		"waits between a webhook's failed attempts, comma-separated, e.g. 5s,30s,2m; the default is 5s,30s,2m,10m,30m,2h,6h (CREDITD_WEBHOOK_RETRY_SCHEDULE)")
	timeout, err := time.ParseDuration(env("CREDITD_WEBHOOK_TIMEOUT", "5s"))
	if err != nil || timeout <= 0 {
		timeout = -1 // reported by dispatcher
	}
	fs.DurationVar(&w.timeout, "webhook-timeout", timeout, "longest wait for a receiver's answer (CREDITD_WEBHOOK_TIMEOUT)")
	deny, _ := strconv.ParseBool(env("CREDITD_WEBHOOK_DENY_PRIVATE", "false"))
	fs.BoolVar(&w.denyPrivate, "webhook-deny-private", deny, "refuse loopback and private webhook targets (CREDITD_WEBHOOK_DENY_PRIVATE=1)")
	workers, err := strconv.Atoi(env("CREDITD_WEBHOOK_WORKERS", "16"))
	if err != nil || workers < 1 {
		workers = -1
	}
	fs.IntVar(&w.workers, "webhook-workers", workers, "customers whose webhooks are delivered in parallel (CREDITD_WEBHOOK_WORKERS)")
	poll, err := time.ParseDuration(env("CREDITD_WEBHOOK_POLL", "1s"))
	if err != nil || poll <= 0 {
		poll = -1
	}
	lease, err := time.ParseDuration(env("CREDITD_WEBHOOK_LEASE", "1m"))
	if err != nil || lease <= 0 {
		lease = -1
	}
	fs.DurationVar(&w.lease, "webhook-lease", lease, "how long an instance holds a customer's webhook queue: a crashed instance's undelivered events go out this long after it died, at least 2×timeout+5s (CREDITD_WEBHOOK_LEASE)")
	retention, err := time.ParseDuration(env("CREDITD_WEBHOOK_RETENTION", "720h"))
	if err != nil || retention < 0 {
		retention = -1
	}
	fs.DurationVar(&w.retention, "webhook-retention", retention, "how long delivered and failed webhook events and their attempts are kept; 0 keeps them forever (CREDITD_WEBHOOK_RETENTION)")
	fs.DurationVar(&w.poll, "webhook-poll", poll, "how often to look for due webhooks (retries, other instances' events) besides this instance's commits (CREDITD_WEBHOOK_POLL)")
}

// dispatcher builds the webhook dispatcher; its Outbox is set once the
// service exists (the service wakes it after commits).
func (w *webhookConfig) dispatcher(log *slog.Logger) (*webhook.Dispatcher, error) {
	switch {
	case w.timeout <= 0:
		return nil, fmt.Errorf("CREDITD_WEBHOOK_TIMEOUT must be a positive duration such as 5s")
	case w.workers < 1:
		return nil, fmt.Errorf("CREDITD_WEBHOOK_WORKERS must be a positive integer such as 16")
	case w.poll <= 0:
		return nil, fmt.Errorf("CREDITD_WEBHOOK_POLL must be a positive duration such as 1s")
	case w.lease <= 0:
		return nil, fmt.Errorf("CREDITD_WEBHOOK_LEASE must be a positive duration such as 1m")
	case w.retention < 0:
		return nil, fmt.Errorf("CREDITD_WEBHOOK_RETENTION must be a duration such as 720h, or 0 to keep webhook events forever")
	}
	schedule := webhook.DefaultSchedule()
	if w.schedule != "" {
		s, err := webhook.ParseSchedule(w.schedule)
		if err != nil {
			return nil, fmt.Errorf("CREDITD_WEBHOOK_RETRY_SCHEDULE: %w", err)
		}
		schedule = s
	}
	return &webhook.Dispatcher{
		Sender:   webhook.NewSender(webhook.SenderOptions{Timeout: w.timeout, DenyPrivate: w.denyPrivate}),
		Schedule: schedule,
		Workers:  w.workers,
		Poll:     w.poll,
		Lease:    w.lease,
		Logger:   log,
	}, nil
}
