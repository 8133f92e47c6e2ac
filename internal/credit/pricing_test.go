package credit

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
)

func upTo(n int64) *int64 { return &n }

// tiers3 is the tier table of the hand-computed examples:
//
//	units 1–100      10 mc each
//	units 101–1000    5 mc each, plus 200 mc once reached
//	units 1001–       1 mc each, plus 1000 mc once reached
var tiers3 = []Tier{
	{UpTo: upTo(100), UnitCost: 10},
	{UpTo: upTo(1000), UnitCost: 5, FlatCost: 200},
	{UpTo: nil, UnitCost: 1, FlatCost: 1000},
}

func TestRuleCost(t *testing.T) {
	flat := Rule{CostType: CostFlat, FlatCost: 500}
	perUnit := Rule{CostType: CostPerUnit, UnitCost: 3}
	perThousand := Rule{CostType: CostPerUnit, UnitCost: 1, UnitSize: 1000}
	graduated := Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: tiers3}
	volume := Rule{CostType: CostTiered, TierMode: TierVolume, Tiers: tiers3}
	// A first tier that is all flat cost: reaching it costs 50 whatever the units in it.
	gradFlatFirst := Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: []Tier{
		{UpTo: upTo(10), FlatCost: 50},
		{UpTo: nil, UnitCost: 2},
	}}
	volFlatFirst := Rule{CostType: CostTiered, TierMode: TierVolume, Tiers: gradFlatFirst.Tiers}
	single := Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: []Tier{{UnitCost: 7, FlatCost: 1}}}

	tests := []struct {
		name  string
		rule  Rule
		units int64
		want  int64
	}{
		{"flat, 1 unit", flat, 1, 500},
		{"flat ignores units", flat, 1000, 500},
		{"flat ignores huge units", flat, maxI, 500},
		{"flat 0", Rule{CostType: CostFlat}, 7, 0},

		{"per_unit size 0 reads as 1", perUnit, 7, 21},
		{"per_unit size 1", Rule{CostType: CostPerUnit, UnitCost: 3, UnitSize: 1}, 7, 21},
		{"per_unit cost 0", Rule{CostType: CostPerUnit, UnitSize: 10}, 12345, 0},
		{"per 1000: 1 unit rounds up", perThousand, 1, 1},
		{"per 1000: 999", perThousand, 999, 1},
		{"per 1000: 1000", perThousand, 1000, 1},
		{"per 1000: 1001 rounds up", perThousand, 1001, 2},
		{"per 1000: 2000", perThousand, 2000, 2},
		{"per 1000: 2001", perThousand, 2001, 3},
		{"per_unit 3 per 2: 3 units", Rule{CostType: CostPerUnit, UnitCost: 3, UnitSize: 2}, 3, 5},
		{"per_unit 3 per 2: 4 units", Rule{CostType: CostPerUnit, UnitCost: 3, UnitSize: 2}, 4, 6},
		{"per_unit max", Rule{CostType: CostPerUnit, UnitCost: 1}, maxI, maxI},
		// units × unit_cost overflows, the price does not (split path).
		{"huge: MaxInt64 × 1000 ÷ 1000", Rule{CostType: CostPerUnit, UnitCost: 1000, UnitSize: 1000}, maxI, maxI},
		{"huge: MaxInt64 × 3 ÷ 10 rounds up", Rule{CostType: CostPerUnit, UnitCost: 3, UnitSize: 10}, maxI, 2767011611056432743},
		{"huge: 2^62 × 6 ÷ 4", Rule{CostType: CostPerUnit, UnitCost: 6, UnitSize: 4}, 1 << 62, 6917529027641081856},
		{"huge: MaxInt64 × 10^9 ÷ 10^12", Rule{CostType: CostPerUnit, UnitCost: 1e9, UnitSize: 1e12}, maxI, 9223372036854776},
		{"huge: remainder × cost overflows too", Rule{CostType: CostPerUnit, UnitCost: 1 << 62, UnitSize: 1 << 62}, (1 << 62) - 1, (1 << 62) - 1},
		{"huge: MaxInt64² ÷ MaxInt64", Rule{CostType: CostPerUnit, UnitCost: maxI, UnitSize: maxI}, maxI, maxI},
		{"huge: (MaxInt64-1) × MaxInt64 ÷ MaxInt64", Rule{CostType: CostPerUnit, UnitCost: maxI, UnitSize: maxI}, maxI - 1, maxI - 1},

		{"graduated 1", graduated, 1, 10},
		{"graduated 100: up_to inclusive", graduated, 100, 1000},
		{"graduated 101: reaches tier 2", graduated, 101, 1000 + 5 + 200},
		{"graduated 1000", graduated, 1000, 1000 + 900*5 + 200},
		{"graduated 1001: reaches tier 3", graduated, 1001, 1000 + 4500 + 200 + 1 + 1000},
		{"graduated 2500", graduated, 2500, 1000 + 4500 + 200 + 1500 + 1000},
		{"graduated flat first tier, 1", gradFlatFirst, 1, 50},
		{"graduated flat first tier, 10", gradFlatFirst, 10, 50},
		{"graduated flat first tier, 11", gradFlatFirst, 11, 52},
		{"graduated single unbounded", single, 4, 29},

		{"volume 1", volume, 1, 10},
		{"volume 100: up_to inclusive", volume, 100, 1000},
		{"volume 101: all units at tier 2", volume, 101, 101*5 + 200},
		{"volume 1000", volume, 1000, 1000*5 + 200},
		{"volume 1001: all units at tier 3", volume, 1001, 1001 + 1000},
		{"volume flat first tier, 10", volFlatFirst, 10, 50},
		{"volume flat first tier, 11", volFlatFirst, 11, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil (bad test rule)", err)
			}
			got, err := tt.rule.Cost(tt.units)
			if err != nil || got != tt.want {
				t.Errorf("Cost(%d) = %d, %v, want %d, nil", tt.units, got, err, tt.want)
			}
		})
	}
}

