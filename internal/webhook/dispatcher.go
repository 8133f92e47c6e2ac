// Package webhook delivers webhook events from the transactional outbox
// (store.WebhookQ). A Dispatcher runs on every instance: it claims
// customers' queues under a lease and delivers each customer's events one at
// a time, in commit order, with a Sender that signs them (the Standard
// Webhooks scheme), retrying a failed event on a Schedule while the
// customer's later events wait behind it.
package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// Outbox is what the Dispatcher needs of the store. Each method runs its own
// transaction; the semantics are store.WebhookQ's.
type Outbox interface {
	WebhookClaim(ctx context.Context, owner string, now, leaseUntil time.Time, limit, perQueue int) ([]store.WebhookQueue, error)
	WebhookAttempted(ctx context.Context, s store.Scope, owner string, now, leaseUntil time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error
	WebhookRelease(ctx context.Context, s store.Scope, customerID, owner string, next time.Time) error
	// WebhookTarget is the scope's current URL and decoded secret; empty when not configured.
	WebhookTarget(ctx context.Context, s store.Scope) (url string, secret []byte, err error)
}

// Observer is told what a Dispatcher does, for metrics. Its methods are
// called from the claim loop and the delivery workers, concurrently, and
// must be quick.
type Observer interface {
	// Claimed reports a claim made at now and the queues it returned (none
	// when nothing was due), each with its pending events, oldest first.
	Claimed(now time.Time, qs []store.WebhookQueue)
	// Attempted reports an attempt made and the event's status after it:
	// store.WebhookDelivered, store.WebhookPending (to be retried) or
	// store.WebhookFailed (the schedule is spent). An attempt for a scope
	// without a target is not sent: its Error is NoTarget.
	Attempted(status string, a store.WebhookAttempt)
}

// The Dispatcher's defaults.
const (
	DefaultWorkers  = 16
	DefaultLease    = time.Minute
	DefaultPerQueue = 20
	DefaultPoll     = time.Second
)

// NoTarget is the Error of an attempt for a scope without a webhook URL or
// secret. It counts against the schedule like any failure, so that events
// do not pile up forever for a tenant who never configures webhooks.
const NoTarget = "no webhook_url and webhook_secret configured"

// leaseMargin is the lease an event needs beyond the send timeout: time to
// record the attempt before the lease ends, after which another instance may
// claim the queue and send the event again.
const leaseMargin = 5 * time.Second

// errorBackoff is how long a queue waits after a store error of ours (not a
// receiver's failure, so the schedule is not charged): long enough not to
// spin on a broken row, short enough to recover soon.
const errorBackoff = 10 * time.Second

// storeTimeout bounds the writes after an attempt. They run detached from
// the caller's cancellation: on shutdown, recording an answer already
// received is worth a moment, and releasing a queue lets another instance
// take it now rather than when the lease ends.
const storeTimeout = 10 * time.Second

// Dispatcher delivers the outbox's events. Set Outbox (required) and any
// other field before the first call of Run or DrainOnce; zero fields take
// their defaults then. Run (or DrainOnce) one at a time: the guard that
// keeps two workers off one customer's queue is per call.
type Dispatcher struct {
	Outbox Outbox
	// Sender makes the attempts; nil means NewSender(SenderOptions{}).
	Sender *Sender
	// Schedule is the retry schedule; nil means DefaultSchedule(). An empty,
	// non-nil schedule means no retries.
	Schedule Schedule
	// Clock stamps attempts and decides what is due; nil means time.Now.
	Clock func() time.Time
	// Owner names this dispatcher in leases and must be unique per process;
	// empty means the host name and a random suffix.
	Owner string
	// Workers is how many queues are delivered in parallel.
	Workers int
	// Lease is how long a claim (and each recorded attempt) holds a queue.
	// It is raised to at least 2×(send timeout) + 5 s, so that a fresh lease
	// always leaves the timeout plus a 5 s margin for an attempt.
	Lease time.Duration
	// PerQueue is how many of a customer's events one claim returns.
	PerQueue int
	// Poll is how long Run waits, when nothing was due, before claiming
	// again (unless Notify wakes it first).
	Poll   time.Duration
	Logger *slog.Logger
	// Observer, when set, is told of every claim and attempt, for metrics.
	Observer Observer

	initOnce sync.Once
	wakeOnce sync.Once
	wake     chan struct{}
}

func (d *Dispatcher) init() {
	d.initOnce.Do(func() {
		if d.Sender == nil {
			d.Sender = NewSender(SenderOptions{})
		}
		if d.Schedule == nil {
			d.Schedule = DefaultSchedule()
		}
		if d.Clock == nil {
			d.Clock = time.Now
		}
		if d.Owner == "" {
			d.Owner = randomOwner()
		}
		if d.Workers <= 0 {
			d.Workers = DefaultWorkers
		}
		if d.Lease <= 0 {
			d.Lease = DefaultLease
		}
		if least := 2*d.Sender.Timeout() + leaseMargin; d.Lease < least {
			d.Lease = least
		}
		if d.PerQueue <= 0 {
			d.PerQueue = DefaultPerQueue
		}
		if d.Poll <= 0 {
			d.Poll = DefaultPoll
		}
		if d.Logger == nil {
			d.Logger = slog.Default()
		}
	})
}

func randomOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "creditd"
	}
	return host + "-" + rand.Text()[:10]
}

