package pitr

import (
	"context"
	"strings"

	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// Prune keeps the keep newest base backups and the WAL the oldest of them
// needs, deleting older bases and segments. It returns what it deleted.
func Prune(ctx context.Context, store storage.Storage, keep int) (bases, segments int, err error) {
	all, err := ListBases(ctx, store)
	if err != nil || len(all) <= keep || keep < 1 {
		return 0, 0, err
	}
	old, kept := all[:len(all)-keep], all[len(all)-keep:]
	for _, b := range old {
		// Manifest first: without it the base is no longer listed.
		for _, f := range []string{"manifest.json", "base.tar" + sealedExt} {
			if err := store.Delete(ctx, basePrefix+b.ID+"/"+f); err != nil {
				return bases, segments, err
			}
		}
		bases++
	}
	start, err := kept[0].StartSegment()
	if err != nil {
		return bases, segments, err
	}
	names, err := ArchivedWAL(ctx, store)
	if err != nil {
		return bases, segments, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".history") || n >= start {
			continue
		}
		if err := store.Delete(ctx, walPrefix+n+sealedExt); err != nil {
			return bases, segments, err
		}
		segments++
	}
	return bases, segments, nil
}