func TestRuleCostOverflow(t *testing.T) {
	tests := []struct {
		name  string
		rule  Rule
		units int64
	}{
		{"per_unit MaxInt64 × 2", Rule{CostType: CostPerUnit, UnitCost: 2}, maxI},
		{"per_unit 2^32 × 2^31", Rule{CostType: CostPerUnit, UnitCost: 1 << 31}, 1 << 32},
		{"per_unit result one past max", Rule{CostType: CostPerUnit, UnitCost: maxI, UnitSize: maxI - 1}, maxI},
		{"per_unit rounding up past max", Rule{CostType: CostPerUnit, UnitCost: 3, UnitSize: 2}, 6148914691236517205},
		{"per_unit MaxInt64² ÷ 2", Rule{CostType: CostPerUnit, UnitCost: maxI, UnitSize: 2}, maxI},
		{"graduated units × unit_cost", Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: []Tier{{UnitCost: 2}}}, maxI},
		{"graduated unit cost + flat", Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: []Tier{{UnitCost: 1, FlatCost: maxI}}}, 1},
		{"graduated sum of tiers", Rule{CostType: CostTiered, TierMode: TierGraduated, Tiers: []Tier{{UpTo: upTo(1), FlatCost: maxI}, {FlatCost: 1}}}, 2},
		{"volume units × unit_cost", Rule{CostType: CostTiered, TierMode: TierVolume, Tiers: []Tier{{UpTo: upTo(10), UnitCost: 1}, {UnitCost: 4}}}, maxI / 2},
		{"volume flat", Rule{CostType: CostTiered, TierMode: TierVolume, Tiers: []Tier{{UnitCost: 1, FlatCost: maxI}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil (bad test rule)", err)
			}
			got, err := tt.rule.Cost(tt.units)
			checkFieldError(t, fmt.Sprintf("Cost(%d) = %d", tt.units, got), err, []string{"units"})
		})
	}
}

