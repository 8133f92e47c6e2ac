package credit

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// t0 is the operation time of the table tests.
var t0 = time.Date(2026, 4, 13, 14, 0, 0, 0, time.UTC)

func ids(blocks []Block) []string {
	out := make([]string, len(blocks))
	for i, b := range blocks {
		out[i] = b.ID
	}
	return out
}

// TestCompareBurn has one group of rows per tie-break of the burn order; in
// each row the keys after the deciding one point the other way, so the row
// fails unless the deciding key wins.
func TestCompareBurn(t *testing.T) {
	hour := t0.Add(time.Hour)
	twoHours := t0.Add(2 * time.Hour)
	tests := []struct {
		name string
		a, b Block
		want int // sign: -1 when a burns first
	}{
		// 1. higher priority first, whatever follows.
		{"priority 10 before 0", Block{ID: "z", Priority: 10, PricePaid: 500, Seq: 9}, Block{ID: "a", Priority: 0, ExpiresAt: hour, Seq: 1}, -1},
		{"priority 0 after 10", Block{ID: "a", Priority: 0, ExpiresAt: hour, Seq: 1}, Block{ID: "z", Priority: 10, PricePaid: 500, Seq: 9}, 1},
		{"priority 100 before 99", Block{ID: "z", Priority: 100, ExpiresAt: twoHours, Seq: 9}, Block{ID: "a", Priority: 99, ExpiresAt: hour, Seq: 1}, -1},
		// 2. earlier expiry first, no expiry last.
		{"earlier expiry first", Block{ID: "z", ExpiresAt: hour, PricePaid: 500, Seq: 9}, Block{ID: "a", ExpiresAt: twoHours, Seq: 1}, -1},
		{"later expiry after", Block{ID: "a", ExpiresAt: twoHours, Seq: 1}, Block{ID: "z", ExpiresAt: hour, PricePaid: 500, Seq: 9}, 1},
		{"expiry before none", Block{ID: "z", ExpiresAt: twoHours, PricePaid: 500, Seq: 9}, Block{ID: "a", Seq: 1}, -1},
		{"none after expiry", Block{ID: "a", Seq: 1}, Block{ID: "z", ExpiresAt: twoHours, PricePaid: 500, Seq: 9}, 1},
		{"expiry 1ns earlier first", Block{ID: "z", ExpiresAt: hour, PricePaid: 1, Seq: 9}, Block{ID: "a", ExpiresAt: hour.Add(time.Nanosecond), Seq: 1}, -1},
		// Same instant in another zone is the same expiry: the next key decides.
		{"same instant other zone, free first", Block{ID: "z", ExpiresAt: hour.In(time.FixedZone("UTC+2", 7200)), Seq: 9}, Block{ID: "a", ExpiresAt: hour, PricePaid: 1, Seq: 1}, -1},
		// 3. free before paid.
		{"free before paid", Block{ID: "z", PricePaid: 0, Seq: 9}, Block{ID: "a", PricePaid: 1, Seq: 1}, -1},
		{"paid after free", Block{ID: "a", PricePaid: 1, Seq: 1}, Block{ID: "z", PricePaid: 0, Seq: 9}, 1},
		{"free before paid, same expiry", Block{ID: "z", ExpiresAt: hour, Seq: 9}, Block{ID: "a", ExpiresAt: hour, PricePaid: 999, Seq: 1}, -1},
		// The price is free-or-paid, not cheaper-first: paid vs paid goes to seq.
		{"paid vs paid: price ignored", Block{ID: "z", PricePaid: 9999, Seq: 1}, Block{ID: "a", PricePaid: 1, Seq: 2}, -1},
		// 4. older first, then id.
		{"older seq first", Block{ID: "z", Seq: 1}, Block{ID: "a", Seq: 2}, -1},
		{"newer seq after", Block{ID: "a", Seq: 2}, Block{ID: "z", Seq: 1}, 1},
		{"id breaks the last tie", Block{ID: "blk_a", Seq: 3}, Block{ID: "blk_b", Seq: 3}, -1},
		{"id after", Block{ID: "blk_b", Seq: 3}, Block{ID: "blk_a", Seq: 3}, 1},
		{"identical", Block{ID: "blk_a", Priority: 5, ExpiresAt: hour, PricePaid: 3, Seq: 3}, Block{ID: "blk_a", Priority: 5, ExpiresAt: hour, PricePaid: 3, Seq: 3}, 0},
		// Amounts never take part in the order.
		{"amounts ignored", Block{ID: "a", Original: 1, Remaining: 1, Seq: 1}, Block{ID: "b", Original: 1000, Remaining: 1000, Seq: 2}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sign(CompareBurn(tt.a, tt.b)); got != tt.want {
				t.Errorf("CompareBurn(%s, %s) = %d, want %d", tt.a.ID, tt.b.ID, got, tt.want)
			}
			if got := sign(CompareBurn(tt.b, tt.a)); got != -tt.want {
				t.Errorf("CompareBurn(%s, %s) (swapped) = %d, want %d", tt.b.ID, tt.a.ID, got, -tt.want)
			}
		})
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func TestExpiredLive(t *testing.T) {
	exp := t0.Add(time.Hour)
	tests := []struct {
		name        string
		b           Block
		now         time.Time
		wantExpired bool
		wantLive    bool
	}{
		{"no expiry, far future", Block{Remaining: 10}, t0.AddDate(100, 0, 0), false, true},
		{"1ns before expiry", Block{Remaining: 10, ExpiresAt: exp}, exp.Add(-time.Nanosecond), false, true},
		{"at the expiry instant", Block{Remaining: 10, ExpiresAt: exp}, exp, true, false},
		{"at the instant, other zone", Block{Remaining: 10, ExpiresAt: exp}, exp.In(time.FixedZone("EST", -5*3600)), true, false},
		{"1ns after expiry", Block{Remaining: 10, ExpiresAt: exp}, exp.Add(time.Nanosecond), true, false},
		{"empty, not expired", Block{Remaining: 0, ExpiresAt: exp}, t0, false, false},
		{"empty, no expiry", Block{Remaining: 0}, t0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Expired(tt.now); got != tt.wantExpired {
				t.Errorf("Expired(%v) with ExpiresAt %v = %v, want %v", tt.now, tt.b.ExpiresAt, got, tt.wantExpired)
			}
			if got := tt.b.Live(tt.now); got != tt.wantLive {
				t.Errorf("Live(%v) with ExpiresAt %v, Remaining %d = %v, want %v", tt.now, tt.b.ExpiresAt, tt.b.Remaining, got, tt.wantLive)
			}
		})
	}
}

