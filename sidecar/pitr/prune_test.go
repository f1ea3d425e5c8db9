package pitr

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/storage"
)

func TestPruneKeepsWALOfOldestKeptBase(t *testing.T) {
	ctx := context.Background()
	store, _ := storage.NewLocal(t.TempDir())
	for i, lsn := range []string{"0/1000028", "0/5000028", "0/9000028"} {
		m := &BaseManifest{ID: string(rune('a' + i)), Timeline: 1, StartLSN: lsn, FinishedAt: time.Unix(int64(i), 0)}
		putJSON(ctx, store, basePrefix+m.ID+"/manifest.json", m)
		putJSON(ctx, store, basePrefix+m.ID+"/base.tar"+sealedExt, "x")
	}
	for _, seg := range []string{"000000010000000000000001", "000000010000000000000004", "000000010000000000000005", "000000010000000000000009", "00000002.history"} {
		putJSON(ctx, store, walPrefix+seg+sealedExt, "x")
	}
	bases, segs, err := Prune(ctx, store, 2)
	if err != nil || bases != 1 || segs != 2 {
		t.Fatalf("pruned %d bases %d segments: %v", bases, segs, err)
	}
	left, _ := ArchivedWAL(ctx, store)
	if !slices.Equal(left, []string{"000000010000000000000005", "000000010000000000000009", "00000002.history"}) {
		t.Fatalf("left %v", left)
	}
	if got, _ := ListBases(ctx, store); len(got) != 2 || got[0].ID != "b" {
		t.Fatalf("bases %v", got)
	}
}
