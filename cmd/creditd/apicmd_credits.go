package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/creditd/creditd/client"
)

const createsCustomer = "the customer's external id, your own id for it; an unknown one is created"

func grantCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("grant", `usage: creditd grant (--customer-id ID | --external-id EXT) --amount MC [flags]

Grants a credit block (POST /v1/topup/grant): --amount millicredits (credits
with --credits), at --priority, expiring at --expires-at or after --expires-in,
or never. An unknown --external-id is created. The operation runs under
--idempotency-key (a new one, printed, when not given): rerunning the command
with the same key grants once, so a grant that timed out is finished safely by
running it again with its key. --json prints the API's block object.`, getenv, stdout, stderr)
	c.customerFlags(createsCustomer)
	c.writeFlags()
	amount := c.fs.String("amount", "", "the block's amount: millicredits, or credits with --credits (required)")
	priority := c.fs.Int("priority", 0, "0 to 100: blocks of higher priority are spent first")
	expiresAt := c.fs.String("expires-at", "", "when the block expires, RFC 3339 (2026-12-31T23:59:59Z)")
	expiresIn := c.fs.Duration("expires-in", 0, "the block expires this long from now (720h); default: never")
	source := c.fs.String("source", "", "the block's source (the server's default: topup)")
	reason := c.fs.String("reason", "", "why the credits were granted, for the ledger's readers")
	pricePaid := c.fs.Int64("price-paid", 0, "what the customer paid, in minor units of --currency")
	currency := c.fs.String("currency", "", "currency of --price-paid (USD)")
	paymentID := c.fs.String("external-payment-id", "", "the payment's id in your payment system")
	metadata := c.fs.String("metadata", "", "a JSON object kept with the block")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	req := client.GrantRequest{WriteOptions: client.WriteOptions{IdempotencyKey: c.idemKey},
		CustomerID: c.customerID, ExternalCustomerID: c.externalID, Priority: *priority, Source: *source,
		Reason: *reason, PricePaid: *pricePaid, Currency: *currency, ExternalPaymentID: *paymentID}
	var err error
	if req.Credits, err = c.readAmount(*amount); err != nil {
		return err
	}
	switch {
	case *expiresAt != "" && *expiresIn != 0:
		return errors.New("grant: give --expires-at or --expires-in, not both")
	case *expiresAt != "":
		t, err := time.Parse(time.RFC3339Nano, *expiresAt)
		if err != nil {
			return fmt.Errorf("grant: --expires-at %q is not an RFC 3339 time such as 2026-12-31T23:59:59Z", *expiresAt)
		}
		req.ExpiresAt = &t
	case *expiresIn < 0:
		return errors.New("grant: --expires-in must be positive")
	case *expiresIn > 0:
		t := time.Now().Add(*expiresIn)
		req.ExpiresAt = &t
	}
	if meta, err := jsonObject("--metadata", *metadata); err != nil {
		return fmt.Errorf("grant: %w", err)
	} else if meta != nil {
		req.Metadata = meta
	}

	cl, ctx, cancel := c.client(ctx)
	defer cancel()
	b, err := cl.Grant(ctx, req)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(b.Raw)
	}
	w := c.table()
	fmt.Fprintf(w, "block\t%s\n", b.ID)
	fmt.Fprintf(w, "customer\t%s\n", customerText(b.CustomerID, b.ExternalCustomerID))
	fmt.Fprintf(w, "amount\t%s %s\n", c.amount(b.OriginalAmount), c.unit())
	fmt.Fprintf(w, "remaining\t%s %s\n", c.amount(b.RemainingAmount), c.unit())
	fmt.Fprintf(w, "priority\t%d\n", b.Priority)
	fmt.Fprintf(w, "expires\t%s\n", expiry(b.ExpiresAt))
	fmt.Fprintf(w, "source\t%s\n", b.Source)
	fmt.Fprintf(w, "idempotency key\t%s\n", c.idemKey)
	return w.Flush()
}

