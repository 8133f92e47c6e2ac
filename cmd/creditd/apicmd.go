package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/creditd/creditd/client"
)

// The operator commands (customers, grant, balance, ledger, usage) talk to
// a running server over its HTTP API with package client, unlike keys and
// plans, which open the database: they need only a URL and a key, work
// against any instance, and go through the same checks as every caller.

const defaultURL = "http://127.0.0.1:8080"

// apiCmd is what every API command shares: its flags, its output, and the
// client they configure.
type apiCmd struct {
	name  string // "customers list", for messages
	about string // the --help text above the flags
	fs    *flag.FlagSet

	url, key string
	envKey   string // CREDITD_API_KEY, when --key is not given
	json     bool
	credits  bool
	timeout  time.Duration

	// The customer flags, for the commands that take one.
	customerID, externalID string
	hasCustomer            bool

	idemKey string // writes: the key of the call, drawn when the flag is empty

	stdout, stderr io.Writer
}

func newAPICmd(name, about string, getenv func(string) string, stdout, stderr io.Writer) *apiCmd {
	c := &apiCmd{name: name, about: about, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors are returned, and --help printed to stdout, by parse:
	// the flag package would print them, then main again.
	c.fs.SetOutput(io.Discard)
	url := getenv("CREDITD_URL")
	if url == "" {
		url = defaultURL
	}
	c.fs.StringVar(&c.url, "url", url, "base URL of the server (CREDITD_URL)")
	// The key's default is read after parsing, so that --help never prints
	// the secret.
	c.envKey = getenv("CREDITD_API_KEY")
	c.fs.StringVar(&c.key, "key", "", "API key, qs_test_… or qs_live_… (default: CREDITD_API_KEY); required")
	c.fs.BoolVar(&c.json, "json", false, "print the API's JSON answer instead of a table")
	c.fs.BoolVar(&c.credits, "credits", false, "show amounts, and read --amount, in credits (1 credit = 1,000 mc) as exact decimals instead of millicredits")
	c.fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long, retries included")
	return c
}

// customerFlags adds --customer-id and --external-id, of which a command
// needs exactly one.
func (c *apiCmd) customerFlags(externalHelp string) {
	c.hasCustomer = true
	c.fs.StringVar(&c.customerID, "customer-id", "", "the customer's id (a value that is no customer's id is looked up as an external id)")
	c.fs.StringVar(&c.externalID, "external-id", "", externalHelp)
}

// writeFlags adds --idempotency-key, for commands that change something.
func (c *apiCmd) writeFlags() {
	c.fs.StringVar(&c.idemKey, "idempotency-key", "",
		"key of this operation: a rerun with the same key is applied once (default: a new random key, printed)")
}

// parse reads the flags. help is true when --help was asked for and
// printed; the command then does nothing else.
func (c *apiCmd) parse(args []string) (help bool, err error) {
	err = c.fs.Parse(args)
	if c.key == "" {
		c.key = c.envKey
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printHelp(c.stdout)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w (creditd %s --help lists the flags)", c.name, err, c.name)
	case c.fs.NArg() > 0:
		return false, fmt.Errorf("%s: unexpected argument %q (creditd %s --help lists the flags)", c.name, c.fs.Arg(0), c.name)
	case c.key == "":
		return false, fmt.Errorf("%s: an API key is required: --key or CREDITD_API_KEY", c.name)
	case c.timeout <= 0:
		return false, fmt.Errorf("%s: --timeout must be positive", c.name)
	}
	if c.hasCustomer && (c.customerID == "") == (c.externalID == "") {
		return false, fmt.Errorf("%s: name the customer with exactly one of --customer-id and --external-id", c.name)
	}
	if c.fs.Lookup("idempotency-key") != nil && c.idemKey == "" {
		c.idemKey = client.NewIdempotencyKey()
	}
	return false, nil
}

func (c *apiCmd) printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", c.about)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// client is the API client the flags describe, and the context of the call.
func (c *apiCmd) client(ctx context.Context) (*client.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return client.New(c.url, c.key, client.WithUserAgent("creditd-cli")), ctx, cancel
}

// ref is the customer the flags name, for paths.
func (c *apiCmd) ref() client.CustomerRef {
	if c.externalID != "" {
		return client.ByExternalID(c.externalID)
	}
	return client.ByID(c.customerID)
}

// fail words an error of the API for an operator: the problem's detail and
// code, flags instead of JSON fields, and for a write whose outcome is
// unknown, how to finish it safely.
func (c *apiCmd) fail(err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		msg := fmt.Sprintf("%s: %v", c.name, err)
		if c.idemKey != "" {
			msg += fmt.Sprintf("\nthe server may or may not have applied it: run the same command with --idempotency-key %s to apply it exactly once", c.idemKey)
		}
		return errors.New(msg)
	}
	detail := e.Detail
	if len(e.Fields) > 0 {
		parts := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			parts[i] = fieldFlag(f.Field) + " " + f.Message
		}
		detail = strings.Join(parts, "; ")
	}
	if detail == "" {
		detail = strings.ToLower(e.Title)
	}
	msg := fmt.Sprintf("%s: %s (%s, HTTP %d)", c.name, detail, e.Code, e.Status)
	if e.Code == "" {
		msg = fmt.Sprintf("%s: %s (HTTP %d)", c.name, detail, e.Status)
	}
	switch {
	case e.Code == client.CodeInsufficientCredits && c.credits:
		msg += fmt.Sprintf("\nrequired %s, available %s credits", formatCredits(e.Required), formatCredits(e.Available))
	case e.Status == 401:
		msg += "\ncheck --key or CREDITD_API_KEY"
	case e.Status >= 500 && c.idemKey != "":
		msg += fmt.Sprintf("\nthe server may or may not have applied it: run the same command with --idempotency-key %s to apply it exactly once", c.idemKey)
	}
	return errors.New(msg)
}

