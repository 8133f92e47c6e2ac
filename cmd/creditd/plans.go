package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

const plansUsage = `usage:
  creditd plans create --key K --name N --price MC --credits MC [--priority P]
                       [--duration D] [--pay-from-max-priority P] --env test|live
  creditd plans list --env test|live
  creditd plans archive --key K --env test|live`

// plans manages the plan catalog on the database directly, as keys does,
// so that an operator needs no API key to set prices. Writes go through
// ledger.Service like the API's, under a fresh Idempotency-Key: the same
// validation, the same transaction, and a running server sees the plan at
// once.
func plans(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(plansUsage)
	}
	switch args[0] {
	case "create":
		return plansCreate(ctx, args[1:], getenv, stdout, stderr)
	case "list":
		return plansList(ctx, args[1:], getenv, stdout, stderr)
	case "archive":
		return plansArchive(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("unknown plans command %q\n%s", args[0], plansUsage)
}

// catalog is the plan commands' view of the database: the service and the
// scope of the server's own tenant in one environment.
type catalog struct {
	svc   *ledger.Service
	scope store.Scope
	close func()
}

// planFlags returns the flag set every plan command shares (--env and the
// database's configuration), and a func that opens the catalog once the
// flags are parsed.
func planFlags(name string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, func(ctx context.Context) (*catalog, error)) {
	var c config
	fs := c.flags("plans "+name, getenv, stderr)
	env := fs.String("env", "", "environment of the catalog: test or live (required: the two catalogs are separate)")
	return fs, func(ctx context.Context) (*catalog, error) {
		if *env != apikey.Test && *env != apikey.Live {
			return nil, fmt.Errorf("--env must be test or live, not %q", *env)
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
		st, err := openStore(ctx, c.databaseURL)
		if err != nil {
			return nil, err
		}
		var t store.Tenant
		err = st.Read(ctx, func(q store.Q) error {
			var err error
			t, err = q.TenantFirst(ctx)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			err = errors.New("the database has no tenant yet: start creditd serve once, or run creditd keys create")
		}
		if err != nil {
			st.Close()
			return nil, err
		}
		svc := ledger.New(st, time.Now, ledger.WithTimeout(c.dbTimeout))
		return &catalog{svc: svc, scope: store.Scope{TenantID: t.ID, Env: *env}, close: func() {
			svc.Close()
			st.Close()
		}}, nil
	}
}

// execute runs cmd as the API would run a POST to path, under a key no one
// else holds.
func (cat *catalog) execute(ctx context.Context, path string, cmd ledger.Command) error {
	req := ledger.Request{Scope: cat.scope, Key: "creditd-cli:" + ids.UUID(), Method: http.MethodPost, Path: path}
	_, err := cat.svc.Execute(ctx, req, func() (ledger.Command, error) { return cmd, nil })
	return flagError(err)
}

func plansCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, open := planFlags("create", getenv, stderr)
	key := fs.String("key", "", "the plan's key, which purchases name (required)")
	name := fs.String("name", "", "the plan's name (required)")
	price := fs.Int64("price", 0, "millicredits a purchase debits (required; 0 for a free plan)")
	credits := fs.Int64("credits", 0, "millicredits of the plan's block (required)")
	priority := fs.Int("priority", ledger.DefaultPlanPriority, "the plan block's priority, 0 to 100")
	duration := fs.String("duration", "none", "the plan block's life from the purchase: a Go duration (1h, 168h) or seconds; none: never expires")
	payFrom := fs.Int("pay-from-max-priority", 0, "the highest block priority that may pay for the plan, 0 to 100")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range []string{"key", "name", "price", "credits"} {
		if !set[f] {
			return fmt.Errorf("--%s is required\n%s", f, plansUsage)
		}
	}
	seconds, err := durationSeconds(*duration)
	if err != nil {
		return err
	}
	cat, err := open(ctx)
	if err != nil {
		return err
	}
	defer cat.close()
	var p store.Plan
	in := ledger.PlanInput{Key: *key, Name: *name, Price: *price, Credits: *credits, Priority: priority,
		DurationSeconds: seconds, PayFromMaxPriority: payFrom}
	encode := httpapi.PlanEncoder(http.StatusCreated)
	err = cat.execute(ctx, "/v1/plans", ledger.CreatePlan{In: in, Encode: func(v store.Plan) (int, []byte, error) {
		p = v
		return encode(v)
	}})
	if err != nil {
		return fmt.Errorf("create plan: %w", err)
	}
	fmt.Fprintf(stdout, "created plan %s (%s) in %s: %s\n", p.Key, p.ID, cat.scope.Env, describePlan(p))
	return nil
}

func plansArchive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, open := planFlags("archive", getenv, stderr)
	key := fs.String("key", "", "the key of the plan to take out of sale (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return fmt.Errorf("--key is required\n%s", plansUsage)
	}
	cat, err := open(ctx)
	if err != nil {
		return err
	}
	defer cat.close()
	var p store.Plan
	encode := httpapi.PlanEncoder(http.StatusOK)
	err = cat.execute(ctx, "/v1/plans/"+*key+"/archive", ledger.ArchivePlan{Key: *key, Encode: func(v store.Plan) (int, []byte, error) {
		p = v
		return encode(v)
	}})
	if err != nil {
		return fmt.Errorf("archive plan: %w", err)
	}
	fmt.Fprintf(stdout, "archived plan %s (%s) in %s: it can no longer be bought; orders bought before still answer their purchase\n",
		p.Key, p.ID, cat.scope.Env)
	return nil
}

func plansList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, open := planFlags("list", getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cat, err := open(ctx)
	if err != nil {
		return err
	}
	defer cat.close()
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tNAME\tPRICE\tCREDITS\tPRIORITY\tDURATION\tPAY FROM ≤\tACTIVE\tID")
	const page = 500
	for after := ""; ; {
		rows, err := cat.svc.Plans(ctx, cat.scope, store.Page{After: after, Limit: page})
		if err != nil {
			return fmt.Errorf("list plans: %w", err)
		}
		for _, p := range rows {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%t\t%s\n", p.Key, p.Name, p.Price, p.Credits, p.Priority,
				lifetime(p.DurationSeconds), p.PayFromMaxPriority, p.Active, p.ID)
		}
		if len(rows) < page {
			break
		}
		after = rows[len(rows)-1].ID
	}
	return w.Flush()
}

