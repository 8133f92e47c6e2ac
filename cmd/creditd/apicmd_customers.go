package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/creditd/creditd/client"
)

const customersUsage = `usage:
  creditd customers list [--limit N] [--cursor C] [--all] [--json] [--url URL] [--key KEY]
  creditd customers get (--customer-id ID | --external-id EXT) [--json] [--url URL] [--key KEY]
(creditd customers list --help, creditd customers get --help: every flag)`

// customers reads the customers of the key's tenant and environment over
// the API.
func customersCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("customers: a subcommand is required\n%s", customersUsage)
	}
	switch args[0] {
	case "list":
		return customersList(ctx, args[1:], getenv, stdout, stderr)
	case "get":
		return customersGet(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, customersUsage)
		return nil
	}
	return fmt.Errorf("unknown customers command %q\n%s", args[0], customersUsage)
}

func customersList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("customers list", `usage: creditd customers list [--limit N] [--cursor C] [--all] [flags]

Lists the customers of the key's tenant and environment, in creation order:
one page of --limit (the server's 50 by default), then the cursor of the next
page on stderr; --all reads every page. --json prints the API's list
({"data": [...], "pagination": {...}}; with --all, every page's data in one).`, getenv, stdout, stderr)
	limit := c.fs.Int("limit", 0, "customers per page, 1 to 500 (0: the server's default, 50)")
	cursor := c.fs.String("cursor", "", "start after this cursor, from a page before (its pagination.next_cursor)")
	all := c.fs.Bool("all", false, "read every page from --cursor on")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	if *limit < 0 || *limit > 500 {
		return fmt.Errorf("customers list: --limit must be from 1 to 500")
	}
	cl, ctx, cancel := c.client(ctx)
	defer cancel()

	opts := client.ListOptions{Limit: *limit, Cursor: *cursor}
	rows, next, done, err := listRows(c, *all, cl.Customers(ctx, opts),
		func() (*client.Page[client.Customer], error) { return cl.ListCustomers(ctx, opts) },
		func(cu client.Customer) json.RawMessage { return cu.Raw })
	if done || err != nil {
		return err
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tEXTERNAL ID\tDISPLAY NAME\tCREATED")
	for _, cu := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cu.ID, or(cu.ExternalID), or(cu.DisplayName), stamp(cu.CreatedAt))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stderr, "more customers: creditd customers list --cursor %s (or --all)\n", next)
	}
	return nil
}

func customersGet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newAPICmd("customers get", `usage: creditd customers get (--customer-id ID | --external-id EXT) [flags]

Shows one customer; an unknown one is an error (not-found). --json prints the
API's customer object.`, getenv, stdout, stderr)
	c.customerFlags("the customer's external id, your own id for it")
	if help, err := c.parse(args); help || err != nil {
		return err
	}
	cl, ctx, cancel := c.client(ctx)
	defer cancel()
	cu, err := cl.GetCustomer(ctx, c.ref())
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(cu.Raw)
	}
	w := c.table()
	fmt.Fprintf(w, "id\t%s\n", cu.ID)
	fmt.Fprintf(w, "external id\t%s\n", or(cu.ExternalID))
	fmt.Fprintf(w, "display name\t%s\n", or(cu.DisplayName))
	fmt.Fprintf(w, "metadata\t%s\n", metadataText(cu.Metadata))
	fmt.Fprintf(w, "created\t%s\n", stamp(cu.CreatedAt))
	return w.Flush()
}

// metadataText is metadata on one line, so that it cannot break a table:
// "-" for none.
func metadataText(m json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, m) != nil || b.String() == "{}" || b.String() == "null" || b.Len() == 0 {
		return "-"
	}
	return b.String()
}
