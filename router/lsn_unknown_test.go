package router

import (
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/parser"
)

// A commit of unknown position holds what it wrote on the primary until a
// primary position sampled after it is known, and no longer.
func TestLSNTrackerUnknownCommits(t *testing.T) {
	t0 := time.Now()
	tr := NewLSNTracker()
	tr.NoteCommit("c1", []string{"a"}, 10)
	tr.NoteUnknown("c1", []string{"public.calls"}, false, t0)
	tr.NoteUnknown("c2", []string{"calls", "b"}, true, t0.Add(time.Second))

	type state struct {
		calls, b, a, c1, c2, schema, max LSN
	}
	read := func() state {
		return state{tr.Required([]string{"calls"}), tr.Required([]string{"x.b"}), tr.Required([]string{"a"}),
			tr.Client("c1"), tr.Client("c2"), tr.Schema(), tr.Max()}
	}
	for _, step := range []struct {
		name    string
		lsn     LSN
		sampled time.Time
		want    state
	}{
		{"both unknown", 0, time.Time{},
			state{unknownLSN, unknownLSN, 10, unknownLSN, unknownLSN, unknownLSN, unknownLSN}},
		{"a sample sent before either settles nothing", 50, t0.Add(-time.Millisecond),
			state{unknownLSN, unknownLSN, 10, unknownLSN, unknownLSN, unknownLSN, unknownLSN}},
		{"a sample between them settles the first", 60, t0.Add(time.Millisecond),
			state{unknownLSN, unknownLSN, 10, 60, unknownLSN, unknownLSN, unknownLSN}},
		{"a later sample settles the second", 70, t0.Add(2 * time.Second),
			state{70, 70, 10, 60, 70, 70, 70}},
	} {
		if step.lsn != 0 {
			tr.Settle(step.lsn, step.sampled)
		}
		if got := read(); got != step.want {
			t.Errorf("%s: %+v, want %+v", step.name, got, step.want)
		}
	}
	tr.Prune(70)
	if tr.Len() != 0 {
		t.Errorf("%d entries left after every replica replayed the settled commits", tr.Len())
	}
}

// A table consistent read waits on the primary for a commit of unknown
// position to its table, and on a replica for none.
func TestRouteAroundUnknownCommit(t *testing.T) {
	backends := mustBackends(t, primary(0), replica("r1", 1, "0/1000"))
	tracker := NewLSNTracker()
	r := New(Config{Consistency: TableConsistency}, backends, WithTracker(tracker))
	tracker.NoteUnknown("", []string{"calls"}, false, time.Now())
	other := &SessionState{}
	for sql, want := range map[string]string{
		"SELECT * FROM calls": "primary",
		"SELECT * FROM users": "r1",
	} {
		if d := r.Route(parser.Analyze(sql, nil), other); d.Backend != want {
			t.Errorf("%q: %s (%s), want %s", sql, d.Backend, d.Reason, want)
		}
	}
}