// durationSeconds reads --duration: a Go duration or whole seconds, or none
// for credits that never expire.
func durationSeconds(v string) (int64, error) {
	if v == "" || v == "none" {
		return 0, nil
	}
	seconds, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil {
			return 0, fmt.Errorf("--duration %q is neither a Go duration (90m, 24h, 168h), a number of seconds, nor none", v)
		}
		if d%time.Second != 0 {
			return 0, fmt.Errorf("--duration %q is not a whole number of seconds", v)
		}
		seconds = int64(d / time.Second)
	}
	// 0 is the store's "no expiry": said as none, never as a zero length.
	if seconds < ledger.MinPlanDuration || seconds > ledger.MaxPlanDuration {
		return 0, fmt.Errorf("--duration must be between %v and %v (%d to %d seconds), or none for credits that never expire",
			time.Duration(ledger.MinPlanDuration)*time.Second, time.Duration(ledger.MaxPlanDuration)*time.Second,
			ledger.MinPlanDuration, ledger.MaxPlanDuration)
	}
	return seconds, nil
}

func lifetime(seconds int64) string {
	if seconds == 0 {
		return "none"
	}
	return (time.Duration(seconds) * time.Second).String()
}

func describePlan(p store.Plan) string {
	return fmt.Sprintf("price %d mc, credits %d mc at priority %d, lifetime %s, paid from blocks of priority ≤ %d",
		p.Price, p.Credits, p.Priority, lifetime(p.DurationSeconds), p.PayFromMaxPriority)
}

// flagNames are the plan fields' flags, for errors that name a field.
var flagNames = map[string]string{
	"key": "--key", "name": "--name", "price": "--price", "credits": "--credits", "priority": "--priority",
	"duration_seconds": "--duration", "pay_from_max_priority": "--pay-from-max-priority",
}

// flagError words an invalid-request error in flags instead of the API's
// field names.
func flagError(err error) error {
	var ce *credit.Error
	if !errors.As(err, &ce) || len(ce.Fields) == 0 {
		return err
	}
	parts := make([]string, 0, len(ce.Fields))
	for _, f := range ce.Fields {
		name := f.Field
		if fl, ok := flagNames[name]; ok {
			name = fl
		}
		parts = append(parts, name+" "+f.Message)
	}
	return fmt.Errorf("%s: %s", ce.Message, strings.Join(parts, "; "))
}
