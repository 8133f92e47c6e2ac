package credit

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// CostType is how a metering rule prices usage.
type CostType string

// The cost types of metering rules.
const (
	CostFlat    CostType = "flat"     // FlatCost once per event, whatever its units
	CostPerUnit CostType = "per_unit" // ⌈units × UnitCost ÷ UnitSize⌉
	CostTiered  CostType = "tiered"   // Tiers, in TierMode
)

// TierMode is how tiered pricing applies its tiers.
type TierMode string

// The tier modes.
const (
	// TierGraduated prices each unit at the tier it falls in, adding the
	// flat cost of every tier the usage reaches.
	TierGraduated TierMode = "graduated"
	// TierVolume prices all units at the one tier the total falls in.
	TierVolume TierMode = "volume"
)

// Tier is one band of tiered pricing. UpTo is the inclusive upper bound in
// units; nil means unbounded and is allowed only on the last tier.
type Tier struct {
	UpTo     *int64
	UnitCost int64
	FlatCost int64
}

// Rule is the price of a billable metric.
type Rule struct {
	CostType CostType
	FlatCost int64
	UnitCost int64
	UnitSize int64 // per_unit only; 0 is read as 1
	TierMode TierMode
	Tiers    []Tier
}

// Validate checks a rule as a client submitted it and names every bad field.
func (r Rule) Validate() error {
	var fields []FieldError
	bad := func(field, msg string) { fields = append(fields, FieldError{field, msg}) }
	switch r.CostType {
	case CostFlat:
		if r.FlatCost < 0 {
			bad("flat_cost", "must be ≥ 0")
		}
	case CostPerUnit:
		if r.UnitCost < 0 {
			bad("unit_cost", "must be ≥ 0")
		}
		if r.UnitSize < 0 {
			bad("unit_size", "must be ≥ 1")
		}
	case CostTiered:
		if r.TierMode != TierGraduated && r.TierMode != TierVolume {
			bad("tier_mode", `must be "graduated" or "volume"`)
		}
		if len(r.Tiers) == 0 {
			bad("tiers", "at least one tier is required")
		}
		var prev int64
		for i, t := range r.Tiers {
			name := fmt.Sprintf("tiers[%d]", i)
			last := i == len(r.Tiers)-1
			switch {
			case t.UpTo == nil && !last:
				bad(name+".up_to", "only the last tier may be unbounded (null)")
			case t.UpTo != nil && last:
				bad(name+".up_to", "the last tier must be unbounded (null)")
			case t.UpTo != nil && *t.UpTo <= prev:
				bad(name+".up_to", "must be greater than the previous tier's up_to and ≥ 1")
			}
			if t.UpTo != nil {
				prev = *t.UpTo
			}
			if t.UnitCost < 0 {
				bad(name+".unit_cost", "must be ≥ 0")
			}
			if t.FlatCost < 0 {
				bad(name+".flat_cost", "must be ≥ 0")
			}
		}
	default:
		bad("cost_type", `must be "flat", "per_unit" or "tiered"`)
	}
	if len(fields) > 0 {
		return &Error{Code: EInvalid, Message: "the metering rule is invalid", Fields: fields}
	}
	return nil
}

// Cost prices units of usage in millicredits. units must be ≥ 0. A price that
// does not fit in an int64 is an invalid-request error on "units", because it
// is the client's units that pushed it over. A rule that Validate rejects may
// fail with an error that has no code (an internal failure).
func (r Rule) Cost(units int64) (int64, error) {
	if units < 0 {
		return 0, Invalid("units", "must not be negative")
	}
	cost, err := r.cost(units)
	if errors.Is(err, ErrOverflow) {
		return 0, Invalid("units", "the cost would overflow int64 millicredits")
	}
	if err != nil {
		// Not the client's units: the stored rule itself is unusable (it
		// would not pass Validate), which is an internal failure.
		return 0, fmt.Errorf("pricing %d units: %w", units, err)
	}
	return cost, nil
}

func (r Rule) cost(units int64) (int64, error) {
	switch r.CostType {
	case CostFlat:
		return r.FlatCost, nil
	case CostPerUnit:
		size := r.UnitSize
		if size <= 0 {
			size = 1
		}
		return mulCeilDiv(units, r.UnitCost, size)
	case CostTiered:
		if r.TierMode == TierVolume {
			return r.volume(units)
		}
		return r.graduated(units)
	}
	return 0, fmt.Errorf("unknown cost type %q", r.CostType)
}

// mulCeilDiv returns ⌈a×b÷d⌉ for d > 0 without overflowing in the
// intermediate product: when a×b does not fit in an int64 (a, b ≥ 0), it is
// formed in 128 bits, so the only overflow reported is the result's own.
func mulCeilDiv(a, b, d int64) (int64, error) {
	if p, err := Mul(a, b); err == nil {
		return CeilDiv(p, d), nil
	}
	if a < 0 || b < 0 {
		return 0, ErrOverflow
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(d) {
		return 0, ErrOverflow // the quotient needs more than 64 bits
	}
	q, rem := bits.Div64(hi, lo, uint64(d))
	if q > math.MaxInt64 || (rem != 0 && q == math.MaxInt64) {
		return 0, ErrOverflow
	}
	if rem != 0 {
		q++
	}
	return int64(q), nil
}

func (r Rule) graduated(units int64) (int64, error) {
	var total, below int64
	for _, t := range r.Tiers {
		if units <= below {
			break
		}
		in := units - below
		if t.UpTo != nil && *t.UpTo-below < in {
			in = *t.UpTo - below
		}
		c, err := Mul(in, t.UnitCost)
		if err != nil {
			return 0, err
		}
		if c, err = Add(c, t.FlatCost); err != nil {
			return 0, err
		}
		if total, err = Add(total, c); err != nil {
			return 0, err
		}
		if t.UpTo == nil {
			break
		}
		below = *t.UpTo
	}
	return total, nil
}

func (r Rule) volume(units int64) (int64, error) {
	for _, t := range r.Tiers {
		if t.UpTo == nil || units <= *t.UpTo {
			c, err := Mul(units, t.UnitCost)
			if err != nil {
				return 0, err
			}
			return Add(c, t.FlatCost)
		}
	}
	return 0, fmt.Errorf("no tier holds %d units", units)
}
