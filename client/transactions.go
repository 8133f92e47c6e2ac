package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Operation is one operation of a linked transaction: a usage or a grant,
// with that endpoint's body (its WriteOptions are ignored: the transaction
// has one key). Make one with UsageOp or GrantOp.
type Operation struct {
	usage *UsageRequest
	grant *GrantRequest
}

// UsageOp is a usage operation (the body of POST /v1/usage).
func UsageOp(r UsageRequest) Operation { return Operation{usage: &r} }

// GrantOp is a grant operation (the body of POST /v1/topup/grant).
func GrantOp(r GrantRequest) Operation { return Operation{grant: &r} }

var errEmptyOperation = errors.New("client: an Operation made neither by UsageOp nor by GrantOp")

// MarshalJSON writes the operation's body with its "type" first.
func (o Operation) MarshalJSON() ([]byte, error) {
	var typ string
	var body any
	switch {
	case o.usage != nil:
		typ, body = "usage", o.usage
	case o.grant != nil:
		typ, body = "grant", o.grant
	default:
		return nil, errEmptyOperation
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	out := []byte(`{"type":"` + typ + `"`)
	if len(b) > 2 { // not "{}"
		out = append(append(out, ','), b[1:]...)
		return out, nil
	}
	return append(out, '}'), nil
}

// TransactionRequest applies its operations in order, all or nothing
// (POST /v1/transactions). The first operation that fails fails the whole
// request with its own problem, and Extra["operation_index"] says which.
type TransactionRequest struct {
	WriteOptions
	Operations []Operation `json:"operations"`
	Metadata   any         `json:"metadata,omitempty"`
}

// Transaction is a linked transaction applied: one result per operation,
// in order.
type Transaction struct {
	ID        string            `json:"id"`
	Results   []OperationResult `json:"results"`
	Metadata  json.RawMessage   `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	Raw       json.RawMessage   `json:"-"`
}

// OperationResult is an operation's own answer: Usage for a usage, Grant
// (the block) for a grant.
type OperationResult struct {
	Index int
	Type  string
	Usage *UsageResult
	Grant *Block
}

func (r *OperationResult) UnmarshalJSON(b []byte) error {
	var head struct {
		Index int    `json:"index"`
		Type  string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	r.Index, r.Type = head.Index, head.Type
	switch head.Type {
	case "usage":
		r.Usage = new(UsageResult)
		return json.Unmarshal(b, r.Usage)
	case "grant":
		r.Grant = new(Block)
		return json.Unmarshal(b, r.Grant)
	}
	return nil
}

// Transact applies a linked transaction (201). A transfer between two
// customers is a usage on one and a grant on the other.
func (c *Client) Transact(ctx context.Context, req TransactionRequest) (*Transaction, error) {
	return one[Transaction](ctx, c, c.write("/v1/transactions", req.WriteOptions, req))
}

// GetTransaction reads a linked transaction's stored answer.
func (c *Client) GetTransaction(ctx context.Context, id string) (*Transaction, error) {
	return one[Transaction](ctx, c, call{method: http.MethodGet, path: "/v1/transactions/" + segment(id)})
}

func (v *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	return decodeRaw(b, (*plain)(v), &v.Raw)
}