// checkFieldError fails unless err is an invalid-request *Error naming
// exactly the fields want, in order.
func checkFieldError(t *testing.T, call string, err error, want []string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s, error %v, want an *Error on %v", call, err, want)
		return
	}
	if e.Code != EInvalid {
		t.Errorf("%s, error code %q, want %q", call, e.Code, EInvalid)
	}
	var got []string
	for _, f := range e.Fields {
		got = append(got, f.Field)
		if f.Message == "" {
			t.Errorf("%s, field %q has no message", call, f.Field)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s, error fields %v, want %v", call, got, want)
	}
}

func TestRuleCostNegativeUnits(t *testing.T) {
	for _, r := range []Rule{
		{CostType: CostFlat, FlatCost: 1},
		{CostType: CostPerUnit, UnitCost: 1},
		{CostType: CostTiered, TierMode: TierVolume, Tiers: tiers3},
	} {
		got, err := r.Cost(-1)
		checkFieldError(t, fmt.Sprintf("%s Cost(-1) = %d", r.CostType, got), err, []string{"units"})
	}
}

// TestRuleCostBrokenRule: a stored rule that Validate rejects is an internal
// failure, not the client's units.
func TestRuleCostBrokenRule(t *testing.T) {
	for _, r := range []Rule{
		{CostType: "bogus"},
		{CostType: CostTiered, TierMode: TierVolume, Tiers: []Tier{{UpTo: upTo(10), UnitCost: 1}}},
	} {
		got, err := r.Cost(11)
		if err == nil || ErrorCode(err) != "" {
			t.Errorf("%+v Cost(11) = %d, %v (code %q), want an error without a code", r, got, err, ErrorCode(err))
		}
	}
}

// TestMulCeilDiv checks the split path against math/big on the edges.
func TestMulCeilDiv(t *testing.T) {
	vals := []int64{0, 1, 2, 3, 7, 999, 1000, 1001, 1 << 31, 1<<32 + 1, 3037000499, 3037000500, 1 << 62, (1 << 62) - 1, maxI - 1, maxI}
	maxBig := big.NewInt(maxI)
	for _, a := range vals {
		for _, b := range vals {
			for _, d := range vals {
				if d == 0 {
					continue
				}
				want := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
				want.Add(want, big.NewInt(d-1))
				want.Quo(want, big.NewInt(d))
				got, err := mulCeilDiv(a, b, d)
				if want.Cmp(maxBig) > 0 {
					if !errors.Is(err, ErrOverflow) {
						t.Errorf("mulCeilDiv(%d, %d, %d) = %d, %v, want ErrOverflow", a, b, d, got, err)
					}
					continue
				}
				if err != nil || got != want.Int64() {
					t.Errorf("mulCeilDiv(%d, %d, %d) = %d, %v, want %d, nil", a, b, d, got, err, want.Int64())
				}
			}
		}
	}
}

// TestMulCeilDivNegative: a product that overflows with a negative factor
// (a rule Validate rejects) is reported, never split.
func TestMulCeilDivNegative(t *testing.T) {
	for _, c := range [][3]int64{{-(1 << 62), 4, 1}, {1 << 62, -4, 3}, {maxI, minI, maxI}} {
		if got, err := mulCeilDiv(c[0], c[1], c[2]); !errors.Is(err, ErrOverflow) {
			t.Errorf("mulCeilDiv(%d, %d, %d) = %d, %v, want ErrOverflow", c[0], c[1], c[2], got, err)
		}
	}
}

