package credit

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

// clone returns a deep copy of s, for comparing before and after.
func clone(s State) State {
	return State{Account: s.Account, Blocks: slices.Clone(s.Blocks)}
}

func remaining(s State) map[string]int64 {
	m := make(map[string]int64, len(s.Blocks))
	for _, b := range s.Blocks {
		m[b.ID] = b.Remaining
	}
	return m
}

func TestGrant(t *testing.T) {
	s := State{
		Account: Account{Balance: 100, Reserved: 20, LifetimeEarned: 300, Version: 7},
		Blocks:  []Block{{ID: "blk_a", Original: 300, Remaining: 100, Seq: 1}},
	}
	nb := Block{ID: "blk_b", Original: 250, Remaining: 250, Priority: 10, ExpiresAt: t0.Add(time.Hour), PricePaid: 499, Seq: 2}
	got, err := s.Grant(nb)
	if err != nil {
		t.Fatalf("Grant(250) error = %v, want nil", err)
	}
	if want := (Entry{Type: EntryGrant, BlockID: "blk_b", Delta: 250, BalanceAfter: 350}); got != want {
		t.Errorf("Grant(250) entry = %+v, want %+v", got, want)
	}
	if want := (Account{Balance: 350, Reserved: 20, LifetimeEarned: 550, Version: 8}); s.Account != want {
		t.Errorf("Grant(250) account = %+v, want %+v", s.Account, want)
	}
	if want := []Block{{ID: "blk_a", Original: 300, Remaining: 100, Seq: 1}, nb}; !slices.Equal(s.Blocks, want) {
		t.Errorf("Grant(250) blocks = %+v, want %+v", s.Blocks, want)
	}
}

func TestGrantRejects(t *testing.T) {
	tests := []struct {
		name    string
		account Account
		b       Block
	}{
		{"zero", Account{}, Block{ID: "blk_x", Original: 0, Remaining: 0}},
		{"negative", Account{}, Block{ID: "blk_x", Original: -5, Remaining: -5}},
		{"min int64", Account{}, Block{ID: "blk_x", Original: math.MinInt64, Remaining: math.MinInt64}},
		{"remaining below original", Account{}, Block{ID: "blk_x", Original: 10, Remaining: 5}},
		{"remaining above original", Account{}, Block{ID: "blk_x", Original: 10, Remaining: 11}},
		{"balance overflow", Account{Balance: math.MaxInt64 - 10, LifetimeEarned: math.MaxInt64 - 10}, Block{ID: "blk_x", Original: 11, Remaining: 11}},
		{"lifetime overflow", Account{Balance: 0, LifetimeEarned: math.MaxInt64}, Block{ID: "blk_x", Original: 1, Remaining: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := State{Account: tt.account, Blocks: []Block{{ID: "blk_a", Original: 5, Remaining: 5}}}
			s.Account.Version = 3
			before := clone(s)
			got, err := s.Grant(tt.b)
			checkFieldError(t, "Grant", err, []string{"credits"})
			if got != (Entry{}) {
				t.Errorf("Grant(%d) entry = %+v, want none", tt.b.Original, got)
			}
			if !reflect.DeepEqual(s, before) {
				t.Errorf("Grant(%d) failed but changed the state to %+v, want %+v", tt.b.Original, s, before)
			}
		})
	}
}

// debitBlocks is the fixture of the debit tests. Live at t0, in burn order:
// c (20), b (30), d (50), a (100) = 200. e is expired at t0 (its expiry
// instant) and f is empty; the account balance counts e: 1200.
func debitBlocks() State {
	hour := t0.Add(time.Hour)
	return State{
		Account: Account{Balance: 1200, LifetimeEarned: 1400, Version: 10},
		Blocks: []Block{
			{ID: "a", Original: 100, Remaining: 100, Seq: 1},
			{ID: "b", Original: 30, Remaining: 30, Priority: 10, ExpiresAt: hour.Add(time.Hour), PricePaid: 100, Seq: 2},
			{ID: "c", Original: 20, Remaining: 20, Priority: 10, ExpiresAt: hour, Seq: 3},
			{ID: "d", Original: 50, Remaining: 50, ExpiresAt: hour, Seq: 4},
			{ID: "e", Original: 1000, Remaining: 1000, Priority: 100, ExpiresAt: t0, Seq: 5},
			{ID: "f", Original: 200, Remaining: 0, Priority: 50, Seq: 6},
		},
	}
}

