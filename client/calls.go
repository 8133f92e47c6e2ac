package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// CustomerRef names a customer in a path: ByID or ByExternalID.
type CustomerRef struct {
	id, externalID string
}

// ByID names a customer by its id. The server looks a value that is not a
// known id up as an external id, as QuotaStack's clients expect.
func ByID(id string) CustomerRef { return CustomerRef{id: id} }

// ByExternalID names a customer by its external id only.
func ByExternalID(externalID string) CustomerRef { return CustomerRef{externalID: externalID} }

// String is how the customer was named, for messages.
func (r CustomerRef) String() string {
	if r.externalID != "" {
		return "external id " + strconv.Quote(r.externalID)
	}
	return strconv.Quote(r.id)
}

var errNoCustomer = errors.New("creditd client: no customer named: use ByID or ByExternalID with a non-empty id")

// path is the customer's resource path.
func (r CustomerRef) path() (string, error) {
	switch {
	case r.externalID != "":
		return "/v1/customer-by-external-id/" + segment(r.externalID), nil
	case r.id != "":
		return "/v1/customers/" + segment(r.id), nil
	}
	return "", errNoCustomer
}

// TenantMe answers the key's tenant and environment (GET /v1/tenants/me):
// a cheap way to check a key.
func (c *Client) TenantMe(ctx context.Context) (*Tenant, error) {
	return one[Tenant](ctx, c, call{method: http.MethodGet, path: "/v1/tenants/me"})
}

// CreateCustomer creates a customer (201). An external id taken is a 409
// customer-exists whose Extra["customer_id"] names the customer.
func (c *Client) CreateCustomer(ctx context.Context, req CustomerRequest) (*Customer, error) {
	return one[Customer](ctx, c, c.write("/v1/customers", req.WriteOptions, req))
}

// GetCustomer reads one customer; unknown: a 404 not-found *Error.
func (c *Client) GetCustomer(ctx context.Context, ref CustomerRef) (*Customer, error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	return one[Customer](ctx, c, call{method: http.MethodGet, path: path})
}

// ListCustomers reads one page of customers, in creation order.
func (c *Client) ListCustomers(ctx context.Context, opts ListOptions) (*Page[Customer], error) {
	return getPage[Customer](ctx, c, "/v1/customers", opts.query())
}

// Customers iterates over every customer from opts.Cursor on, fetching
// pages of opts.Limit as it goes. It stops at the first error, which it
// yields.
func (c *Client) Customers(ctx context.Context, opts ListOptions) iter.Seq2[Customer, error] {
	return all(opts.Cursor, func(cursor string) (*Page[Customer], error) {
		opts.Cursor = cursor
		return c.ListCustomers(ctx, opts)
	})
}

// AllCustomers reads every customer, page after page.
func (c *Client) AllCustomers(ctx context.Context, limit int) ([]Customer, error) {
	var out []Customer
	for cu, err := range c.Customers(ctx, ListOptions{Limit: limit}) {
		if err != nil {
			return out, err
		}
		out = append(out, cu)
	}
	return out, nil
}

// CreateMetric creates a billable metric (201). A key taken is a 409
// metric-exists.
func (c *Client) CreateMetric(ctx context.Context, req MetricRequest) (*Metric, error) {
	return one[Metric](ctx, c, c.write("/v1/billable-metrics", req.WriteOptions, req))
}

// GetMetric reads a billable metric by its key.
func (c *Client) GetMetric(ctx context.Context, key string) (*Metric, error) {
	return one[Metric](ctx, c, call{method: http.MethodGet, path: "/v1/billable-metrics/" + segment(key)})
}

// Metrics reads one page of the billable metrics.
func (c *Client) Metrics(ctx context.Context, opts ListOptions) (*Page[Metric], error) {
	return getPage[Metric](ctx, c, "/v1/billable-metrics", opts.query())
}

// Rules reads one page of the metering rules, superseded ones included
// (Active false).
func (c *Client) Rules(ctx context.Context, opts ListOptions) (*Page[Rule], error) {
	return getPage[Rule](ctx, c, "/v1/metering-rules", opts.query())
}

// CreateRule creates a metering rule (201); it supersedes the metric's
// active rule.
func (c *Client) CreateRule(ctx context.Context, req RuleRequest) (*Rule, error) {
	return one[Rule](ctx, c, c.write("/v1/metering-rules", req.WriteOptions, req))
}

