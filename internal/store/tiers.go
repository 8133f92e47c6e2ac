package store

import (
	"encoding/json"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
)

// tier is the stored JSON form of a credit.Tier, the same in every backend.
type tier struct {
	UpTo     *int64 `json:"up_to"`
	UnitCost int64  `json:"unit_cost"`
	FlatCost int64  `json:"flat_cost"`
}

// MarshalTiers encodes a rule's tiers for a text column; no tiers is nil.
func MarshalTiers(tiers []credit.Tier) (*string, error) {
	if len(tiers) == 0 {
		return nil, nil
	}
	ts := make([]tier, len(tiers))
	for i, t := range tiers {
		ts[i] = tier(t)
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return nil, fmt.Errorf("encode tiers: %w", err)
	}
	s := string(b)
	return &s, nil
}

// UnmarshalTiers decodes what MarshalTiers stored.
func UnmarshalTiers(s *string) ([]credit.Tier, error) {
	if s == nil {
		return nil, nil
	}
	var ts []tier
	if err := json.Unmarshal([]byte(*s), &ts); err != nil {
		return nil, fmt.Errorf("decode tiers: %w", err)
	}
	out := make([]credit.Tier, len(ts))
	for i, t := range ts {
		out[i] = credit.Tier(t)
	}
	return out, nil
}
