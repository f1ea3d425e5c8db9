package backup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
)

// Retention says which backups to keep: the Last most recent, the newest
// of each of the Daily most recent days that have one, and the newest of
// each of the Weekly most recent ISO weeks that have one. A backup kept by
// any rule stays. Backups whose verification failed are never kept (they
// would only give false comfort); ones never verified, or whose check
// could not run, count like good ones.
type Retention struct {
	Last, Daily, Weekly int
	// Location decides where days and weeks begin; nil means UTC.
	Location *time.Location
}

// Select splits entries into those to keep and those to delete.
func (r Retention) Select(entries []Entry) (keep, drop []Entry) {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Manifest.StartedAt.After(sorted[j].Manifest.StartedAt) })
	kept := map[string]bool{}
	days, weeks := map[string]bool{}, map[string]bool{}
	n := 0
	for _, e := range sorted {
		if e.Status() == StatusFailed {
			continue
		}
		t := e.Manifest.StartedAt.In(loc)
		day := t.Format(time.DateOnly)
		y, w := t.ISOWeek()
		week := fmt.Sprintf("%d-W%02d", y, w)
		if n < r.Last {
			kept[e.Manifest.ID] = true
		}
		n++
		if !days[day] && len(days) < r.Daily {
			days[day] = true
			kept[e.Manifest.ID] = true
		}
		if !weeks[week] && len(weeks) < r.Weekly {
			weeks[week] = true
			kept[e.Manifest.ID] = true
		}
	}
	for _, e := range sorted {
		if kept[e.Manifest.ID] {
			keep = append(keep, e)
		} else {
			drop = append(drop, e)
		}
	}
	return keep, drop
}

// ApplyRetention deletes the backups the policy does not keep. It is only
// called after a successful job, takes the read lock exclusively (so no
// verification is reading what it deletes) and skips this round when a
// verification is running.
func (s *Service) ApplyRetention(ctx context.Context) ([]string, error) {
	conn, err := pgtool.Connect(ctx, s.Primary)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ok, err := pgtool.TryLock(ctx, conn, readLock)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.log().Info("retention skipped: a verification is reading backups")
		return nil, nil
	}
	defer pgtool.Unlock(conn, readLock)
	entries, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	_, drop := s.Retention.Select(entries)
	var deleted []string
	for _, e := range drop {
		if err := s.Delete(ctx, e.Manifest.ID); err != nil {
			return deleted, err
		}
		s.log().Info("backup deleted by retention", "backup", e.Manifest.ID, "status", e.Status())
		deleted = append(deleted, e.Manifest.ID)
	}
	return deleted, nil
}
