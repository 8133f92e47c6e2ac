package ledger

import (
	"time"

	"github.com/creditd/creditd/internal/credit"
)

// BlockDebit is one block's share of a debit, as a decision explains it:
// which credits paid, and why those (their priority, expiry and source set
// the burn order).
type BlockDebit struct {
	BlockID   string
	Amount    int64
	Priority  int
	ExpiresAt time.Time
	Source    string
}

// breakdown explains the entries of one debit, in burn order. block finds a
// block of the state the debit ran on, and its source.
func breakdown(entries []credit.Entry, block func(id string) (credit.Block, string)) []BlockDebit {
	out := make([]BlockDebit, 0, len(entries))
	for _, e := range entries {
		b, source := block(e.BlockID)
		out = append(out, BlockDebit{BlockID: e.BlockID, Amount: -e.Delta, Priority: b.Priority, ExpiresAt: b.ExpiresAt, Source: source})
	}
	return out
}

// blockInfo finds a block of the account, and its source: granted in this
// group, or loaded.
func (acc *account) blockInfo(id string) (credit.Block, string) {
	b, _ := acc.state.Lookup(id)
	for _, nb := range acc.newBlocks {
		if nb.ID == id {
			return b, nb.Source
		}
	}
	return b, acc.sources[id]
}
