package credit

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("disk on fire"), ""},
		{"invalid", Invalid("units", "must be ≥ 1"), EInvalid},
		{"wrapped", fmt.Errorf("grant: %w", Errorf(ENotFound, "no customer %q", "c1")), ENotFound},
		{"overflow", ErrOverflow, EInvalid},
		{"insufficient", &InsufficientError{Required: 5, Available: 3}, EInsufficient},
		{"wrapped insufficient", fmt.Errorf("usage: %w", &InsufficientError{Required: 5, Available: 3}), EInsufficient},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{Invalid("units", "must not be negative"), "the request is invalid: units: must not be negative"},
		{&Error{Code: EInvalid, Message: "the metering rule is invalid", Fields: []FieldError{{"a", "x"}, {"b", "y"}}}, "the metering rule is invalid"},
		{Errorf(EConflict, "customer %s exists", "c1"), "customer c1 exists"},
		{&InsufficientError{Required: 30, Available: 5}, "insufficient credits: 30 millicredits required, 5 available"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