// readAmount reads --amount in the unit the flags chose.
func (c *apiCmd) readAmount(v string) (int64, error) {
	if v == "" {
		return 0, fmt.Errorf("%s: --amount is required", c.name)
	}
	var mc int64
	var err error
	if c.credits {
		mc, err = parseCredits(v)
	} else if mc, err = strconv.ParseInt(v, 10, 64); err != nil {
		err = fmt.Errorf("%q is not a whole number of millicredits (--credits reads credits)", v)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: --amount: %w", c.name, err)
	}
	if mc < 1 {
		return 0, fmt.Errorf("%s: --amount must be at least 1 mc", c.name)
	}
	return mc, nil
}

func balanceCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("balance", `usage: creditd balance (--customer-id ID | --external-id EXT) [--blocks] [flags]

Shows a customer's balance: what its live blocks hold, what reservations hold
back, and what is left to spend (effective). --blocks lists the live blocks
in burn order, the order usage spends them. --json prints the API's balance
object.`, getenv, stdout, stderr)
	c.customerFlags("the customer's external id, your own id for it")
	blocks := c.fs.Bool("blocks", false, "list the live blocks, in burn order")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	cl, ctx, cancel := c.client(ctx)
	defer cancel()
	bal, err := cl.Balance(ctx, c.ref(), *blocks)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(bal.Raw)
	}
	w := c.table()
	u := c.unit()
	fmt.Fprintf(w, "customer\t%s\n", customerText(bal.CustomerID, bal.ExternalCustomerID))
	fmt.Fprintf(w, "balance\t%s %s\n", c.amount(bal.Balance), u)
	fmt.Fprintf(w, "reserved\t%s %s\n", c.amount(bal.ReservedBalance), u)
	fmt.Fprintf(w, "effective\t%s %s\n", c.amount(bal.EffectiveBalance), u)
	fmt.Fprintf(w, "lifetime earned\t%s %s\n", c.amount(bal.LifetimeEarned), u)
	fmt.Fprintf(w, "version\t%d\n", bal.Version)
	if err := w.Flush(); err != nil || !*blocks {
		return err
	}
	fmt.Fprintln(stdout)
	w = c.table()
	fmt.Fprintf(w, "BLOCK\tREMAINING (%s)\tORIGINAL (%s)\tPRIORITY\tEXPIRES\tSOURCE\tCREATED\n", u, u)
	for _, b := range bal.Blocks {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.ID, c.amount(b.RemainingAmount), c.amount(b.OriginalAmount),
			b.Priority, expiry(b.ExpiresAt), b.Source, stamp(b.CreatedAt))
	}
	return w.Flush()
}

func ledgerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("ledger", `usage: creditd ledger (--customer-id ID | --external-id EXT) [--type T] [--limit N] [--cursor C] [--all] [flags]

Lists a customer's ledger, newest entry first: one entry per block each change
touched, with the balance after it. One page of --limit (the server's 50 by
default), then the next page's cursor on stderr; --all reads every page.
--json prints the API's list ({"data": [...], "pagination": {...}}).`, getenv, stdout, stderr)
	c.customerFlags("the customer's external id, your own id for it")
	typ := c.fs.String("type", "", "only entries of this type: grant, usage, purchase, expire, reserve, commit, release, adjustment")
	limit := c.fs.Int("limit", 0, "entries per page, 1 to 500 (0: the server's default, 50)")
	cursor := c.fs.String("cursor", "", "start after this cursor, from a page before")
	all := c.fs.Bool("all", false, "read every page from --cursor on")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	if *limit < 0 || *limit > 500 {
		return errors.New("ledger: --limit must be from 1 to 500")
	}
	cl, ctx, cancel := c.client(ctx)
	defer cancel()
	opts := client.LedgerOptions{Type: *typ, Limit: *limit, Cursor: *cursor}
	rows, next, done, err := listRows(c, *all, cl.LedgerEntries(ctx, c.ref(), opts),
		func() (*client.Page[client.LedgerEntry], error) { return cl.Ledger(ctx, c.ref(), opts) },
		func(e client.LedgerEntry) json.RawMessage { return e.Raw })
	if done || err != nil {
		return err
	}
	w := c.table()
	u := c.unit()
	fmt.Fprintf(w, "CREATED\tTYPE\tDELTA (%s)\tBALANCE AFTER (%s)\tREFERENCE\tBLOCK\tID\n", u, u)
	for _, e := range rows {
		ref := "-"
		if e.ReferenceType != "" {
			ref = e.ReferenceType + " " + e.ReferenceID
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.CreatedAt), e.Type, c.amount(e.Delta), c.amount(e.BalanceAfter),
			ref, or(e.BlockID), e.ID)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stderr, "more entries: add --cursor %s (or --all)\n", next)
	}
	return nil
}

func usageCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("usage", `usage: creditd usage (--customer-id ID | --external-id EXT) --metric KEY --units N [flags]

Records a usage event (POST /v1/usage): the metric's active metering rule
prices --units, and the cost is debited from the customer's live blocks in
burn order. A cost above the effective balance is refused (insufficient-
credits, with what was required and available) and nothing is written. The
event runs under --idempotency-key (a new one, printed, when not given): a
rerun with the same key answers the first event again (duplicate: true)
instead of charging twice. --json prints the API's usage answer.`, getenv, stdout, stderr)
	c.customerFlags(createsCustomer + " when the event is accepted")
	c.writeFlags()
	metric := c.fs.String("metric", "", "the billable metric's key (required)")
	units := c.fs.Int64("units", 0, "units used, at least 1 (required)")
	metadata := c.fs.String("metadata", "", "a JSON object kept with the event")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	switch {
	case *metric == "":
		return errors.New("usage: --metric is required")
	case *units < 1:
		return errors.New("usage: --units must be at least 1")
	}
	req := client.UsageRequest{WriteOptions: client.WriteOptions{IdempotencyKey: c.idemKey},
		CustomerID: c.customerID, ExternalCustomerID: c.externalID, BillableMetricKey: *metric, Units: *units}
	if meta, err := jsonObject("--metadata", *metadata); err != nil {
		return fmt.Errorf("usage: %w", err)
	} else if meta != nil {
		req.Metadata = meta
	}
	cl, ctx, cancel := c.client(ctx)
	defer cancel()
	res, err := cl.Usage(ctx, req)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(res.Raw)
	}
	w := c.table()
	u := c.unit()
	status := res.Status
	if res.Duplicate {
		status += " (duplicate: this key's event was recorded before; nothing more was charged)"
	}
	fmt.Fprintf(w, "event\t%s\n", res.EventID)
	fmt.Fprintf(w, "status\t%s\n", status)
	fmt.Fprintf(w, "cost\t%s %s\n", c.amount(res.EstimatedCost), u)
	fmt.Fprintf(w, "balance after\t%s %s\n", c.amount(res.BalanceAfter), u)
	fmt.Fprintf(w, "effective\t%s %s\n", c.amount(res.EffectiveBalance), u)
	fmt.Fprintf(w, "idempotency key\t%s\n", res.IdempotencyKey)
	if err := w.Flush(); err != nil || len(res.Breakdown) == 0 {
		return err
	}
	fmt.Fprintln(stdout)
	w = c.table()
	fmt.Fprintf(w, "BLOCK\tDEBITED (%s)\tPRIORITY\tEXPIRES\tSOURCE\n", u)
	for _, d := range res.Breakdown {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", d.BlockID, c.amount(d.Amount), d.Priority, expiry(d.ExpiresAt), d.Source)
	}
	return w.Flush()
}

// customerText is a customer's id, with its external id when it has one.
func customerText(id, externalID string) string {
	if externalID == "" {
		return id
	}
	return fmt.Sprintf("%s (external id %s)", id, externalID)
}