func TestDebit(t *testing.T) {
	tests := []struct {
		name          string
		amount        int64
		wantEntries   []Entry
		wantRemaining map[string]int64
	}{
		{"zero", 0, nil, map[string]int64{"a": 100, "b": 30, "c": 20, "d": 50, "e": 1000, "f": 0}},
		{"part of the first", 5, []Entry{
			{EntryUsage, "c", -5, 1195},
		}, map[string]int64{"a": 100, "b": 30, "c": 15, "d": 50, "e": 1000, "f": 0}},
		{"exactly the first", 20, []Entry{
			{EntryUsage, "c", -20, 1180},
		}, map[string]int64{"a": 100, "b": 30, "c": 0, "d": 50, "e": 1000, "f": 0}},
		{"three blocks", 80, []Entry{
			{EntryUsage, "c", -20, 1180},
			{EntryUsage, "b", -30, 1150},
			{EntryUsage, "d", -30, 1120},
		}, map[string]int64{"a": 100, "b": 0, "c": 0, "d": 20, "e": 1000, "f": 0}},
		{"everything live", 200, []Entry{
			{EntryUsage, "c", -20, 1180},
			{EntryUsage, "b", -30, 1150},
			{EntryUsage, "d", -50, 1100},
			{EntryUsage, "a", -100, 1000},
		}, map[string]int64{"a": 0, "b": 0, "c": 0, "d": 0, "e": 1000, "f": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := debitBlocks()
			got, err := s.Debit(tt.amount, EntryUsage, t0)
			if err != nil {
				t.Fatalf("Debit(blocks, %d) error = %v, want nil", tt.amount, err)
			}
			if !slices.Equal(got, tt.wantEntries) {
				t.Errorf("Debit(blocks, %d) entries = %+v, want %+v", tt.amount, got, tt.wantEntries)
			}
			for id, want := range tt.wantRemaining {
				if r := remaining(s)[id]; r != want {
					t.Errorf("Debit(blocks, %d) remaining of %s = %d, want %d", tt.amount, id, r, want)
				}
			}
			if want := 1200 - tt.amount; s.Account.Balance != want {
				t.Errorf("Debit(blocks, %d) balance = %d, want %d", tt.amount, s.Account.Balance, want)
			}
			wantVersion := int64(11)
			if tt.amount == 0 {
				wantVersion = 10
			}
			if s.Account.Version != wantVersion {
				t.Errorf("Debit(blocks, %d) version = %d, want %d", tt.amount, s.Account.Version, wantVersion)
			}
			if s.Account.LifetimeEarned != 1400 || s.Account.Reserved != 0 {
				t.Errorf("Debit(blocks, %d) lifetime, reserved = %d, %d, want 1400, 0", tt.amount, s.Account.LifetimeEarned, s.Account.Reserved)
			}
		})
	}
}

func TestDebitEntryType(t *testing.T) {
	s := debitBlocks()
	got, err := s.Debit(25, EntryCommit, t0)
	if err != nil {
		t.Fatalf("Debit(blocks, 25, commit) error = %v, want nil", err)
	}
	for _, e := range got {
		if e.Type != EntryCommit {
			t.Errorf("Debit(blocks, 25, commit) entry type = %q, want %q", e.Type, EntryCommit)
		}
	}
}

func TestDebitInsufficient(t *testing.T) {
	tests := []struct {
		name          string
		reserved      int64
		now           time.Time
		amount        int64
		wantAvailable int64 // -1: the debit succeeds
	}{
		{"one more than live", 0, t0, 201, 200},
		{"far more than live", 0, t0, math.MaxInt64, 200},
		// Account.Balance (1200) counts the expired e; only live credits count.
		{"expired credits not spendable", 0, t0, 1200, 200},
		{"reserved: up to effective", 150, t0, 50, -1},
		{"reserved: one over effective", 150, t0, 51, 50},
		{"reserved equals live", 200, t0, 1, 0},
		{"reserved above live", 300, t0, 1, 0},
		{"reserved above live, zero debit", 300, t0, 0, -1},
		// At the hour c and d expire: live is a (100) + b (30).
		{"later: c and d expired", 0, t0.Add(time.Hour), 131, 130},
		{"later: reserved", 100, t0.Add(time.Hour), 31, 30},
		{"before e expires: e counts", 0, t0.Add(-time.Nanosecond), 1200, -1},
		{"before e expires: one more", 0, t0.Add(-time.Nanosecond), 1201, 1200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := debitBlocks()
			s.Account.Reserved = tt.reserved
			before := clone(s)
			got, err := s.Debit(tt.amount, EntryUsage, tt.now)
			if tt.wantAvailable < 0 {
				if err != nil {
					t.Errorf("Debit(blocks, %d) with %d reserved error = %v, want nil", tt.amount, tt.reserved, err)
				}
				return
			}
			var ie *InsufficientError
			if !errors.As(err, &ie) {
				t.Fatalf("Debit(blocks, %d) with %d reserved = %+v, %v, want *InsufficientError", tt.amount, tt.reserved, got, err)
			}
			if want := (InsufficientError{Required: tt.amount, Available: tt.wantAvailable}); *ie != want {
				t.Errorf("Debit(blocks, %d) with %d reserved error = %+v, want %+v", tt.amount, tt.reserved, *ie, want)
			}
			if ErrorCode(err) != EInsufficient {
				t.Errorf("ErrorCode(Debit error) = %q, want %q", ErrorCode(err), EInsufficient)
			}
			if got != nil {
				t.Errorf("Debit(blocks, %d) entries = %+v, want none", tt.amount, got)
			}
			if !reflect.DeepEqual(s, before) {
				t.Errorf("Debit(blocks, %d) failed but changed the state to %+v, want %+v", tt.amount, s, before)
			}
		})
	}
}

