package main

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWebhookRetentionSetting(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	parse := func(env string, args ...string) (webhookConfig, error) {
		t.Helper()
		var w webhookConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		w.flags(fs, func(k string) string {
			if k == "CREDITD_WEBHOOK_RETENTION" {
				return env
			}
			return ""
		})
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := w.dispatcher(log)
		return w, err
	}
	for _, c := range []struct {
		env  string
		args []string
		want time.Duration
	}{
		{"", nil, 720 * time.Hour},
		{"0", nil, 0},
		{"48h", nil, 48 * time.Hour},
		{"", []string{"--webhook-retention", "1h"}, time.Hour},
	} {
		w, err := parse(c.env, c.args...)
		if err != nil || w.retention != c.want {
			t.Errorf("CREDITD_WEBHOOK_RETENTION=%q %v: retention %v, %v; want %v", c.env, c.args, w.retention, err, c.want)
		}
	}
	for _, env := range []string{"-1h", "30 days"} {
		if _, err := parse(env); err == nil || !strings.Contains(err.Error(), "CREDITD_WEBHOOK_RETENTION") {
			t.Errorf("CREDITD_WEBHOOK_RETENTION=%q: %v, want an error naming it", env, err)
		}
	}
	if _, err := parse("", "--webhook-retention", "-5m"); err == nil {
		t.Error("--webhook-retention -5m: no error, want one")
	}
}
