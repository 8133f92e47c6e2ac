package credit

import (
	"errors"
	"math"
	"testing"
)

const (
	maxI = math.MaxInt64
	minI = math.MinInt64
)

type moneyCase struct {
	a, b     int64
	want     int64
	overflow bool
}

func checkMoney(t *testing.T, name string, f func(a, b int64) (int64, error), tests []moneyCase) {
	t.Helper()
	for _, tt := range tests {
		got, err := f(tt.a, tt.b)
		switch {
		case tt.overflow && !errors.Is(err, ErrOverflow):
			t.Errorf("%s(%d, %d) = %d, %v, want ErrOverflow", name, tt.a, tt.b, got, err)
		case tt.overflow && ErrorCode(err) != EInvalid:
			t.Errorf("%s(%d, %d) error code = %q, want %q", name, tt.a, tt.b, ErrorCode(err), EInvalid)
		case !tt.overflow && (err != nil || got != tt.want):
			t.Errorf("%s(%d, %d) = %d, %v, want %d, nil", name, tt.a, tt.b, got, err, tt.want)
		}
	}
}

func TestAdd(t *testing.T) {
	checkMoney(t, "Add", Add, []moneyCase{
		{1, 2, 3, false},
		{-1, -2, -3, false},
		{maxI, 0, maxI, false},
		{maxI - 1, 1, maxI, false},
		{maxI, 1, 0, true},
		{1, maxI, 0, true},
		{maxI, maxI, 0, true},
		{minI, 0, minI, false},
		{minI + 1, -1, minI, false},
		{minI, -1, 0, true},
		{-1, minI, 0, true},
		{minI, minI, 0, true},
		{minI, maxI, -1, false},
		{maxI, minI, -1, false},
	})
}

func TestSub(t *testing.T) {
	checkMoney(t, "Sub", Sub, []moneyCase{
		{3, 2, 1, false},
		{2, 3, -1, false},
		{0, maxI, -maxI, false},
		{-1, maxI, minI, false},
		{-2, maxI, 0, true},
		{minI, 1, 0, true},
		{minI, 0, minI, false},
		{0, minI, 0, true},
		{-1, minI, maxI, false},
		{maxI, -1, 0, true},
		{maxI - 1, -1, maxI, false},
		{minI, minI, 0, false},
		{maxI, maxI, 0, false},
		{maxI, minI, 0, true},
	})
}

func TestMul(t *testing.T) {
	checkMoney(t, "Mul", Mul, []moneyCase{
		{0, minI, 0, false},
		{minI, 0, 0, false},
		{6, 7, 42, false},
		{-6, 7, -42, false},
		{minI, 1, minI, false},
		{1, minI, minI, false},
		{minI, -1, 0, true}, // -MinInt64 does not fit, though the wrapped c/b == a
		{-1, minI, 0, true},
		{maxI, -1, -maxI, false},
		{-1, maxI, -maxI, false},
		{maxI, 1, maxI, false},
		{maxI, 2, 0, true},
		{minI, 2, 0, true},
		{minI / 2, 2, minI, false},
		{1 << 31, 1 << 31, 1 << 62, false},
		{1 << 32, 1 << 31, 0, true}, // 1<<63 is one past MaxInt64
		{-(1 << 32), 1 << 31, minI, false},
		{3037000499, 3037000499, 9223372030926249001, false}, // ⌊√MaxInt64⌋²
		{3037000500, 3037000500, 0, true},
		{-3037000500, 3037000500, 0, true},
		{1 << 62, 4, 0, true}, // wraps to exactly 0
	})
}

func TestCeilDiv(t *testing.T) {
	tests := []struct{ a, b, want int64 }{
		{0, 5, 0},
		{10, 5, 2},
		{11, 5, 3},
		{14, 5, 3},
		{1, 1000, 1},
		{999, 1000, 1},
		{1000, 1000, 1},
		{1001, 1000, 2},
		{maxI, 1, maxI},
		{maxI, 2, 1 << 62},
		{maxI - 1, 2, (1 << 62) - 1},
		{maxI, maxI, 1},
		{1, maxI, 1},
	}
	for _, tt := range tests {
		if got := CeilDiv(tt.a, tt.b); got != tt.want {
			t.Errorf("CeilDiv(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