func TestRuleValidate(t *testing.T) {
	tiered := func(mode TierMode, tiers ...Tier) Rule {
		return Rule{CostType: CostTiered, TierMode: mode, Tiers: tiers}
	}
	tests := []struct {
		name string
		rule Rule
		want []string // bad fields, in order; nil: valid
	}{
		{"flat", Rule{CostType: CostFlat, FlatCost: 5}, nil},
		{"flat 0", Rule{CostType: CostFlat}, nil},
		{"flat negative", Rule{CostType: CostFlat, FlatCost: -1}, []string{"flat_cost"}},
		{"per_unit", Rule{CostType: CostPerUnit, UnitCost: 1, UnitSize: 1000}, nil},
		{"per_unit size default", Rule{CostType: CostPerUnit, UnitCost: 1}, nil},
		{"per_unit cost negative", Rule{CostType: CostPerUnit, UnitCost: -1}, []string{"unit_cost"}},
		{"per_unit size negative", Rule{CostType: CostPerUnit, UnitCost: 1, UnitSize: -1}, []string{"unit_size"}},
		{"per_unit both", Rule{CostType: CostPerUnit, UnitCost: -1, UnitSize: -1}, []string{"unit_cost", "unit_size"}},
		{"cost_type empty", Rule{}, []string{"cost_type"}},
		{"cost_type unknown", Rule{CostType: "per_token"}, []string{"cost_type"}},
		{"tiered graduated", tiered(TierGraduated, tiers3...), nil},
		{"tiered volume", tiered(TierVolume, tiers3...), nil},
		{"tiered one unbounded tier", tiered(TierVolume, Tier{UnitCost: 1}), nil},
		{"tier_mode empty", tiered("", tiers3...), []string{"tier_mode"}},
		{"tier_mode unknown", tiered("stairstep", tiers3...), []string{"tier_mode"}},
		{"no tiers", tiered(TierGraduated), []string{"tiers"}},
		{"no tiers, no mode", tiered(""), []string{"tier_mode", "tiers"}},
		{"first up_to 0", tiered(TierGraduated, Tier{UpTo: upTo(0)}, Tier{}), []string{"tiers[0].up_to"}},
		{"first up_to negative", tiered(TierGraduated, Tier{UpTo: upTo(-5)}, Tier{}), []string{"tiers[0].up_to"}},
		{"up_to descending", tiered(TierGraduated, Tier{UpTo: upTo(100)}, Tier{UpTo: upTo(50)}, Tier{}), []string{"tiers[1].up_to"}},
		{"up_to equal", tiered(TierGraduated, Tier{UpTo: upTo(100)}, Tier{UpTo: upTo(100)}, Tier{}), []string{"tiers[1].up_to"}},
		{"up_to below an earlier one", tiered(TierVolume, Tier{UpTo: upTo(10)}, Tier{UpTo: nil}, Tier{UpTo: upTo(5)}, Tier{}), []string{"tiers[1].up_to", "tiers[2].up_to"}},
		{"unbounded first of two", tiered(TierGraduated, Tier{UpTo: nil}, Tier{UpTo: nil}), []string{"tiers[0].up_to"}},
		{"last bounded", tiered(TierGraduated, Tier{UpTo: upTo(10)}, Tier{UpTo: upTo(20)}), []string{"tiers[1].up_to"}},
		{"only tier bounded", tiered(TierVolume, Tier{UpTo: upTo(10)}), []string{"tiers[0].up_to"}},
		{"tier unit_cost negative", tiered(TierGraduated, Tier{UpTo: upTo(10)}, Tier{UpTo: upTo(20)}, Tier{UnitCost: -1}), []string{"tiers[2].unit_cost"}},
		{"tier flat_cost negative", tiered(TierGraduated, Tier{UpTo: upTo(10), FlatCost: -1}, Tier{}), []string{"tiers[0].flat_cost"}},
		{"every field of a tier", tiered(TierGraduated, Tier{UpTo: upTo(10)}, Tier{UpTo: upTo(10), UnitCost: -1, FlatCost: -1}, Tier{}), []string{"tiers[1].up_to", "tiers[1].unit_cost", "tiers[1].flat_cost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			checkFieldError(t, "Validate()", err, tt.want)
		})
	}
}