// fieldFlags are the flags of the API's JSON fields, for 400s.
var fieldFlags = map[string]string{
	"customer_id": "--customer-id", "external_customer_id": "--external-id", "external_id": "--external-id",
	"credits": "--amount", "priority": "--priority", "expires_at": "--expires-at", "source": "--source",
	"reason": "--reason", "price_paid": "--price-paid", "currency": "--currency",
	"external_payment_id": "--external-payment-id", "metadata": "--metadata", "billable_metric_key": "--metric",
	"units": "--units", "limit": "--limit", "cursor": "--cursor", "type": "--type", "Idempotency-Key": "--idempotency-key",
}

func fieldFlag(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	return field
}

// amount formats millicredits in the unit the flags chose.
func (c *apiCmd) amount(mc int64) string {
	if c.credits {
		return formatCredits(mc)
	}
	return strconv.FormatInt(mc, 10)
}

// unit names that unit, for headers and labels.
func (c *apiCmd) unit() string {
	if c.credits {
		return "credits"
	}
	return "mc"
}

// formatCredits writes millicredits as credits with three decimals, by
// integer arithmetic: -1500 is "-1.500". Every int64 has an exact form.
func formatCredits(mc int64) string {
	sign := ""
	u := uint64(mc)
	if mc < 0 {
		sign, u = "-", -u // two's complement: exact for math.MinInt64 too
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/1000, u%1000)
}

// parseCredits reads a decimal number of credits ("1.5", "-2", "0.001") as
// millicredits, exactly: more than three decimals, or more than an int64
// holds, is an error rather than a rounding.
func parseCredits(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a number of credits with at most 3 decimals (1 credit = 1,000 mc)", s)
	digits, neg := strings.CutPrefix(s, "-")
	if !neg {
		digits = strings.TrimPrefix(digits, "+")
	}
	whole, frac, dot := strings.Cut(digits, ".")
	if whole == "" && frac == "" || (dot && frac == "") || len(frac) > 3 {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	frac += strings.Repeat("0", 3-len(frac))
	w := uint64(0)
	if whole != "" {
		var err error
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil || w > math.MaxInt64/1000 {
			return 0, fmt.Errorf("%q credits is more than an amount can hold", s)
		}
	}
	f, _ := strconv.ParseUint(frac, 10, 64)
	v := w*1000 + f // < 2⁶⁴: w ≤ MaxInt64/1000
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%q credits is more than an amount can hold", s)
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// table is an aligned table on the command's stdout.
func (c *apiCmd) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
}

// printJSON prints an answer as the API sent it, one object a line.
func (c *apiCmd) printJSON(raw json.RawMessage) error {
	_, err := fmt.Fprintf(c.stdout, "%s\n", bytes.TrimSpace(raw))
	return err
}

// listRows reads a list command's rows: one page (one), or with all every
// page from the cursor on (each). With --json it prints what it read and
// says done. next is the cursor of the page after one that has more.
func listRows[T any](c *apiCmd, all bool, each iter.Seq2[T, error], one func() (*client.Page[T], error),
	raw func(T) json.RawMessage) (rows []T, next string, done bool, err error) {
	if all {
		var raws []json.RawMessage
		for it, err := range each {
			if err != nil {
				return nil, "", true, c.fail(err)
			}
			rows, raws = append(rows, it), append(raws, raw(it))
		}
		if c.json {
			return nil, "", true, c.printPages(raws)
		}
		return rows, "", false, nil
	}
	page, err := one()
	if err != nil {
		return nil, "", true, c.fail(err)
	}
	if c.json {
		return nil, "", true, c.printJSON(page.Raw)
	}
	if page.Pagination.HasMore {
		next = page.Pagination.NextCursor
	}
	return page.Data, next, false, nil
}

// printPages prints the items of several pages as one list envelope, the
// API's shape with nothing more to fetch.
func (c *apiCmd) printPages(items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	type pagination struct {
		HasMore    bool    `json:"has_more"`
		NextCursor *string `json:"next_cursor"` // null: nothing more
	}
	b, err := json.Marshal(struct {
		Data       []json.RawMessage `json:"data"`
		Pagination pagination        `json:"pagination"`
	}{Data: items})
	if err != nil {
		return err
	}
	return c.printJSON(b)
}

// or is v, or "-" for an empty cell.
func or(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return stamp(*t)
}

// jsonObject reads --metadata: a JSON object, checked here so that a typo
// is named as the flag's.
func jsonObject(flagName, v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s must be a JSON object such as '{\"order_id\":\"o-1\"}'", flagName)
	}
	return json.RawMessage(v), nil
}
