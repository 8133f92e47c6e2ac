package ledger

import (
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The webhook event types (docs/api.md, "Webhooks").
const (
	EventCreditsGranted       = "credits.granted"
	EventCreditsConsumed      = "credits.consumed"
	EventCreditsExpired       = "credits.expired"
	EventBalanceLow           = "balance.low"
	EventBalanceDepleted      = "balance.depleted"
	EventReservationCommitted = "reservation.committed"
	EventReservationReleased  = "reservation.released"
	EventReservationExpired   = "reservation.expired"
	EventPlanPurchased        = "plan.purchased"
	EventTransactionCommitted = "transaction.committed"
)

// Event is a change a webhook tells about, before it is encoded: the
// customer as the change left it and, by Type, what changed.
type Event struct {
	ID       string
	Type     string
	Time     time.Time
	Customer store.Customer // after the change
	// EffectiveBalance is what the customer could spend right after the change.
	EffectiveBalance int64

	Block       *store.Block       // credits.granted
	Usage       *UsageResult       // credits.consumed: the usage event and its per-block debits
	Expired     *ExpiredCredits    // credits.expired
	Reservation *store.Reservation // reservation.*
	Purchase    *store.Purchase    // plan.purchased
	Transaction *store.Transaction // transaction.committed: its stored answer
	Threshold   int64              // balance.low: the threshold crossed
}

// ExpiredCredits is what one block lost when it expired.
type ExpiredCredits struct {
	BlockID string
	Amount  int64
}

// EventEncoder makes an event's body, the bytes every delivery sends. The
// wire shapes belong to the HTTP layer, which gives the service its encoder
// (WithWebhooks).
type EventEncoder func(Event) ([]byte, error)

// WithWebhooks makes the service record webhook events, encoded by enc, for
// every scope that has a webhook URL and secret configured (as the change
// finds them), in the transaction of the change that causes them. notify,
// when set, is called after a commit that recorded events (the
// dispatcher's wake-up). Without this option no events are recorded.
func WithWebhooks(enc EventEncoder, notify func()) Option {
	return func(s *Service) {
		s.encodeEvent, s.notifyEvents = enc, notify
	}
}

// notice is a change a webhook may tell about, noted as it happens: an
// event of the catalog, or only a move of the effective balance (a hold
// placed), which may cross the low-balance threshold. Notices become events
// at flush, and only for accounts a command changed, like ledger entries.
type notice struct {
	event     *Event         // nil: the balance moved, nothing else to tell
	customer  store.Customer // as the change left it
	effective int64
	// crossings are the ids a balance.low and a balance.depleted right after
	// this change would take: ids are made as things happen, so that they
	// sort in the order of the changes, across customers too.
	crossings [2]string
}

// note records a change of the account just made; ev may be nil.
func (acc *account) note(g *group, ev *Event) {
	n := notice{event: ev, customer: acc.customer, effective: acc.effective(g.now)}
	n.customer.Account = acc.state.Account
	acc.noteAs(g, n)
}

// noteAs records a change whose customer and effective balance are given.
func (acc *account) noteAs(g *group, n notice) {
	if g.encode == nil || g.configs[acc.scope] == nil {
		return
	}
	if n.event != nil {
		n.event.ID, n.event.Time = ids.New(ids.Webhook), g.now
		n.event.Customer, n.event.EffectiveBalance = n.customer, n.effective
	}
	n.crossings = [2]string{ids.New(ids.Webhook), ids.New(ids.Webhook)}
	acc.notices = append(acc.notices, n)
}

// effective is the account's spendable balance at now.
func (acc *account) effective(now time.Time) int64 {
	live, err := credit.LiveBalance(acc.state.Blocks, now)
	if err != nil {
		live = acc.state.Account.Balance // a sum past int64 cannot be spent anyway
	}
	return credit.Effective(live, acc.state.Account.Reserved)
}

// setWebhookConfig records the scope's settings as the group's changes
// will see them (read once per group, by load): g.configs holds them when
// the scope's webhooks are on, nil otherwise.
func (g *group) setWebhookConfig(scope store.Scope, cfg store.TenantConfig) {
	if cfg.WebhookURL == "" || len(cfg.WebhookSecret) == 0 {
		g.configs[scope] = nil
		return
	}
	g.configs[scope] = &cfg
}

// events turns an account's notices into its webhook events, with a
// balance.low or balance.depleted after each change whose effective balance
// crossed below the threshold, or to zero: once per crossing, not on every
// drop below.
func (acc *account) events(g *group, cfg *store.TenantConfig, encode EventEncoder) ([]store.WebhookEvent, error) {
	var out []store.WebhookEvent
	add := func(ev Event) error {
		body, err := encode(ev)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", ev.Type, err)
		}
		out = append(out, store.WebhookEvent{
			ID: ev.ID, CustomerID: acc.customer.ID, Type: ev.Type, Payload: body, Status: store.WebhookPending,
			NextAttemptAt: g.now, CreatedAt: g.now, UpdatedAt: g.now,
		})
		return nil
	}
	prev := acc.startEffective
	for _, n := range acc.notices {
		if n.event != nil {
			if err := add(*n.event); err != nil {
				return nil, err
			}
		}
		crossing := Event{Time: g.now, Customer: n.customer, EffectiveBalance: n.effective}
		if t := cfg.LowBalanceThreshold; t != nil && prev >= *t && n.effective < *t {
			crossing.ID, crossing.Type, crossing.Threshold = n.crossings[0], EventBalanceLow, *t
			if err := add(crossing); err != nil {
				return nil, err
			}
		}
		if prev > 0 && n.effective <= 0 {
			crossing.ID, crossing.Type, crossing.Threshold = n.crossings[1], EventBalanceDepleted, 0
			if err := add(crossing); err != nil {
				return nil, err
			}
		}
		prev = n.effective
	}
	return out, nil
}
