package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/creditd/creditd/internal/credit"
)

// maxDepth is the deepest JSON nesting a request may have.
const maxDepth = 32

// timeFormat is how every time is answered: UTC with milliseconds, as
// JavaScript's toISOString writes it.
const timeFormat = "2006-01-02T15:04:05.000Z"

// Time is a time.Time that encodes in timeFormat, and as null when zero.
type Time time.Time

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(timeFormat) + `"`), nil
}

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) error {
	body, err := marshal(v)
	if err != nil {
		return err
	}
	writeJSON(w, status, "application/json", body)
	return nil
}

func marshal(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte("\n"))
}

// decode parses a request body into v, a pointer to a struct. It rejects, as
// invalid-request errors naming the problem: an empty body, invalid UTF-8,
// malformed JSON, anything but an object at the top, nesting deeper than
// maxDepth, and values of the wrong type (a fraction or string for an integer,
// a number beyond int64).
func decode(body []byte, v any) error {
	if err := checkJSON(body); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body"
			}
			return credit.Invalid(field, "must be "+describeType(te))
		}
		var ie *invalidError
		if errors.As(err, &ie) {
			return ie.err
		}
		return credit.Invalid("body", "malformed JSON: "+err.Error())
	}
	return nil
}

// checkJSON validates body as one JSON object within maxDepth.
func checkJSON(body []byte) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return credit.Invalid("body", "a JSON object is required")
	}
	if !utf8.Valid(body) {
		return credit.Invalid("body", "is not valid UTF-8")
	}
	if !json.Valid(body) {
		var x any
		err := json.Unmarshal(body, &x)
		return credit.Invalid("body", fmt.Sprintf("malformed JSON: %v", err))
	}
	if body[0] != '{' {
		return credit.Invalid("body", "must be a JSON object")
	}
	if depth(body) > maxDepth {
		return credit.Invalid("body", fmt.Sprintf("JSON nests deeper than %d levels", maxDepth))
	}
	return nil
}

// depth returns the deepest nesting of valid JSON.
func depth(b []byte) int {
	var d, deepest int
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

func describeType(te *json.UnmarshalTypeError) string {
	switch te.Type.Kind().String() {
	case "int64", "int", "int32":
		if strings.HasPrefix(te.Value, "number") {
			return "an integer within the int64 range"
		}
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "of type " + te.Type.String()
}

// invalidError lets a field's UnmarshalJSON report an invalid-request error
// through the decoder.
type invalidError struct{ err *credit.Error }

func (e *invalidError) Error() string { return e.err.Error() }

// Metadata is a request's free-form metadata: a JSON object or null.
type Metadata json.RawMessage

// UnmarshalJSON implements json.Unmarshaler.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*m = nil
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return &invalidError{credit.Invalid("metadata", "must be a JSON object")}
	}
	*m = append((*m)[:0], b...)
	return nil
}

// metadataOut answers stored metadata, {} when there is none.
func metadataOut(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	return m
}

// Timestamp is a request time: RFC 3339 with any fraction and offset, or
// null.
type Timestamp struct {
	time.Time
	field string
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &invalidError{credit.Invalid(t.field, "must be an RFC 3339 time string")}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return &invalidError{credit.Invalid(t.field, "must be an RFC 3339 time, like 2026-04-13T14:00:00Z")}
	}
	// Stored and answered at millisecond precision; truncating keeps what is
	// answered equal to what is enforced.
	t.Time = v.UTC().Truncate(time.Millisecond)
	return nil
}
