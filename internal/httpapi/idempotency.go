package httpapi

import (
	"bytes"
	"io"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/creditd/creditd/internal/ledger"
)

// mutate serves a mutating request with one call into the service. prepare
// decodes and validates the body into its command; the service does the
// rest — the replay of a stored answer (checked before prepare's 400s
// count), the transaction, the stored answer. rewrite, if not nil, adjusts a
// replayed body.
func (s *Server) mutate(w http.ResponseWriter, r *http.Request, prepare func(body []byte) (ledger.Command, error), rewrite func([]byte) []byte) error {
	req := ledger.Request{Scope: scopeOf(r.Context()), Key: r.Header.Get("Idempotency-Key"), Method: r.Method, Path: r.URL.Path}
	resp, err := s.svc.Execute(r.Context(), req, func() (ledger.Command, error) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return prepare(body)
	})
	if err != nil {
		return err
	}
	body := resp.Body
	if resp.Replayed {
		if rewrite != nil {
			body = rewrite(body)
		}
		w.Header().Set("X-Idempotent-Replayed", "true")
	}
	writeJSON(w, resp.Status, "application/json", body)
	return nil
}

// encodeAs is the encoder of a command whose answer is out's JSON with
// status.
func encodeAs[T, J any](status int, out func(T) J) ledger.Encoder[T] {
	return func(v T) (int, []byte, error) {
		b, err := marshal(out(v))
		return status, b, err
	}
}

// markDuplicate sets the top-level duplicate of a stored answer (a usage
// event's, a purchase's) to true for its replay, leaving every other byte
// as stored: a decode and re-encode would need the answer's types to read
// back what they wrote, and metadata may hold a "duplicate" of its own.
func markDuplicate(body []byte) []byte {
	d := jsontext.NewDecoder(bytes.NewReader(body))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return body
	}
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return body
		}
		name := tok.String() // the next read voids tok
		v, err := d.ReadValue()
		if err != nil {
			return body
		}
		if name == "duplicate" {
			end := int(d.InputOffset())
			out := append([]byte(nil), body[:end-len(v)]...)
			out = append(out, "true"...)
			return append(out, body[end:]...)
		}
	}
	return body
}
