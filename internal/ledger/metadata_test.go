package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/creditd/creditd/internal/store"
)

// A usage that burns 100 blocks writes 100 ledger entries; its metadata is
// stored once, on the usage event, and every entry shows it from there.
func TestMetadataIsStoredOncePerRequest(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "tokens", 1000)
		for i := range 100 {
			f.grant(t, scope, fmt.Sprintf("g%d", i), "meta", 1000)
		}
		stored := func() int64 {
			var n int64
			for _, table := range []string{"ledger_entries", "usage_events", "blocks", "customers"} {
				n += f.sum(t, "SELECT COALESCE(SUM(LENGTH(metadata)), 0) FROM "+table)
			}
			return n
		}
		before := stored()

		meta, _ := json.Marshal(map[string]string{"transcript": strings.Repeat("x", 16<<10-20)})
		u := usage("meta", "tokens", 100, "big")
		u.In.Metadata = meta
		if _, err := f.run(t, scope, "big", "/v1/usage", u); err != nil {
			t.Fatal(err)
		}
		if got := f.balance(t, scope, "meta").Balance; got != 0 {
			t.Fatalf("balance after the usage = %d, want 0 (all 100 blocks burnt)", got)
		}
		added := stored() - before
		if added < int64(len(meta)) || added > 2*int64(len(meta)) {
			t.Errorf("a usage of %d bytes of metadata over 100 blocks stored %d bytes of metadata, want it once", len(meta), added)
		}

		_, entries, err := f.svc.Ledger(t.Context(), scope, CustomerRef{ExternalID: "meta"}, "usage", store.Page{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 100 {
			t.Fatalf("%d usage entries, want one per block: 100", len(entries))
		}
		for _, e := range entries {
			var got, want any
			json.Unmarshal(e.Metadata, &got)
			json.Unmarshal(meta, &want)
			if !bytes.Equal(mustJSON(got), mustJSON(want)) {
				t.Fatalf("entry %s shows metadata of %d bytes, want the event's %d", e.ID, len(e.Metadata), len(meta))
			}
		}
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
