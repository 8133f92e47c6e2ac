// Package storetest is the conformance suite of store.Store: every backend's
// tests call Run, and a behaviour change to a backend starts as a new case
// here.
//
// The suite pins what the use cases rely on and nothing about how a backend
// gets there: errors are compared with errors.Is against store.ErrNotFound
// and store.ErrConflict, stored times at millisecond precision with Equal,
// JSON by value (a backend may re-encode it), and lists by their ids and
// order. Every write goes through Transact, the only write path the store
// promises, and a customer's rows and idempotency records are written, in the
// cases as in the service, through WritesApply alone; reads run both inside
// and outside transactions.
//
// Limits: the suite checks one store at a time. Several processes writing to
// one database are the PostgreSQL backend's own tests to cover.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// Run runs the conformance suite. open returns a fresh, migrated, empty store
// for the test it is given and registers its cleanup with that test. The
// subtests run in parallel, so open must be safe to call concurrently.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Tenant", func(t *testing.T) { testTenant(t, open) })
	t.Run("APIKey", func(t *testing.T) { testAPIKey(t, open) })
	t.Run("Config", func(t *testing.T) { testConfig(t, open) })
	t.Run("Customer", func(t *testing.T) { testCustomer(t, open) })
	t.Run("Account", func(t *testing.T) { testAccount(t, open) })
	t.Run("Metric", func(t *testing.T) { testMetric(t, open) })
	t.Run("Rule", func(t *testing.T) { testRule(t, open) })
	t.Run("Plan", func(t *testing.T) { testPlan(t, open) })
	t.Run("Block", func(t *testing.T) { testBlock(t, open) })
	t.Run("Ledger", func(t *testing.T) { testLedger(t, open) })
	t.Run("UsageEvent", func(t *testing.T) { testUsageEvent(t, open) })
	t.Run("Purchase", func(t *testing.T) { testPurchase(t, open) })
	t.Run("Reservation", func(t *testing.T) { testReservation(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Wall", func(t *testing.T) { testWall(t, open) })
	t.Run("Transact", func(t *testing.T) { testTransact(t, open) })
	t.Run("Read", func(t *testing.T) { testRead(t, open) })
	t.Run("CheckRead", func(t *testing.T) { testCheckRead(t, open) })
	t.Run("WritesApply", func(t *testing.T) { testWritesApply(t, open) })
	t.Run("GroupRead", func(t *testing.T) { testGroupRead(t, open) })
	t.Run("GroupPrepare", func(t *testing.T) { testGroupPrepare(t, open) })
	t.Run("Webhook", func(t *testing.T) { testWebhook(t, open) })
	t.Run("WebhookLease", func(t *testing.T) { testWebhookLease(t, open) })
}

// t0 is the suite's clock: a fixed instant at millisecond precision, like
// every time a store keeps.
var t0 = time.UnixMilli(1_767_225_600_000).UTC() // 2026-01-01T00:00:00Z

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// transact runs fn in one transaction and fails the test if it fails.
func transact(t *testing.T, s store.Store, fn func(q store.Q) error) {
	t.Helper()
	if err := s.Transact(t.Context(), fn); err != nil {
		t.Fatalf("Transact: %v", err)
	}
}

// inOrder runs the steps of one transaction in order and returns the first
// error, skipping the steps after it.
func inOrder(steps ...func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// apply runs WritesApply(w) in its own transaction.
func apply(t *testing.T, s store.Store, w *store.Writes) error {
	return s.Transact(t.Context(), func(q store.Q) error { return q.WritesApply(t.Context(), w) })
}

// mustApply runs WritesApply(w) in its own transaction and fails the test
// if it fails.
func mustApply(t *testing.T, s store.Store, w *store.Writes) {
	t.Helper()
	if err := apply(t, s, w); err != nil {
		t.Fatalf("WritesApply: %v", err)
	}
}

// newTenant stores a tenant with a fresh id, created at t0.
func newTenant(t *testing.T, s store.Store) store.Tenant {
	t.Helper()
	tn := store.Tenant{ID: ids.UUID(), Name: "Acme", CreatedAt: t0}
	transact(t, s, func(q store.Q) error { return q.TenantCreate(t.Context(), tn) })
	return tn
}

// newScope stores a fresh tenant and returns its live environment.
func newScope(t *testing.T, s store.Store) store.Scope {
	t.Helper()
	return store.Scope{TenantID: newTenant(t, s).ID, Env: "live"}
}

// newCustomer stores a customer of sc with a fresh id, no external id and an
// empty account.
func newCustomer(t *testing.T, s store.Store, sc store.Scope) store.Customer {
	t.Helper()
	c := store.Customer{ID: ids.UUID(), DisplayName: "Ada", CreatedAt: t0}
	mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}})
	return c
}