// Notify wakes Run to claim at once: the service calls it after committing
// events. It never blocks; wake-ups that arrive while one is pending merge.
// It touches none of the configuration, so it may be called from the moment
// the Dispatcher exists, even while its fields are still being set.
func (d *Dispatcher) Notify() {
	select {
	case d.wakeup() <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) wakeup() chan struct{} {
	d.wakeOnce.Do(func() { d.wake = make(chan struct{}, 1) })
	return d.wake
}

// queueKey identifies a customer's queue.
type queueKey struct {
	scope    store.Scope
	customer string
}

// Run delivers until ctx is done, then returns once every delivery in
// flight has finished or been cut short. It claims as many queues as it has
// free workers, again at once while claims return something, and otherwise
// when a worker finishes, Notify is called, or Poll has passed.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		busy    = make(map[queueKey]bool, d.Workers) // queues being delivered, under mu
		running int                                  // workers started and not yet finished
	)
	defer wg.Wait()
	// Buffered for every worker, so that a finishing worker need not wait
	// for this loop.
	done := make(chan struct{}, d.Workers)
	timer := time.NewTimer(d.Poll)
	defer timer.Stop()
	for ctx.Err() == nil {
		claimed := false
		if free := d.Workers - running; free > 0 {
			qs, err := d.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				d.Logger.ErrorContext(ctx, "claiming webhook queues", "err", err)
			}
			claimed = err == nil && len(qs) > 0
			for _, q := range qs {
				k := queueKey{q.Scope, q.CustomerID}
				mu.Lock()
				dup := busy[k]
				busy[k] = true
				mu.Unlock()
				if dup {
					// The queue's lease ran out while a worker here still
					// delivers it, and this claim renewed it for the same
					// owner, so the store cannot keep a second worker out:
					// leave it to the first, which releases it when done.
					continue
				}
				running++
				wg.Go(func() {
					o := d.deliver(ctx, q)
					// Leave the busy set before releasing: once released,
					// the queue may be claimed again at once, and that claim
					// must start a worker.
					mu.Lock()
					delete(busy, k)
					mu.Unlock()
					if o.release {
						_ = d.release(ctx, q, o.next)
					}
					select {
					case done <- struct{}{}:
					case <-ctx.Done(): // Run has stopped counting
					}
				})
			}
		}
		if claimed && running < d.Workers {
			continue
		}
		timer.Reset(d.Poll)
		select {
		case <-ctx.Done():
		case <-done:
			running--
		case <-d.wakeup():
		case <-timer.C:
		}
		for drained := false; !drained; {
			select {
			case <-done:
				running--
			default:
				drained = true
			}
		}
	}
}