func TestBurnOrder(t *testing.T) {
	hour := t0.Add(time.Hour)
	blocks := []Block{
		{ID: "noexp", Remaining: 5, Seq: 1},
		{ID: "expired-at-now", Remaining: 5, Priority: 100, ExpiresAt: t0, Seq: 2},
		{ID: "expired-before", Remaining: 5, Priority: 100, ExpiresAt: t0.Add(-time.Second), Seq: 3},
		{ID: "empty", Remaining: 0, Priority: 100, Seq: 4},
		{ID: "paid-hour", Remaining: 5, ExpiresAt: hour, PricePaid: 100, Seq: 5},
		{ID: "free-hour", Remaining: 5, ExpiresAt: hour, Seq: 6},
		{ID: "p10", Remaining: 5, Priority: 10, Seq: 7},
		{ID: "p10-soon", Remaining: 5, Priority: 10, ExpiresAt: t0.Add(time.Nanosecond), Seq: 8},
		{ID: "noexp-b", Remaining: 5, Seq: 0},
		{ID: "noexp-a", Remaining: 5, Seq: 0},
	}
	tests := []struct {
		name string
		now  time.Time
		want []string
	}{
		{"at t0", t0, []string{"p10-soon", "p10", "free-hour", "paid-hour", "noexp-a", "noexp-b", "noexp"}},
		{"1ns later: p10-soon expires", t0.Add(time.Nanosecond), []string{"p10", "free-hour", "paid-hour", "noexp-a", "noexp-b", "noexp"}},
		{"at hour: hour blocks expire", hour, []string{"p10", "noexp-a", "noexp-b", "noexp"}},
		{"before all expiries", t0.Add(-time.Hour), []string{"expired-before", "expired-at-now", "p10-soon", "p10", "free-hour", "paid-hour", "noexp-a", "noexp-b", "noexp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(blocks)
			got := ids(BurnOrder(in, tt.now))
			if !slices.Equal(got, tt.want) {
				t.Errorf("BurnOrder(blocks, %v) = %v, want %v", tt.now, got, tt.want)
			}
			if !slices.Equal(in, blocks) {
				t.Errorf("BurnOrder(blocks, %v) modified its input: %v, want %v", tt.now, ids(in), ids(blocks))
			}
		})
	}
	if got := BurnOrder(nil, t0); len(got) != 0 {
		t.Errorf("BurnOrder(nil) = %v, want empty", ids(got))
	}
}

func TestLiveBalance(t *testing.T) {
	tests := []struct {
		name    string
		blocks  []Block
		want    int64
		wantErr error
	}{
		{"none", nil, 0, nil},
		{"live only", []Block{{Remaining: 3}, {Remaining: 4, ExpiresAt: t0.Add(time.Second)}}, 7, nil},
		{"skips expired at instant", []Block{{Remaining: 3}, {Remaining: 100, ExpiresAt: t0}}, 3, nil},
		{"max", []Block{{Remaining: math.MaxInt64 - 1}, {Remaining: 1}}, math.MaxInt64, nil},
		{"overflow", []Block{{Remaining: math.MaxInt64}, {Remaining: 1}}, 0, ErrOverflow},
		{"expired does not overflow", []Block{{Remaining: math.MaxInt64}, {Remaining: 1, ExpiresAt: t0}}, math.MaxInt64, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LiveBalance(tt.blocks, t0)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("LiveBalance(blocks, t0) = %d, %v, want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestEffective(t *testing.T) {
	tests := []struct {
		balance, reserved, want int64
	}{
		{100, 0, 100},
		{100, 30, 70},
		{100, 99, 1},
		{100, 100, 0},
		{30, 100, 0}, // expiries shrank the balance under live holds
		{0, 0, 0},
		{math.MaxInt64, 1, math.MaxInt64 - 1},
		{math.MaxInt64, math.MaxInt64, 0},
	}
	for _, tt := range tests {
		if got := Effective(tt.balance, tt.reserved); got != tt.want {
			t.Errorf("Effective(%d, %d) = %d, want %d", tt.balance, tt.reserved, got, tt.want)
		}
	}
}
