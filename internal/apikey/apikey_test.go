package apikey

import (
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	for key, want := range map[string]string{
		"qs_live_abc": Live, "qs_test_abc": Test,
		"qs_live_": "", "qs_test_": "", "qs_prod_abc": "", "": "", "QS_TEST_abc": "", "xqs_test_abc": "",
	} {
		if got := Env(key); got != want {
			t.Errorf("Env(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for _, env := range []string{Live, Test, Live, Test} {
		key, err := New(env)
		if err != nil {
			t.Fatalf("New(%q): %v", env, err)
		}
		prefix := "qs_" + env + "_"
		secret, ok := strings.CutPrefix(key, prefix)
		if !ok || len(secret) != 40 || strings.Trim(secret, alphabet) != "" {
			t.Errorf("New(%q) = %q, want %s followed by 40 base62 characters", env, key, prefix)
		}
		if Env(key) != env {
			t.Errorf("Env(New(%q)) = %q", env, Env(key))
		}
		if seen[key] {
			t.Errorf("New(%q) repeated key %q", env, key)
		}
		seen[key] = true
	}
	if _, err := New("prod"); err == nil {
		t.Errorf(`New("prod") succeeded, want an error`)
	}
}

func TestRecord(t *testing.T) {
	now := time.Date(2026, 4, 13, 14, 0, 0, 0, time.UTC)
	key := "qs_live_0123456789abcdefXYZ"
	rec, err := Record(key, "tenant-1", now)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if rec.Env != Live || rec.TenantID != "tenant-1" || !rec.CreatedAt.Equal(now) {
		t.Errorf("Record = %+v, want env live, tenant tenant-1, created %v", rec, now)
	}
	if rec.Hash != Hash(key) || len(rec.Hash) != 64 || strings.Contains(rec.Hash, "0123456789abcdef") {
		t.Errorf("Record hash = %q, want the hex SHA-256 of the key", rec.Hash)
	}
	if rec.Prefix != "qs_live_0123" {
		t.Errorf("Record prefix = %q, want qs_live_0123 (a prefix, never the secret)", rec.Prefix)
	}
	if Hash(key) == Hash(key+"x") {
		t.Errorf("Hash does not depend on the whole key")
	}
	for _, bad := range []string{"qs_live_short", "qs_prod_0123456789abcdefXYZ", "0123456789abcdefXYZ0123"} {
		if _, err := Record(bad, "tenant-1", now); err == nil {
			t.Errorf("Record(%q) succeeded, want an error", bad)
		}
	}
}