// newMetric stores a metric of sc with the given key and a fresh id.
func newMetric(t *testing.T, s store.Store, sc store.Scope, key string) store.Metric {
	t.Helper()
	m := store.Metric{ID: ids.New(ids.Metric), Key: key, Name: key, CreatedAt: t0}
	transact(t, s, func(q store.Q) error { return q.MetricCreate(t.Context(), sc, m) })
	return m
}

// keyHash returns a fresh API key hash, as the server stores them.
func keyHash() string {
	sum := sha256.Sum256([]byte("ck_live_" + ids.UUID()))
	return hex.EncodeToString(sum[:])
}

// wantErr fails the test unless err is target, naming the call.
func wantErr(t *testing.T, call string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s error = %v, want %v", call, err, target)
	}
}

// wantNoErr fails the test now if err is not nil, naming the call.
func wantNoErr(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
}

// wantSame fails the test when got differs from want, field by field.
func wantSame(t *testing.T, call string, got, want any) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Errorf("%s: %s", call, d)
	}
}

// wantIDs fails the test now unless the rows' ids are want, in order.
func wantIDs[T any](t *testing.T, call string, rows []T, id func(T) string, want ...string) {
	t.Helper()
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = id(r)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s ids = %q, want %q", call, got, want)
	}
}

func customerID(c store.Customer) string { return c.ID }
func metricID(m store.Metric) string     { return m.ID }
func ruleID(r store.Rule) string         { return r.ID }
func blockID(b store.Block) string       { return b.ID }
func entryID(e store.LedgerEntry) string { return e.ID }

var (
	timeType = reflect.TypeFor[time.Time]()
	jsonType = reflect.TypeFor[json.RawMessage]()
)

// diff describes how got differs from want, "" when it does not. Struct
// fields compare one by one (embedded ones flattened): times with Equal, JSON
// by value, byte slices with nil and empty alike, everything else with
// reflect.DeepEqual.
func diff(got, want any) string {
	var d []string
	diffValue(&d, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return strings.Join(d, "; ")
}

func diffValue(d *[]string, path string, got, want reflect.Value) {
	mismatch := func() {
		name := path
		if name == "" {
			name = "value"
		}
		*d = append(*d, fmt.Sprintf("%s = %s, want %s", name, show(got), show(want)))
	}
	switch {
	case got.Type() == timeType:
		if !got.Interface().(time.Time).Equal(want.Interface().(time.Time)) {
			mismatch()
		}
		return
	case got.Type() == jsonType:
		if !jsonEqual(got.Bytes(), want.Bytes()) {
			mismatch()
		}
		return
	}
	switch got.Kind() {
	case reflect.Struct:
		for i := range got.NumField() {
			f := got.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			p := f.Name
			switch {
			case f.Anonymous:
				p = path
			case path != "":
				p = path + "." + f.Name
			}
			diffValue(d, p, got.Field(i), want.Field(i))
		}
	case reflect.Slice:
		if got.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				mismatch()
			}
			return
		}
		if got.Len() != want.Len() {
			*d = append(*d, fmt.Sprintf("len(%s) = %d, want %d", path, got.Len(), want.Len()))
			return
		}
		for i := range got.Len() {
			diffValue(d, fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))
		}
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				mismatch()
			}
			return
		}
		diffValue(d, path, got.Elem(), want.Elem())
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			mismatch()
		}
	}
}

// show formats v for a failure message.
func show(v reflect.Value) string {
	switch {
	case v.Type() == timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	case v.Type() == jsonType, v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		if v.Len() == 0 {
			return "(none)"
		}
		return string(v.Bytes())
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return "&" + show(v.Elem())
	case v.Kind() == reflect.String:
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprintf("%+v", v.Interface())
}

// jsonEqual reports whether a and b hold the same JSON value; absent (empty)
// JSON equals only absent JSON.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}
