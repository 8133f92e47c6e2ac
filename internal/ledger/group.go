package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// plan is what a command names before it runs: the customers it touches and
// the idempotency keys beyond its request's own (a batch's events).
type plan struct {
	refs []CustomerRef
	keys []string
}

func (p *plan) customer(ref CustomerRef) { p.refs = append(p.refs, ref) }
func (p *plan) key(k string)             { p.keys = append(p.keys, k) }

type custKey struct {
	scope store.Scope
	id    string
}

type idemKey struct {
	scope store.Scope
	key   string
}

type ruleKey struct {
	scope  store.Scope
	metric string
}

// group is one transaction's state: every account its commands touch,
// locked and loaded once, the idempotency records of its keys, and the
// metering rules it priced with. Commands change the accounts in memory;
// flush writes what the accepted ones changed.
type group struct {
	q        store.Q
	now      time.Time
	accounts map[custKey]*account // by customer id
	external map[custKey]*account // by external id, new customers included
	records  map[idemKey]store.IdempotencyRecord
	rules    map[ruleKey]store.Rule
	plans    map[planKey]store.Plan
	orders   map[orderKey]store.Purchase // purchases made in this group
	// transactions are the linked transactions committed in this group.
	transactions map[store.Scope][]store.Transaction
	touched      []*account // accounts with accepted changes, in first-change order
	idem         map[store.Scope][]store.IdempotencyRecord
	// encode makes webhook events (nil: none are recorded); configs are
	// the scopes' settings, read once per group; events counts those written.
	encode  EventEncoder
	configs map[store.Scope]*store.TenantConfig
	events  int
}

func newGroup(q store.Q, now time.Time) *group {
	return &group{
		q: q, now: now,
		accounts: make(map[custKey]*account), external: make(map[custKey]*account),
		records: make(map[idemKey]store.IdempotencyRecord), rules: make(map[ruleKey]store.Rule),
		plans: make(map[planKey]store.Plan), orders: make(map[orderKey]store.Purchase),
		transactions: make(map[store.Scope][]store.Transaction),
		idem:         make(map[store.Scope][]store.IdempotencyRecord),
		configs:      make(map[store.Scope]*store.TenantConfig),
	}
}

// run takes the group's locks, loads its rows, applies each command in
// order and writes the result. An error returned here is the database's
// and rolls the whole group back; a command's rejection is in its outcome.
func (g *group) run(ctx context.Context, pending []*pending) ([]outcome, error) {
	if err := g.load(ctx, pending); err != nil {
		return nil, err
	}
	outs := make([]outcome, len(pending))
	for i, p := range pending {
		resp, err := g.execute(ctx, p.req, p.cmd)
		if err != nil && credit.ErrorCode(err) == "" {
			return nil, err
		}
		outs[i] = outcome{resp: resp, err: err}
	}
	return outs, g.flush(ctx)
}

// execute runs one command under its request's key: the stored answer if
// there is one, else the command, whose answer is stored when it changed
// something.
func (g *group) execute(ctx context.Context, req Request, cmd Command) (Response, error) {
	if req.Key != "" {
		if rec, ok := g.records[idemKey{req.Scope, req.Key}]; ok {
			resp, _, err := replayOf(req, rec)
			return resp, err
		}
	}
	resp, changed, err := cmd.apply(ctx, g, req)
	if err != nil {
		return Response{}, err
	}
	if changed && req.Key != "" && resp.Status < 300 {
		g.remember(req.Scope, store.IdempotencyRecord{Key: req.Key, Method: req.Method, Path: req.Path, Status: resp.Status, Body: resp.Body})
	}
	return resp, nil
}

// remember stores an answer for replay, visible at once to the group's
// later commands.
func (g *group) remember(scope store.Scope, rec store.IdempotencyRecord) {
	rec.CreatedAt = g.now
	g.records[idemKey{scope, rec.Key}] = rec
	g.idem[scope] = append(g.idem[scope], rec)
}

