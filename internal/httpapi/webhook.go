package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// eventBody is the body of every webhook, Standard Webhooks style; its id
// is also the webhook-id header.
type eventBody struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Timestamp Time   `json:"timestamp"`
	Data      any    `json:"data"`
}

// eventCustomer is what every event's data carries: whose balance changed
// and where it stands after the change.
type eventCustomer struct {
	CustomerID         string  `json:"customer_id"`
	ExternalCustomerID *string `json:"external_customer_id"`
	BalanceAfter       int64   `json:"balance_after"`
	EffectiveBalance   int64   `json:"effective_balance"`
}

type grantedData struct {
	eventCustomer
	Block blockJSON `json:"block"`
}

type consumedData struct {
	eventCustomer
	EventID           string           `json:"event_id"`
	BillableMetricKey string           `json:"billable_metric_key"`
	Units             int64            `json:"units"`
	Amount            int64            `json:"amount"`
	Debits            []blockDebitJSON `json:"debits"`
}

type expiredData struct {
	eventCustomer
	BlockID string `json:"block_id"`
	Amount  int64  `json:"amount"`
}

type lowData struct {
	eventCustomer
	LowBalanceThreshold int64 `json:"low_balance_threshold"`
}

type reservationData struct {
	eventCustomer
	Reservation reservationJSON `json:"reservation"`
}

// EncodeEvent is the service's webhook encoder (ledger.WithWebhooks): the
// wire shapes of docs/api.md, "Webhooks". A purchase's data is the purchase
// object and a linked transaction's the transaction object, each with the
// customer fields every event carries.
func EncodeEvent(ev ledger.Event) ([]byte, error) {
	c := ev.Customer
	who := eventCustomer{CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID),
		BalanceAfter: c.Account.Balance, EffectiveBalance: ev.EffectiveBalance}
	var data any
	switch {
	case ev.Type == ledger.EventCreditsGranted && ev.Block != nil:
		data = grantedData{eventCustomer: who, Block: blockOut(*ev.Block, c)}
	case ev.Type == ledger.EventCreditsConsumed && ev.Usage != nil:
		u := ev.Usage
		data = consumedData{eventCustomer: who, EventID: u.Event.ID, BillableMetricKey: u.Event.MetricKey,
			Units: u.Event.Units, Amount: u.Event.Cost, Debits: breakdownOut(u.Breakdown)}
	case ev.Type == ledger.EventCreditsExpired && ev.Expired != nil:
		data = expiredData{eventCustomer: who, BlockID: ev.Expired.BlockID, Amount: ev.Expired.Amount}
	case ev.Type == ledger.EventBalanceLow:
		data = lowData{eventCustomer: who, LowBalanceThreshold: ev.Threshold}
	case ev.Type == ledger.EventBalanceDepleted:
		data = who
	case ev.Reservation != nil:
		data = reservationData{eventCustomer: who, Reservation: reservationOut(ledger.ReservationResult{Reservation: *ev.Reservation, Customer: c})}
	case ev.Type == ledger.EventPlanPurchased && ev.Purchase != nil && ev.Block != nil:
		data = purchaseOut(ledger.PurchaseResult{Purchase: *ev.Purchase, Customer: c, Block: *ev.Block})
	case ev.Type == ledger.EventTransactionCommitted && ev.Transaction != nil:
		head, err := marshal(who)
		if err != nil {
			return nil, err
		}
		body := ev.Transaction.Body
		if len(body) < 2 || body[0] != '{' {
			return nil, fmt.Errorf("transaction %s: stored answer is not an object", ev.Transaction.ID)
		}
		// The transaction object, as answered, after the customer fields.
		data = json.RawMessage(append(append(head[:len(head)-1:len(head)-1], ','), body[1:]...))
	default:
		return nil, fmt.Errorf("webhook event %q without its data", ev.Type)
	}
	return marshal(eventBody{ID: ev.ID, Type: ev.Type, Timestamp: Time(ev.Time), Data: data})
}

// attemptJSON is one delivery attempt in the delivery log.
type attemptJSON struct {
	At         Time   `json:"at"`
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// webhookEventJSON is an event in the delivery log: its state, the body it
// delivers, and its attempts.
type webhookEventJSON struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	CustomerID    string          `json:"customer_id"`
	Status        string          `json:"status"`
	AttemptCount  int             `json:"attempt_count"`
	NextAttemptAt *Time           `json:"next_attempt_at"`
	DeliveredAt   *Time           `json:"delivered_at"`
	CreatedAt     Time            `json:"created_at"`
	Payload       json.RawMessage `json:"payload"`
	Attempts      []attemptJSON   `json:"attempts"`
}

