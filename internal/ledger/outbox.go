package ledger

import (
	"context"
	"errors"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// The dispatcher's side of the outbox (package webhook's Outbox): each call
// is one short transaction of its own, beside the committers, under the
// service's deadline.

// WebhookClaim leases due customer queues to owner (store.WebhookQ).
func (s *Service) WebhookClaim(ctx context.Context, owner string, now, leaseUntil time.Time, limit, perQueue int) ([]store.WebhookQueue, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out []store.WebhookQueue
	err := s.store.Transact(ctx, func(q store.Q) error {
		var err error
		out, err = q.WebhookClaim(ctx, owner, now, leaseUntil, limit, perQueue)
		return err
	})
	return out, err
}

// WebhookAttempted records an attempt and the event's new state while owner
// holds its queue's lease; store.ErrConflict when it no longer does.
func (s *Service) WebhookAttempted(ctx context.Context, scope store.Scope, owner string, now, leaseUntil time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.Transact(ctx, func(q store.Q) error {
		return q.WebhookAttempted(ctx, scope, owner, now, leaseUntil, ev, a)
	})
}

// WebhookRelease ends owner's lease of a customer's queue.
func (s *Service) WebhookRelease(ctx context.Context, scope store.Scope, customerID, owner string, next time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.Transact(ctx, func(q store.Q) error {
		return q.WebhookRelease(ctx, scope, customerID, owner, next)
	})
}

// WebhookTarget is where the scope's events go now, and the key that signs
// them; both empty when webhooks are not configured.
func (s *Service) WebhookTarget(ctx context.Context, scope store.Scope) (string, []byte, error) {
	cfg, err := s.Config(ctx, scope)
	if err != nil {
		return "", nil, err
	}
	return cfg.WebhookURL, cfg.WebhookSecret, nil
}

// WebhookEventView is an event with its delivery attempts, oldest first.
type WebhookEventView struct {
	store.WebhookEvent
	Attempts []store.WebhookAttempt
}

// WebhookEvents lists the scope's events newest first, of one status and
// one type when they are set, each with its attempts.
func (s *Service) WebhookEvents(ctx context.Context, scope store.Scope, status, eventType string, p store.Page) ([]WebhookEventView, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out []WebhookEventView
	err := s.store.Read(ctx, func(q store.Q) error {
		evs, err := q.WebhookList(ctx, scope, status, eventType, p)
		if err != nil || len(evs) == 0 {
			return err
		}
		idsOf := make([]string, len(evs))
		for i, e := range evs {
			idsOf[i] = e.ID
		}
		attempts, err := q.WebhookAttempts(ctx, scope, idsOf)
		if err != nil {
			return err
		}
		for _, e := range evs {
			out = append(out, WebhookEventView{WebhookEvent: e, Attempts: attempts[e.ID]})
		}
		return nil
	})
	return out, err
}

// WebhookEvent reads one event with its attempts.
func (s *Service) WebhookEvent(ctx context.Context, scope store.Scope, id string) (WebhookEventView, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out WebhookEventView
	err := s.store.Read(ctx, func(q store.Q) error {
		e, err := q.WebhookGet(ctx, scope, id)
		if err != nil {
			return notFound(err, "no webhook event %q", id)
		}
		attempts, err := q.WebhookAttempts(ctx, scope, []string{id})
		if err != nil {
			return err
		}
		out = WebhookEventView{WebhookEvent: e, Attempts: attempts[id]}
		return nil
	})
	return out, err
}

// WebhookHealthWindow is how far back delivered events are counted.
const WebhookHealthWindow = 24 * time.Hour

// WebhookHealth reports the scope's delivery health, and the time it was
// measured at.
func (s *Service) WebhookHealth(ctx context.Context, scope store.Scope) (store.WebhookHealth, time.Time, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.clock()
	h, err := s.store.WebhookHealth(ctx, scope, now.Add(-WebhookHealthWindow))
	return h, now, err
}

// Redeliver queues one event again, whatever its state: it is delivered
// once more, in its customer's order, with a fresh retry schedule.
type Redeliver struct {
	EventID string
	Encode  Encoder[WebhookEventView]
}

func (c Redeliver) plan(*plan) {}
func (c Redeliver) size() int  { return 1 }

func (c Redeliver) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	ev, err := g.q.WebhookRequeue(ctx, req.Scope, c.EventID, g.now)
	if errors.Is(err, store.ErrNotFound) {
		return Response{}, false, notFound(err, "no webhook event %q", c.EventID)
	}
	if err != nil {
		return Response{}, false, err
	}
	attempts, err := g.q.WebhookAttempts(ctx, req.Scope, []string{ev.ID})
	if err != nil {
		return Response{}, false, err
	}
	g.events++ // wakes the dispatcher after the commit
	status, body, err := c.Encode(WebhookEventView{WebhookEvent: ev, Attempts: attempts[ev.ID]})
	return Response{Status: status, Body: body}, true, err
}

// webhookPurgeBatch is how many events one purge transaction deletes: short
// enough not to hold the writers up.
const webhookPurgeBatch = 500

// PurgeWebhooks deletes the delivered and failed events (never pending ones)
// made more than retention ago, with their attempts, in every scope, and
// returns how many events it deleted. retention <= 0 keeps every event.
func (s *Service) PurgeWebhooks(ctx context.Context, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, nil
	}
	return s.purgeWebhooks(ctx, s.clock().Add(-retention), webhookPurgeBatch)
}

// purgeWebhooks deletes the events made before before, scope by scope, in
// transactions of up to limit events each, until a batch finds fewer.
func (s *Service) purgeWebhooks(ctx context.Context, before time.Time, limit int) (int64, error) {
	scopes, err := func() ([]store.Scope, error) {
		ctx, cancel := s.bound(ctx)
		defer cancel()
		return s.store.WebhookScopes(ctx)
	}()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, scope := range scopes {
		for {
			n, err := s.purgeWebhookBatch(ctx, scope, before, limit)
			total += n
			if err != nil {
				return total, err
			}
			if n < int64(limit) {
				break
			}
		}
	}
	return total, nil
}

// purgeWebhookBatch is one batch of purgeWebhooks, in a transaction of its
// own under the service's deadline.
func (s *Service) purgeWebhookBatch(ctx context.Context, scope store.Scope, before time.Time, limit int) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.store.Transact(ctx, func(q store.Q) error {
		var err error
		n, err = q.WebhookPurge(ctx, scope, before, limit)
		return err
	})
	return n, err
}