// load takes the locks in the one global order — every idempotency key,
// then every account — and reads the rows the commands will need.
func (g *group) load(ctx context.Context, pending []*pending) error {
	var keys []store.IdemKey
	byScope := make(map[store.Scope]*plan)
	var scopes []store.Scope
	for _, p := range pending {
		var pl plan
		p.cmd.plan(&pl)
		if p.req.Key != "" {
			keys = append(keys, store.IdemKey{Scope: p.req.Scope, Key: p.req.Key})
		}
		for _, k := range pl.keys {
			keys = append(keys, store.IdemKey{Scope: p.req.Scope, Key: k})
		}
		sp, ok := byScope[p.req.Scope]
		if !ok {
			sp = &plan{}
			byScope[p.req.Scope] = sp
			scopes = append(scopes, p.req.Scope)
		}
		sp.refs = append(sp.refs, pl.refs...)
	}
	// The key locks and stored answers, the webhook settings and the
	// external ids: one call, one round trip where the backend pipelines.
	reads := store.GroupReads{Keys: keys, Since: g.now.Add(-IdempotencyTTL), Externals: make(map[store.Scope][]string)}
	// Whether each scope records webhook events is known before any change
	// is noted, so that a scope without a webhook notes nothing.
	if g.encode != nil {
		reads.Configs = scopes
	}
	byID := make(map[store.Scope][]string, len(scopes))
	for _, scope := range scopes {
		for _, r := range byScope[scope].refs {
			switch {
			case r.ExternalID != "":
				reads.Externals[scope] = append(reads.Externals[scope], r.ExternalID)
				// An external id shaped like a customer id may be one: the
				// customer it names must be known before a new customer may
				// take it as an external id (see account).
				if ids.IsUUID(r.ExternalID) {
					byID[scope] = append(byID[scope], r.ExternalID)
				}
			case r.Lenient:
				byID[scope] = append(byID[scope], r.ID)
				reads.Externals[scope] = append(reads.Externals[scope], r.ID)
			default:
				byID[scope] = append(byID[scope], r.ID)
			}
		}
	}
	got, err := g.q.GroupPrepare(ctx, reads)
	if err != nil {
		return err
	}
	for _, r := range got.Records {
		g.records[idemKey{r.Scope, r.Key}] = r.IdempotencyRecord
	}
	if g.encode != nil {
		for _, scope := range scopes {
			g.setWebhookConfig(scope, got.Configs[scope])
		}
	}
	var load []store.CustomerKey
	for _, scope := range scopes {
		for _, id := range got.IDs[scope] {
			byID[scope] = append(byID[scope], id)
		}
		for _, id := range byID[scope] {
			load = append(load, store.CustomerKey{Scope: scope, CustomerID: id})
		}
	}
	if len(load) == 0 {
		return nil
	}
	rows, err := g.q.AccountsLoad(ctx, load)
	if err != nil {
		return err
	}
	for _, row := range rows {
		g.add(row)
	}
	return nil
}

// add makes a loaded account the group's, recording its due expiries: the
// first write that touches a customer writes its pending expire entries,
// before its own change. They are written only with such a change.
func (g *group) add(row store.AccountRow) *account {
	acc := &account{scope: row.Scope, customer: row.Customer, state: credit.State{Account: row.Customer.Account},
		sources: make(map[string]string, len(row.Blocks)), holds: row.Holds,
		newHolds: make(map[string]bool), settled: make(map[string]bool)}
	for _, b := range row.Blocks {
		acc.state.Blocks = append(acc.state.Blocks, b.Block)
		acc.sources[b.ID] = b.Source
	}
	acc.startEffective = credit.Effective(row.Customer.Account.Balance, row.Customer.Account.Reserved)
	if expired := acc.state.ExpireDue(g.now); len(expired) > 0 {
		acc.stage(g, expired, entryRef{Type: "block"})
		for _, e := range expired {
			n := notice{event: &Event{Type: EventCreditsExpired, Expired: &ExpiredCredits{BlockID: e.BlockID, Amount: -e.Delta}},
				customer: acc.customer, effective: credit.Effective(e.BalanceAfter, acc.state.Account.Reserved)}
			n.customer.Account = acc.state.Account
			n.customer.Account.Balance = e.BalanceAfter
			acc.noteAs(g, n)
		}
	}
	acc.expireHolds(g)
	g.accounts[custKey{row.Scope, row.Customer.ID}] = acc
	if row.Customer.ExternalID != "" {
		g.external[custKey{row.Scope, row.Customer.ExternalID}] = acc
	}
	return acc
}