func webhookEventOut(v ledger.WebhookEventView) webhookEventJSON {
	e := v.WebhookEvent
	out := webhookEventJSON{ID: e.ID, Type: e.Type, CustomerID: e.CustomerID, Status: e.Status, AttemptCount: e.Attempts,
		CreatedAt: Time(e.CreatedAt), Payload: json.RawMessage(e.Payload), Attempts: make([]attemptJSON, 0, len(v.Attempts))}
	if e.Status == store.WebhookPending {
		t := Time(e.NextAttemptAt)
		out.NextAttemptAt = &t
	}
	if !e.DeliveredAt.IsZero() {
		t := Time(e.DeliveredAt)
		out.DeliveredAt = &t
	}
	for _, a := range v.Attempts {
		aj := attemptJSON{At: Time(a.At), Error: a.Error, DurationMS: a.Duration.Milliseconds()}
		if a.StatusCode != 0 {
			code := a.StatusCode
			aj.StatusCode = &code
		}
		out.Attempts = append(out.Attempts, aj)
	}
	return out
}

var webhookStates = map[string]bool{store.WebhookPending: true, store.WebhookDelivered: true, store.WebhookFailed: true}

var webhookTypes = map[string]bool{
	ledger.EventCreditsGranted: true, ledger.EventCreditsConsumed: true, ledger.EventCreditsExpired: true,
	ledger.EventBalanceLow: true, ledger.EventBalanceDepleted: true, ledger.EventReservationCommitted: true,
	ledger.EventReservationReleased: true, ledger.EventReservationExpired: true, ledger.EventPlanPurchased: true,
	ledger.EventTransactionCommitted: true,
}

// handleWebhookEvents is the delivery log: events newest first, of one
// state (?status=) and one type (?type=) when asked, with their attempts.
func (s *Server) handleWebhookEvents() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		status, typ := q.Get("status"), q.Get("type")
		if status != "" && !webhookStates[status] {
			return credit.Invalid("status", "must be one of pending, delivered, failed")
		}
		if typ != "" && !webhookTypes[typ] {
			return credit.Invalid("type", "must be an event type of the catalog (docs/api.md, Webhooks)")
		}
		rows, err := s.svc.WebhookEvents(r.Context(), scopeOf(r.Context()), status, typ, p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, webhookEventOut, func(v ledger.WebhookEventView) string { return v.ID }))
	}
}

func (s *Server) handleWebhookEvent() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := checkID("id", id); err != nil {
			return err
		}
		v, err := s.svc.WebhookEvent(r.Context(), scopeOf(r.Context()), id)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, webhookEventOut(v))
	}
}

// handleRedeliver queues an event again: 202, with the event as queued.
func (s *Server) handleRedeliver() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := checkID("id", id); err != nil {
			return err
		}
		return s.mutate(w, r, func([]byte) (ledger.Command, error) {
			return ledger.Redeliver{EventID: id, Encode: encodeAs(http.StatusAccepted, webhookEventOut)}, nil
		}, nil)
	}
}

// webhookHealthJSON is the operator's view of delivery.
type webhookHealthJSON struct {
	Pending              int64   `json:"pending"`
	Failed               int64   `json:"failed"`
	DeliveredLast24h     int64   `json:"delivered_last_24h"`
	OldestPendingEventID *string `json:"oldest_pending_event_id"`
	OldestPendingAgeSecs *int64  `json:"oldest_pending_age_seconds"`
	NextAttemptAt        *Time   `json:"next_attempt_at"`
	WebhookConfigured    bool    `json:"webhook_configured"`
	Note                 string  `json:"note,omitempty"`
}

func (s *Server) handleWebhookHealth() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc := scopeOf(r.Context())
		h, now, err := s.svc.WebhookHealth(r.Context(), sc)
		if err != nil {
			return err
		}
		cfg, err := s.svc.Config(r.Context(), sc)
		if err != nil {
			return err
		}
		out := webhookHealthJSON{Pending: h.Pending, Failed: h.Failed, DeliveredLast24h: h.DeliveredSince,
			WebhookConfigured: cfg.WebhookURL != "" && len(cfg.WebhookSecret) > 0}
		if !out.WebhookConfigured {
			out.Note = "no events are recorded until webhook_url and webhook_secret are set"
		}
		if h.OldestPendingID != "" {
			id, age := h.OldestPendingID, int64(now.Sub(h.OldestPendingAt)/time.Second)
			out.OldestPendingEventID, out.OldestPendingAgeSecs = &id, &age
		}
		if !h.NextAttemptAt.IsZero() {
			t := Time(h.NextAttemptAt)
			out.NextAttemptAt = &t
		}
		return encode(w, http.StatusOK, out)
	}
}
