package ledger

import (
	"context"
	"errors"
	"hash/maphash"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// Group commit. A committer takes the commands that are waiting when it is
// free and runs them in one transaction: one lock and one load per customer,
// one write per row kind, one commit (one fsync) for all. A command alone is
// taken at once. Under load, the clients answered by the last group come
// back within a fraction of a commit; taking only what is queued at that
// instant made groups of three where thirty were on their way (measured: 3.4
// commands a group with 32 clients, an fsync for each). So a committer that
// saw a group of n waits up to linger for n commands before it starts the
// next group; a wait that times out lowers n to what came, so a client alone
// again pays the wait once.

// maxGroup bounds a group's weight (a batch counts its events) where
// several writers share the database (PostgreSQL: committers, instances): a
// bigger group holds its customers' row locks longer, and the other
// writers' groups wait on them (measured with 8,192: batch p99 rose from
// about 7 to 8–10 s for a tenth more events/s).
const maxGroup = 1024

// maxGroupAlone bounds it where one writer alone writes (SQLite). A group
// writes each page it changes once, so bigger groups of batches write fewer
// pages per event: 1,000-event batches went from 12,400–14,400 to
// 17,100–18,000 events/s with 8,192 instead of 1,024 (32 clients). A
// command behind a backlog waits no longer for it: the queue is first in,
// first out, and bigger groups clear the backlog sooner. A command that
// comes as a big group starts waits for that group (up to about half a
// second for 8 batches of 1,000).
const maxGroupAlone = 8192

// linger bounds the wait for the rest of a group: about the time a client
// takes to send its next request, well under a commit's.
const linger = 500 * time.Microsecond

// conflictAttempts bounds the runs of a command that keeps losing insert
// races to another instance (two first grants to one new customer, say).
const conflictAttempts = 3

type committer struct {
	svc   *Service
	queue chan *pending
	done  chan struct{}
	// expect is how many commands the next group waits for: the size of
	// the groups seen lately (see linger).
	expect int
	max    int // the weight a group stops at: maxGroup or maxGroupAlone
}

// pending is one command waiting for its group.
type pending struct {
	ctx    context.Context
	req    Request
	cmd    Command
	result chan outcome // buffered: the committer never waits for a reader
}

type outcome struct {
	resp Response
	err  error
}

func newCommitter(s *Service, weight int) *committer {
	return &committer{svc: s, queue: make(chan *pending, weight), done: make(chan struct{}), max: weight}
}

var shardSeed = maphash.MakeSeed()

// submit queues cmd on its customer's committer and waits for its outcome.
func (s *Service) submit(ctx context.Context, req Request, cmd Command) (Response, error) {
	c := s.committers[0]
	if len(s.committers) > 1 {
		var p plan
		cmd.plan(&p)
		c = s.committers[p.shard(req.Scope)%uint64(len(s.committers))]
	}
	// Behind a hung database the queue stops moving: wait for the group
	// ahead and this command's own, each bounded by the deadline, no longer.
	// A command whose wait ended before it ran is skipped.
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout)
	defer cancel()
	pd := &pending{ctx: ctx, req: req, cmd: cmd, result: make(chan outcome, 1)}
	select {
	case c.queue <- pd:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	select {
	case o := <-pd.result:
		return o.resp, o.err
	case <-ctx.Done():
		// The command may still commit; a retry with its key replays it.
		return Response{}, ctx.Err()
	}
}

func (c *committer) stop() {
	close(c.queue)
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	timer := time.NewTimer(0)
	<-timer.C
	for first := range c.queue {
		group := []*pending{first}
		weight := first.cmd.size()
	fill:
		for weight < c.max {
			select {
			case p, ok := <-c.queue:
				if !ok {
					break fill
				}
				group = append(group, p)
				weight += p.cmd.size()
			default:
				break fill
			}
		}
		if len(group) < c.expect && weight < c.max {
			group = c.gather(group, weight, timer)
		}
		c.expect = max(c.expect, len(group))
		c.commit(group)
	}
}

// gather waits up to linger for the group to reach the size expected. On a
// time-out the expectation drops to what came.
func (c *committer) gather(group []*pending, weight int, timer *time.Timer) []*pending {
	timer.Reset(linger)
	defer func() {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}()
	for len(group) < c.expect && weight < c.max {
		select {
		case p, ok := <-c.queue:
			if !ok {
				return group
			}
			group = append(group, p)
			weight += p.cmd.size()
		case <-timer.C:
			c.expect = len(group)
			return group
		}
	}
	return group
}

// commit runs a group and answers each of its commands. When the group's
// transaction fails as a whole, its commands run again one at a time, so
// that one command's failure is its own.
func (c *committer) commit(group []*pending) {
	live := group[:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			p.result <- outcome{err: err} // gave up before it ran: nothing done
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	if c.svc.onGroup != nil {
		c.svc.onGroup(len(live))
	}
	outs, err := c.svc.runGroup(live)
	if err == nil {
		for i, p := range live {
			p.result <- outs[i]
		}
		return
	}
	if len(live) == 1 {
		live[0].result <- outcome{err: err}
		return
	}
	for _, p := range live {
		outs, err := c.svc.runGroup([]*pending{p})
		if err != nil {
			p.result <- outcome{err: err}
			continue
		}
		p.result <- outs[0]
	}
}

// runGroup runs the commands in one transaction and returns their outcomes,
// or the error that rolled the transaction back. A conflict (an insert race
// lost to another instance) runs the transaction again: it then finds the
// winner's rows.
func (s *Service) runGroup(group []*pending) (outs []outcome, err error) {
	if s.observer != nil {
		defer func(start time.Time) { s.observer.GroupCommitted(len(group), time.Since(start), err) }(time.Now())
	}
	// The service's deadline, not any one request's: the transaction does
	// not depend on the requests in it, which may give up sooner.
	ctx, cancel := s.bound(context.Background())
	defer cancel()
	for range conflictAttempts {
		events := 0
		err = s.store.Transact(ctx, func(q store.Q) error {
			g := newGroup(q, s.clock())
			g.encode = s.encodeEvent
			var err error
			outs, err = g.run(ctx, group)
			events = g.events
			return err
		})
		if err == nil && events > 0 && s.notifyEvents != nil {
			s.notifyEvents()
		}
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	return outs, err
}

// shard picks a committer for the command's first customer, so that one
// customer's commands meet in one group.
func (p *plan) shard(scope store.Scope) uint64 {
	var h maphash.Hash
	h.SetSeed(shardSeed)
	h.WriteString(scope.TenantID)
	h.WriteString(scope.Env)
	if len(p.refs) > 0 {
		r := p.refs[0]
		h.WriteString(r.ID)
		h.WriteString(r.ExternalID)
	}
	return h.Sum64()
}
