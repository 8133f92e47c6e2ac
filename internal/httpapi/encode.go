package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// UnmarshalJSON implements json.Unmarshaler, so that a stored answer reads
// back (a replay marks it a duplicate; a batch reads its events' answers).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
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

// decode parses a request body into v, a pointer to a struct, with the
// strictness of encoding/json/v2's defaults: member names match exactly (a
// name in another case is an unknown member and sets nothing), and a name
// repeated in one object, invalid UTF-8 or a lone surrogate escape is an
// error. Unknown members are ignored: QuotaStack clients may send fields
// creditd does not serve. Every failure is an invalid-request error naming
// the field by its JSON path ("tiers[3].up_to"), or "body": an empty body,
// malformed JSON, anything but an object at the top, nesting deeper than
// maxDepth, and values of the wrong type (a fraction or string for an
// integer, a number beyond int64).
func decode(body []byte, v any) error {
	if err := checkJSON(body); err != nil {
		return err
	}
	return fieldError(json2.Unmarshal(body, v))
}

// lenient reads JSON that is well formed but may repeat names or hold lone
// surrogate escapes: what decode rejects field by field, naming the field.
var lenient = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// checkJSON validates body as one JSON object within maxDepth. It leaves
// repeated names and lone surrogates to the strict decode, which names
// where they are.
func checkJSON(body []byte) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return credit.Invalid("body", "a JSON object is required")
	}
	if !utf8.Valid(body) {
		return credit.Invalid("body", "is not valid UTF-8")
	}
	d := jsontext.NewDecoder(bytes.NewReader(body), lenient...)
	err := d.SkipValue()
	if err == nil {
		// A decoder reads a stream of values: one more is trailing data.
		switch _, err = d.ReadToken(); err {
		case io.EOF:
			err = nil
		case nil:
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		return credit.Invalid("body", "malformed JSON: "+strings.TrimPrefix(err.Error(), "jsontext: "))
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

// fieldError turns an error of the strict decode of well-formed JSON into
// an invalid-request error naming where it is.
func fieldError(err error) error {
	if err == nil {
		return nil
	}
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie.err
	}
	var se *json2.SemanticError
	if errors.As(err, &se) {
		return credit.Invalid(fieldOf(se.JSONPointer), "must be "+describeType(se))
	}
	var sy *jsontext.SyntacticError
	if errors.As(err, &sy) {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return credit.Invalid(fieldOf(sy.JSONPointer), "appears more than once in its object")
		}
		return credit.Invalid(fieldOf(sy.JSONPointer), "is not valid JSON text: "+sy.Err.Error())
	}
	return credit.Invalid("body", "malformed JSON: "+err.Error())
}

// fieldOf names the value at p as the API's errors do: "tiers[3].up_to",
// or "body" for the whole. A client's own long member name is cut short:
// it is echoed in the answer.
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 32); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "body"
	}
	if f := []rune(b.String()); len(f) > maxIDLen {
		return string(f[:maxIDLen]) + "…"
	}
	return b.String()
}

func describeType(se *json2.SemanticError) string {
	t := se.GoType
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64:
		if se.JSONKind == '0' {
			return "an integer within the int64 range"
		}
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of type " + t.String()
}

// invalidError lets a field's UnmarshalJSON report an invalid-request error
// through the decoder.
type invalidError struct{ err *credit.Error }

func (e *invalidError) Error() string { return e.err.Error() }

// Metadata is a request's free-form metadata: a JSON object or null, of at
// most maxMetadataLen bytes. It is stored as the JSON text it came as, so a
// NUL stays the escape \u0000, which both backends keep.
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
	if len(b) > maxMetadataLen {
		return &invalidError{credit.Invalid("metadata", fmt.Sprintf("must be at most %d bytes of JSON", maxMetadataLen))}
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