func TestDebitNegative(t *testing.T) {
	s := debitBlocks()
	before := clone(s)
	got, err := s.Debit(-1, EntryUsage, t0)
	checkFieldError(t, "Debit(blocks, -1)", err, []string{"amount"})
	if got != nil || !reflect.DeepEqual(s, before) {
		t.Errorf("Debit(blocks, -1) = %+v and state %+v, want no entries and state %+v", got, s, before)
	}
}

// TestDebitNeverSpendsExpired: the expired block is first in burn order by
// priority, and the sweeper has not zeroed it; it is still never touched.
func TestDebitNeverSpendsExpired(t *testing.T) {
	for _, now := range []time.Time{t0, t0.Add(time.Nanosecond), t0.Add(24 * time.Hour)} {
		s := State{
			Account: Account{Balance: 1010},
			Blocks: []Block{
				{ID: "old", Original: 1000, Remaining: 1000, Priority: 100, ExpiresAt: t0, Seq: 1},
				{ID: "live", Original: 10, Remaining: 10, Seq: 2},
			},
		}
		got, err := s.Debit(10, EntryUsage, now)
		want := []Entry{{EntryUsage, "live", -10, 1000}}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Debit(blocks, 10) at %v = %+v, %v, want %+v, nil", now, got, err, want)
		}
		if r := remaining(s)["old"]; r != 1000 {
			t.Errorf("Debit(blocks, 10) at %v remaining of expired = %d, want 1000", now, r)
		}
		if _, err := s.Debit(1, EntryUsage, now); err == nil {
			t.Errorf("Debit(blocks, 1) at %v with only expired credits left = nil error, want *InsufficientError", now)
		}
	}
}

func TestExpireDue(t *testing.T) {
	s := State{
		Account: Account{Balance: 1000 + 40 + 10 + 7, Reserved: 5, LifetimeEarned: 2000, Version: 4},
		Blocks: []Block{
			{ID: "x", Original: 50, Remaining: 40, ExpiresAt: t0.Add(-time.Hour), Seq: 1},
			{ID: "live", Original: 1000, Remaining: 1000, ExpiresAt: t0.Add(time.Nanosecond), Seq: 2},
			{ID: "y", Original: 10, Remaining: 10, Priority: 5, ExpiresAt: t0, Seq: 3},   // at the instant
			{ID: "z", Original: 10, Remaining: 0, ExpiresAt: t0.Add(-time.Hour), Seq: 4}, // already empty
			{ID: "forever", Original: 7, Remaining: 7, Seq: 5},
		},
	}
	got := s.ExpireDue(t0)
	want := []Entry{ // burn order: y (priority 5) first
		{EntryExpire, "y", -10, 1047},
		{EntryExpire, "x", -40, 1007},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ExpireDue(t0) = %+v, want %+v", got, want)
	}
	wantRemaining := map[string]int64{"x": 0, "live": 1000, "y": 0, "z": 0, "forever": 7}
	for id, w := range wantRemaining {
		if r := remaining(s)[id]; r != w {
			t.Errorf("ExpireDue(t0) remaining of %s = %d, want %d", id, r, w)
		}
	}
	if want := (Account{Balance: 1007, Reserved: 5, LifetimeEarned: 2000, Version: 5}); s.Account != want {
		t.Errorf("ExpireDue(t0) account = %+v, want %+v", s.Account, want)
	}
	if lb, _ := LiveBalance(s.Blocks, t0); lb != s.Account.Balance {
		t.Errorf("after ExpireDue(t0) live balance = %d, want the balance %d", lb, s.Account.Balance)
	}

	// Nothing more is due: no entries, no new version.
	before := clone(s)
	if got := s.ExpireDue(t0); got != nil {
		t.Errorf("second ExpireDue(t0) = %+v, want none", got)
	}
	if !reflect.DeepEqual(s, before) {
		t.Errorf("second ExpireDue(t0) changed the state to %+v, want %+v", s, before)
	}

	// One nanosecond later "live" lapses.
	got = s.ExpireDue(t0.Add(time.Nanosecond))
	if want := []Entry{{EntryExpire, "live", -1000, 7}}; !slices.Equal(got, want) {
		t.Errorf("ExpireDue(t0+1ns) = %+v, want %+v", got, want)
	}
}

