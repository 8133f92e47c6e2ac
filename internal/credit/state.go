package credit

import (
	"fmt"
	"slices"
	"time"
)

// Account is a customer's running totals as stored beside its blocks.
// Balance counts every block's remaining amount, including blocks that have
// expired but whose expire entry is not written yet; LiveBalance gives what is
// spendable.
type Account struct {
	Balance        int64
	Reserved       int64
	LifetimeEarned int64
	Version        int64
}

// EntryType is the kind of a ledger entry.
type EntryType string

// The ledger entry types of the API.
const (
	EntryGrant      EntryType = "grant"
	EntryUsage      EntryType = "usage"
	EntryReserve    EntryType = "reserve"
	EntryCommit     EntryType = "commit"
	EntryRelease    EntryType = "release"
	EntryExpire     EntryType = "expire"
	EntryAdjustment EntryType = "adjustment"
	EntryPurchase   EntryType = "purchase"
)

// Entry is one ledger line: a signed change to one block, and the account
// balance right after it.
type Entry struct {
	Type         EntryType
	BlockID      string
	Delta        int64
	BalanceAfter int64
}

// State is one customer's account and blocks, loaded inside a write
// transaction. Its methods apply one operation each, changing State in place
// and returning the ledger entries to append; on error State is unchanged.
// The caller persists Account, every block named by an entry, and the entries.
type State struct {
	Account Account
	Blocks  []Block
}

// Clone returns a copy of s that shares nothing with it, to try operations
// on and keep only if all of them succeed.
func (s State) Clone() State {
	s.Blocks = slices.Clone(s.Blocks)
	return s
}

// Lookup returns the block with id, if s has it.
func (s *State) Lookup(id string) (Block, bool) {
	if b := s.block(id); b != nil {
		return *b, true
	}
	return Block{}, false
}

func (s *State) block(id string) *Block {
	for i := range s.Blocks {
		if s.Blocks[i].ID == id {
			return &s.Blocks[i]
		}
	}
	return nil
}

// ExpireDue zeroes every block that has expired at now with credits left, in
// burn order, and returns one expire entry per block.
func (s *State) ExpireDue(now time.Time) []Entry {
	var due []Block
	for _, b := range s.Blocks {
		if b.Remaining > 0 && b.Expired(now) {
			due = append(due, b)
		}
	}
	if len(due) == 0 {
		return nil
	}
	// Expire entries come out in burn order, so that they read the same on every run.
	slices.SortStableFunc(due, CompareBurn)
	entries := make([]Entry, 0, len(due))
	for _, d := range due {
		b := s.block(d.ID)
		s.Account.Balance -= b.Remaining // cannot overflow: Balance ≥ Σ Remaining ≥ 0
		entries = append(entries, Entry{Type: EntryExpire, BlockID: b.ID, Delta: -b.Remaining, BalanceAfter: s.Account.Balance})
		b.Remaining = 0
	}
	s.Account.Version++
	return entries
}

// Grant adds a new block. Its Remaining must equal Original, be positive, and
// keep the balance and lifetime total inside int64.
func (s *State) Grant(b Block) (Entry, error) {
	if b.Original <= 0 || b.Remaining != b.Original {
		return Entry{}, fmt.Errorf("grant of block %s: original %d, remaining %d: %w", b.ID, b.Original, b.Remaining, Invalid("credits", "must be a positive integer"))
	}
	balance, err := Add(s.Account.Balance, b.Original)
	if err != nil {
		return Entry{}, Invalid("credits", "the balance would overflow int64 millicredits")
	}
	earned, err := Add(s.Account.LifetimeEarned, b.Original)
	if err != nil {
		return Entry{}, Invalid("credits", "the lifetime total would overflow int64 millicredits")
	}
	s.Blocks = append(s.Blocks, b)
	s.Account.Balance = balance
	s.Account.LifetimeEarned = earned
	s.Account.Version++
	return Entry{Type: EntryGrant, BlockID: b.ID, Delta: b.Original, BalanceAfter: balance}, nil
}

// Hold sets amount aside for a reservation: it counts in Reserved, so no
// debit can spend it. It fails with *InsufficientError, changing nothing,
// when amount exceeds the effective balance.
func (s *State) Hold(amount int64, now time.Time) error {
	if amount < 0 {
		return Invalid("amount", "must not be negative")
	}
	live, err := LiveBalance(s.Blocks, now)
	if err != nil {
		return err
	}
	if available := Effective(live, s.Account.Reserved); amount > available {
		return &InsufficientError{Required: amount, Available: available}
	}
	reserved, err := Add(s.Account.Reserved, amount)
	if err != nil {
		return err
	}
	s.Account.Reserved = reserved
	s.Account.Version++
	return nil
}

// Unhold gives back amount a hold had set aside (committed, released or
// lapsed). It never takes Reserved below zero.
func (s *State) Unhold(amount int64) {
	s.Account.Reserved = max(0, s.Account.Reserved-amount)
	s.Account.Version++
}

// Debit spends amount from the live blocks in burn order, one entry of type
// typ per block touched. It fails with *InsufficientError, changing nothing,
// when amount exceeds the effective balance (balance minus reservations).
// A zero amount succeeds with no entries.
func (s *State) Debit(amount int64, typ EntryType, now time.Time) ([]Entry, error) {
	return s.debit(amount, typ, now, func(Block) bool { return true })
}

// DebitPayable spends amount only from the live blocks of priority at most
// maxPriority, in burn order among them: a plan's price, which plan credits
// (priority 10) must not pay. What is held by reservations is not payable
// either, so the available amount is the payable credits, at most the
// effective balance. It fails with *InsufficientError naming that amount,
// changing nothing, when amount exceeds it.
func (s *State) DebitPayable(amount int64, maxPriority int, typ EntryType, now time.Time) ([]Entry, error) {
	return s.debit(amount, typ, now, func(b Block) bool { return b.Priority <= maxPriority })
}

// debit spends amount from the live blocks that pay, in burn order.
func (s *State) debit(amount int64, typ EntryType, now time.Time, pays func(Block) bool) ([]Entry, error) {
	if amount < 0 {
		return nil, Invalid("amount", "must not be negative")
	}
	live, err := LiveBalance(s.Blocks, now)
	if err != nil {
		return nil, err
	}
	var payable int64
	for _, b := range s.Blocks {
		if b.Live(now) && pays(b) {
			payable += b.Remaining // cannot overflow: payable ≤ live, checked above
		}
	}
	available := min(payable, Effective(live, s.Account.Reserved))
	if amount > available {
		return nil, &InsufficientError{Required: amount, Available: available}
	}
	if amount == 0 {
		return nil, nil
	}
	var entries []Entry
	left := amount
	for _, lb := range BurnOrder(s.Blocks, now) {
		if left == 0 {
			break
		}
		if !pays(lb) {
			continue
		}
		take := min(lb.Remaining, left)
		b := s.block(lb.ID)
		b.Remaining -= take
		left -= take
		s.Account.Balance -= take
		entries = append(entries, Entry{Type: typ, BlockID: b.ID, Delta: -take, BalanceAfter: s.Account.Balance})
	}
	s.Account.Version++
	return entries, nil
}
