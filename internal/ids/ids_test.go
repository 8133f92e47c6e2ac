package ids

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewIsPrefixedAndTimeOrdered(t *testing.T) {
	var got []string
	for range 1000 {
		id := New(Block)
		if !strings.HasPrefix(id, Block) || len(id) != len(Block)+26 {
			t.Fatalf("New(%q) = %q, want the prefix and 26 characters", Block, id)
		}
		got = append(got, id)
	}
	if !slices.IsSorted(got) {
		t.Errorf("ids made one after another do not sort in creation order")
	}
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("New repeated an id")
	}
}

func TestUUID(t *testing.T) {
	a, b := UUID(), UUID()
	if !IsUUID(a) || !IsUUID(b) || a == b || a[14] != '7' {
		t.Errorf("UUID() = %q, %q, want two distinct UUIDv7s", a, b)
	}
	if a >= b {
		t.Errorf("UUID() %q then %q: want creation order", a, b)
	}
	for _, s := range []string{"", "user42:companion7", "019d6258-07ba-7418-83be-58f5fde53e4", "019d6258-07ba-7418-83be-58f5fde53e4ez", "019d625807ba741883be58f5fde53e4e0000"} {
		if IsUUID(s) {
			t.Errorf("IsUUID(%q) = true, want false", s)
		}
	}
}

func TestFloorSortsBeforeLaterIDs(t *testing.T) {
	now := time.Now()
	id := New(Webhook)
	if f := Floor(Webhook, now.Add(-time.Millisecond)); f > id {
		t.Errorf("Floor a millisecond before %s = %s, want <= it", id, f)
	}
	if f := Floor(Webhook, now.Add(2*time.Millisecond)); f <= id {
		t.Errorf("Floor 2 ms after %s = %s, want > it", id, f)
	}
	if len(Floor(Webhook, now)) != len(id) {
		t.Errorf("Floor has another length than an id")
	}
}