func TestDebitLiveBalanceOverflow(t *testing.T) {
	s := State{Blocks: []Block{
		{ID: "a", Original: math.MaxInt64, Remaining: math.MaxInt64, Seq: 1},
		{ID: "b", Original: 1, Remaining: 1, Seq: 2},
	}}
	before := clone(s)
	got, err := s.Debit(1, EntryUsage, t0)
	if !errors.Is(err, ErrOverflow) {
		t.Errorf("Debit(blocks summing past MaxInt64, 1) = %+v, %v, want ErrOverflow", got, err)
	}
	if !reflect.DeepEqual(s, before) {
		t.Errorf("Debit(blocks summing past MaxInt64, 1) failed but changed the state to %+v, want %+v", s, before)
	}
}

// A plan's price is paid from the wallet alone: the unexpired priority-10
// credits of the last plan burn first for usage, never for the next plan,
// and a refusal names what could have paid.
func TestDebitPayableSkipsPlanCredits(t *testing.T) {
	now := t0
	wallet := Block{ID: "blk_wallet", Original: 5000, Remaining: 5000, Seq: 1}
	plan := Block{ID: "blk_plan", Original: 9000, Remaining: 9000, Priority: 10, ExpiresAt: now.Add(time.Hour), Seq: 2}
	s := State{Account: Account{Balance: 14000, LifetimeEarned: 14000}, Blocks: []Block{wallet, plan}}

	entries, err := s.DebitPayable(3000, 0, EntryPurchase, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Type: EntryPurchase, BlockID: "blk_wallet", Delta: -3000, BalanceAfter: 11000}}
	if !slices.Equal(entries, want) {
		t.Errorf("DebitPayable(3000, ≤ 0) = %+v, want %+v", entries, want)
	}
	if r := remaining(s); r["blk_plan"] != 9000 || r["blk_wallet"] != 2000 {
		t.Errorf("remaining = %v, want the plan block untouched", r)
	}

	before := clone(s)
	_, err = s.DebitPayable(2500, 0, EntryPurchase, now)
	var ie *InsufficientError
	if !errors.As(err, &ie) || *ie != (InsufficientError{Required: 2500, Available: 2000}) {
		t.Errorf("DebitPayable(2500) with 2000 payable beside 9000 of plan credits: %v, want 2000 available", err)
	}
	if !reflect.DeepEqual(s, before) {
		t.Errorf("a refused DebitPayable changed the state")
	}

	// Held credits are not payable either.
	s.Account.Reserved = 10500
	_, err = s.DebitPayable(1000, 0, EntryPurchase, now)
	if !errors.As(err, &ie) || *ie != (InsufficientError{Required: 1000, Available: 500}) {
		t.Errorf("DebitPayable(1000) with 11000 balance and 10500 held: %v, want 500 available", err)
	}
}

// A hold sets credits aside from the effective balance; debits cannot spend
// them; giving them back makes them spendable again.
func TestHoldAndUnhold(t *testing.T) {
	s := State{Account: Account{Balance: 1000}, Blocks: []Block{{ID: "b1", Original: 1000, Remaining: 1000, Seq: 1}}}
	if err := s.Hold(700, t0); err != nil || s.Account.Reserved != 700 {
		t.Fatalf("Hold(700) = %v, reserved %d", err, s.Account.Reserved)
	}
	var ie *InsufficientError
	if err := s.Hold(301, t0); !errors.As(err, &ie) || *ie != (InsufficientError{Required: 301, Available: 300}) || s.Account.Reserved != 700 {
		t.Errorf("Hold(301) with 300 free = %v, reserved %d; want 402 naming 300, nothing changed", err, s.Account.Reserved)
	}
	if _, err := s.Debit(301, EntryUsage, t0); !errors.As(err, &ie) || ie.Available != 300 {
		t.Errorf("Debit(301) with 700 held of 1000: %v, want 300 available", err)
	}
	s.Unhold(700)
	if s.Account.Reserved != 0 {
		t.Errorf("reserved after Unhold = %d", s.Account.Reserved)
	}
	if _, err := s.Debit(1000, EntryCommit, t0); err != nil {
		t.Errorf("Debit(1000) after the hold ended: %v", err)
	}
	s.Unhold(5)
	if s.Account.Reserved != 0 {
		t.Errorf("Unhold below zero left reserved %d", s.Account.Reserved)
	}
}