// DrainOnce claims and delivers until nothing is due (by Clock), and returns
// how many attempts it made. It stops at the first store error, and when a
// round makes no attempt (leases too short to send), rather than spin.
// Meant for tests and tools; a server runs Run.
func (d *Dispatcher) DrainOnce(ctx context.Context) (int, error) {
	d.init()
	total := 0
	for {
		qs, err := d.claim(ctx, d.Workers)
		if err != nil {
			return total, err
		}
		if len(qs) == 0 {
			return total, nil
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			n        int
			firstErr error
		)
		for _, q := range qs {
			wg.Go(func() {
				o := d.deliver(ctx, q)
				if o.release {
					if err := d.release(ctx, q, o.next); o.err == nil {
						o.err = err
					}
				}
				mu.Lock()
				defer mu.Unlock()
				n += o.attempts
				if firstErr == nil {
					firstErr = o.err
				}
			})
		}
		wg.Wait()
		total += n
		if firstErr != nil {
			return total, firstErr
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
	}
}

func (d *Dispatcher) claim(ctx context.Context, limit int) ([]store.WebhookQueue, error) {
	now := d.Clock()
	qs, err := d.Outbox.WebhookClaim(ctx, d.Owner, now, now.Add(d.Lease), limit, d.PerQueue)
	if err != nil {
		return nil, fmt.Errorf("claiming webhook queues: %w", err)
	}
	if d.Observer != nil {
		d.Observer.Claimed(now, qs)
	}
	return qs, nil
}

// outcome is how the delivery of a queue ended: how many attempts it made,
// whether to release the queue and when it is due again, and the store
// error that stopped it, if any (already logged).
type outcome struct {
	attempts int
	release  bool
	next     time.Time
	err      error
}

// deliver delivers q's events in order until one must wait. The caller
// releases the queue as the outcome says.
func (d *Dispatcher) deliver(ctx context.Context, q store.WebhookQueue) outcome {
	log := d.logger(q)
	lease := q.LeaseUntil
	o := outcome{release: true}
	for _, ev := range q.Events {
		now := d.Clock()
		if ctx.Err() != nil {
			o.next = now
			return o
		}
		if lease.Sub(now) < d.Sender.Timeout()+leaseMargin {
			// Too little lease left to send and record: the next claim,
			// here or on another instance, goes on at once.
			o.next = now
			return o
		}
		url, secret, err := d.Outbox.WebhookTarget(ctx, q.Scope)
		if err != nil {
			o.next = now
			if ctx.Err() == nil {
				log.ErrorContext(ctx, "webhook target", "err", err)
				o.next = now.Add(errorBackoff)
				o.err = fmt.Errorf("webhook target of %s/%s: %w", q.Scope.TenantID, q.Scope.Env, err)
			}
			return o
		}

		var a store.WebhookAttempt
		if url == "" || len(secret) == 0 {
			a = store.WebhookAttempt{EventID: ev.ID, At: now, Error: NoTarget}
		} else {
			a = d.Sender.Send(ctx, url, secret, ev.ID, ev.Payload, now)
			if a.StatusCode == 0 && ctx.Err() != nil {
				// Our shutdown cut the attempt short: it says nothing of the
				// receiver, so it is not recorded and costs no retry. The
				// receiver may have got it; webhook-id lets it deduplicate.
				o.next = d.Clock()
				return o
			}
		}
		o.attempts++

		now = d.Clock()
		ev.Attempts++
		ev.Tries++
		ev.UpdatedAt = now
		retry := false
		if a.Error == "" {
			ev.Status = store.WebhookDelivered
			ev.DeliveredAt = now
		} else if next, failed := d.Schedule.Next(ev.Tries, now); failed {
			ev.Status = store.WebhookFailed
		} else {
			ev.NextAttemptAt = next
			retry = true
		}
		if d.Observer != nil {
			d.Observer.Attempted(ev.Status, a)
		}
		leaseUntil := now.Add(d.Lease)
		err = d.detached(ctx, func(ctx context.Context) error {
			return d.Outbox.WebhookAttempted(ctx, q.Scope, d.Owner, now, leaseUntil, ev, a)
		})
		if errors.Is(err, store.ErrConflict) {
			// Another dispatcher holds the queue now and will send this
			// event again; releasing would end its lease, not ours.
			log.WarnContext(ctx, "webhook queue lease lost", "event", ev.ID)
			return outcome{attempts: o.attempts}
		}
		if err != nil {
			log.ErrorContext(ctx, "recording webhook attempt", "event", ev.ID, "err", err)
			o.next = now.Add(errorBackoff)
			o.err = fmt.Errorf("recording attempt of %s: %w", ev.ID, err)
			return o
		}
		lease = leaseUntil

		switch ev.Status {
		case store.WebhookDelivered:
			log.DebugContext(ctx, "webhook delivered", "event", ev.ID, "status", a.StatusCode, "duration", a.Duration)
		case store.WebhookFailed:
			log.WarnContext(ctx, "webhook failed", "event", ev.ID, "attempts", ev.Attempts, "error", a.Error)
		default:
			log.InfoContext(ctx, "webhook attempt failed", "event", ev.ID, "tries", ev.Tries, "error", a.Error, "next", ev.NextAttemptAt)
		}
		if retry {
			// The customer's later events wait behind this one.
			o.next = ev.NextAttemptAt
			return o
		}
	}
	// The store drops the queue if nothing is pending, and otherwise (more
	// than PerQueue events) leaves it due now.
	o.next = d.Clock()
	return o
}

func (d *Dispatcher) logger(q store.WebhookQueue) *slog.Logger {
	return d.Logger.With("tenant", q.Scope.TenantID, "env", q.Scope.Env, "customer", q.CustomerID)
}

// release ends the lease of q, due again at next.
func (d *Dispatcher) release(ctx context.Context, q store.WebhookQueue, next time.Time) error {
	err := d.detached(ctx, func(ctx context.Context) error {
		return d.Outbox.WebhookRelease(ctx, q.Scope, q.CustomerID, d.Owner, next)
	})
	if err != nil {
		// The lease ends by itself; the queue is only late.
		d.logger(q).ErrorContext(ctx, "releasing webhook queue", "err", err)
		return fmt.Errorf("releasing webhook queue of %s: %w", q.CustomerID, err)
	}
	return nil
}

// detached runs a store write that must not be cut short by ctx's
// cancellation, bounded by storeTimeout.
func (d *Dispatcher) detached(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return f(ctx)
}