// Grant grants a credit block (POST /v1/topup/grant, 201), creating an
// unknown external customer.
func (c *Client) Grant(ctx context.Context, req GrantRequest) (*Block, error) {
	return one[Block](ctx, c, c.write("/v1/topup/grant", req.WriteOptions, req))
}

// Balance reads a customer's balance, with its live blocks in burn order
// when includeBlocks.
func (c *Client) Balance(ctx context.Context, ref CustomerRef, includeBlocks bool) (*Balance, error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	var q url.Values
	if includeBlocks {
		q = url.Values{"include_blocks": {"true"}}
	}
	return one[Balance](ctx, c, call{method: http.MethodGet, path: path + "/credits", query: q})
}

// Ledger reads one page of a customer's ledger, newest entry first.
func (c *Client) Ledger(ctx context.Context, ref CustomerRef, opts LedgerOptions) (*Page[LedgerEntry], error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	q := ListOptions{Limit: opts.Limit, Cursor: opts.Cursor}.query()
	if opts.Type != "" {
		q.Set("type", opts.Type)
	}
	return getPage[LedgerEntry](ctx, c, path+"/ledger", q)
}

// LedgerEntries iterates over a customer's ledger from opts.Cursor on,
// newest first. It stops at the first error, which it yields.
func (c *Client) LedgerEntries(ctx context.Context, ref CustomerRef, opts LedgerOptions) iter.Seq2[LedgerEntry, error] {
	return all(opts.Cursor, func(cursor string) (*Page[LedgerEntry], error) {
		opts.Cursor = cursor
		return c.Ledger(ctx, ref, opts)
	})
}

// Usage records one usage event (200). Cost above the effective balance is
// a 402 insufficient-credits *Error with Required and Available, and
// nothing is written.
func (c *Client) Usage(ctx context.Context, req UsageRequest) (*UsageResult, error) {
	return one[UsageResult](ctx, c, c.write("/v1/usage", req.WriteOptions, req))
}

// UsageBatch records up to 1,000 events in one request. Events without a
// key get one derived from the batch's key ("<batch key>:<index>"), so that
// a retry sends them under the same keys; req.Events is not modified. Each
// event's fate is in its result: the call fails only when the request does.
func (c *Client) UsageBatch(ctx context.Context, req UsageBatchRequest) (*UsageBatchResult, error) {
	k := c.write("/v1/usage/batch", req.WriteOptions, nil)
	events := make([]UsageEvent, len(req.Events))
	for i, e := range req.Events {
		if e.IdempotencyKey == "" {
			e.IdempotencyKey = k.key + ":" + strconv.Itoa(i)
		}
		events[i] = e
	}
	k.body = UsageBatchRequest{Events: events}
	return one[UsageBatchResult](ctx, c, k)
}

// Check answers whether the customer could afford units of the metric now,
// and what a usage would debit (GET …/entitlements/{metric}). It writes
// nothing.
func (c *Client) Check(ctx context.Context, ref CustomerRef, metricKey string, units int64) (*Entitlement, error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	q := url.Values{"units": {strconv.FormatInt(units, 10)}}
	return one[Entitlement](ctx, c, call{method: http.MethodGet, path: path + "/entitlements/" + segment(metricKey), query: q})
}

// write is a POST under the call's key, drawn here once for all its
// attempts.
func (c *Client) write(path string, o WriteOptions, body any) call {
	return call{method: http.MethodPost, path: path, body: body, key: keyOf(o)}
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

func getPage[T any](ctx context.Context, c *Client, path string, q url.Values) (*Page[T], error) {
	var out Page[T]
	raw, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q}, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	if out.Data == nil {
		out.Data = []T{}
	}
	return &out, nil
}

// all walks the pages fetch answers, from cursor on, item by item.
func all[T any](cursor string, fetch func(cursor string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			p, err := fetch(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range p.Data {
				if !yield(v, nil) {
					return
				}
			}
			// A page that says more but gives no cursor would loop forever.
			if !p.Pagination.HasMore || p.Pagination.NextCursor == "" || p.Pagination.NextCursor == cursor {
				return
			}
			cursor = p.Pagination.NextCursor
		}
	}
}

// one runs k and answers its decoded answer, or nil and the error.
func one[T any](ctx context.Context, c *Client, k call) (*T, error) {
	var out T
	if _, err := c.do(ctx, k, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