// account returns the locked account ref names. An unknown customer named
// by external id is a new, empty account when create is true (it is written
// only if a command changes it); otherwise it is not-found.
func (g *group) account(scope store.Scope, ref CustomerRef, create bool) (*account, error) {
	var acc *account
	switch {
	case ref.ExternalID != "":
		acc = g.external[custKey{scope, ref.ExternalID}]
	default:
		acc = g.accounts[custKey{scope, ref.ID}]
		if acc == nil && ref.Lenient {
			acc = g.external[custKey{scope, ref.ID}]
		}
	}
	if acc != nil {
		return acc, nil
	}
	if create && ref.ExternalID != "" {
		// /v1/customers/{customer_id} takes an id or, failing that, an
		// external id; a customer whose external id is another's id would
		// make that path name two customers.
		if other := g.accounts[custKey{scope, ref.ExternalID}]; other != nil {
			e := credit.Errorf(credit.EConflict, "external_id %q is the id of another customer; choose another external id", ref.ExternalID)
			e.Extra = map[string]any{"customer_id": other.customer.ID}
			return nil, e
		}
		acc = newAccount(scope, ref.ExternalID, g.now)
		g.external[custKey{scope, ref.ExternalID}] = acc
		g.accounts[custKey{scope, acc.customer.ID}] = acc
		return acc, nil
	}
	return nil, credit.Errorf(credit.ENotFound, "no customer with %s", ref)
}

// rule finds the price of a metric, once per group: 404 for an unknown
// metric, 422 for a metric without an active rule.
func (g *group) rule(ctx context.Context, scope store.Scope, metric string) (store.Rule, error) {
	if r, ok := g.rules[ruleKey{scope, metric}]; ok {
		return r, nil
	}
	r, err := activeRule(ctx, g.q, scope, metric)
	if err != nil {
		return store.Rule{}, err
	}
	g.rules[ruleKey{scope, metric}] = r
	return r, nil
}

// flush writes what the group's accepted commands changed: per scope, the
// new customers, account totals, blocks, ledger entries, usage events and
// stored answers.
func (g *group) flush(ctx context.Context) error {
	writes := make(map[store.Scope]*store.Writes)
	var order []store.Scope
	w := func(s store.Scope) *store.Writes {
		if w, ok := writes[s]; ok {
			return w
		}
		w := &store.Writes{Scope: s, Lapsed: g.now.Add(-IdempotencyTTL)}
		writes[s] = w
		order = append(order, s)
		return w
	}
	for _, acc := range g.touched {
		acc.writes(w(acc.scope))
		cfg := g.configs[acc.scope]
		if len(acc.notices) == 0 || cfg == nil {
			continue
		}
		evs, err := acc.events(g, cfg, g.encode)
		if err != nil {
			return err
		}
		w(acc.scope).Events = append(w(acc.scope).Events, evs...)
		g.events += len(evs)
	}
	for s, txs := range g.transactions {
		w(s).Transactions = txs
	}
	for s, recs := range g.idem {
		w(s).Idempotency = recs
	}
	for _, s := range order {
		if err := g.q.WritesApply(ctx, writes[s]); err != nil {
			return fmt.Errorf("write group: %w", err)
		}
	}
	return nil
}
