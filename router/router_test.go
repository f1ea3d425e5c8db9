package router

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/prometheus/client_golang/prometheus"
)

func replica(name string, weight int, replay string) ReplicaState {
	l, _ := ParseLSN(replay)
	return ReplicaState{Name: name, Healthy: true, InRecovery: true, Weight: weight, ReplayLSN: l}
}

func primary(weight int) ReplicaState {
	return ReplicaState{Name: "primary", Primary: true, Healthy: true, Weight: weight}
}

func mustBackends(t testing.TB, states ...ReplicaState) *Backends {
	t.Helper()
	b, err := NewBackends(states...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRouteWeightedSplit is the issue's "weights 3:1 split 10,000 reads
// within ±5%", through the whole policy rather than the balancer alone.
func TestRouteWeightedSplit(t *testing.T) {
	cases := []struct {
		name   string
		states []ReplicaState
		want   map[string]float64
	}{
		{"replicas 3:1", []ReplicaState{primary(0), replica("r1", 3, "0/0"), replica("r2", 1, "0/0")},
			map[string]float64{"r1": 0.75, "r2": 0.25}},
		{"primary takes a share", []ReplicaState{primary(1), replica("r1", 3, "0/0")},
			map[string]float64{"primary": 0.25, "r1": 0.75}},
	}
	c := parser.NewClassifier(100, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{}, mustBackends(t, tc.states...))
			counts := map[string]int{}
			for i := range 10000 {
				d := r.Route(c.Classify(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", i)), &SessionState{})
				counts[d.Backend]++
			}
			for name, share := range tc.want {
				want := 10000 * share
				if got := float64(counts[name]); got < want*0.95 || got > want*1.05 {
					t.Errorf("%s got %v reads, want %.0f ±5%% (all: %v)", name, got, want, counts)
				}
			}
		})
	}
}

func TestRouteLagLimits(t *testing.T) {
	lagging := replica("r1", 1, "0/0")
	lagging.LagBytes = 10 << 20
	lagging.Lag = 30 * time.Second
	states := []ReplicaState{primary(0), lagging, replica("r2", 1, "0/0")}
	read := parser.Analyze("SELECT 1 FROM t", nil)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "r1"},
		{Config{MaxReplicaLagBytes: 1 << 20}, "r2"},
		{Config{MaxReplicaLag: 5 * time.Second}, "r2"},
		{Config{MaxReplicaLagBytes: 100 << 20, MaxReplicaLag: time.Minute}, "r1"},
	}
	for _, tc := range cases {
		r := New(tc.cfg, mustBackends(t, states...))
		if d := r.Route(read, &SessionState{}); d.Backend != tc.want {
			t.Errorf("%+v: routed to %s, want %s", tc.cfg, d.Backend, tc.want)
		}
	}
}

func TestRouteHintErrorIsTyped(t *testing.T) {
	r := New(Config{}, mustBackends(t, primary(0), replica("r1", 1, "0/0")))
	d := r.Route(parser.Analyze("/* pgninja:bogus */ SELECT 1", nil), &SessionState{})
	var he *parser.HintError
	if !errors.As(d.Err, &he) || he.SQLState() != "22023" || d.Reason != ReasonInvalidHint {
		t.Errorf("decision %+v, want a 22023 HintError", d)
	}
	d = r.Route(parser.Analyze("SELECT 1", nil), &SessionState{})
	if d.Err != nil {
		t.Errorf("unexpected error %v", d.Err)
	}
}

// TestReadYourWritesFlow follows one client: write, commit LSN recorded,
// the next read waits for a replica that replayed it, then moves back once
// the replica catches up.
func TestReadYourWritesFlow(t *testing.T) {
	backends := mustBackends(t, primary(0), replica("r1", 1, "0/1000"))
	r := New(Config{}, backends)
	c := parser.NewClassifier(100, nil)
	s := &SessionState{}

	ins := c.Classify("INSERT INTO users (name) VALUES ('a')")
	d := r.Route(ins, s)
	if d.Backend != "primary" {
		t.Fatalf("insert went to %s", d.Backend)
	}
	commit := s.Executed(ins, d, Outcome{TxStatus: 'I'})
	if !commit.Needed || strings.Join(commit.Tables, ",") != "users" {
		t.Fatalf("commit = %+v", commit)
	}
	s.Committed(0x2000)
	r.Tracker().NoteCommit(s.ClientKey, commit.Tables, 0x2000)

	sel := c.Classify("SELECT * FROM users WHERE name = 'a'")
	if d := r.Route(sel, s); d.Backend != "primary" || d.Reason != ReasonReadYourWrites || d.RequiredLSN != 0x2000 {
		t.Fatalf("read before replay: %+v", d)
	}
	backends.Update("r1", func(st *ReplicaState) { st.ReplayLSN = 0x2000 })
	if d := r.Route(sel, s); d.Backend != "r1" || d.Reason != ReasonReplicaRead {
		t.Fatalf("read after replay: %+v", d)
	}
	if d := r.Route(sel, &SessionState{}); d.Backend != "r1" {
		t.Fatalf("another client: %+v", d)
	}
}

func TestTableConsistencyAcrossClients(t *testing.T) {
	backends := mustBackends(t, primary(0), replica("r1", 1, "0/1000"))
	tracker := NewLSNTracker()
	r := New(Config{Consistency: TableConsistency}, backends, WithTracker(tracker))
	tracker.NoteWrite([]string{"public.calls"}, 0x5000)
	other := &SessionState{}
	for sql, want := range map[string]string{
		"SELECT * FROM calls":        "primary",
		"SELECT * FROM public.calls": "primary",
		"SELECT * FROM users":        "r1",
		"SELECT 1":                   "r1",
	} {
		if d := r.Route(parser.Analyze(sql, nil), other); d.Backend != want {
			t.Errorf("%q: %s (%s), want %s", sql, d.Backend, d.Reason, want)
		}
	}
	tracker.Prune(backends.Snapshot().MinReplayLSN())
	if tracker.Len() != 1 {
		t.Errorf("prune below the write dropped it")
	}
	backends.Update("r1", func(st *ReplicaState) { st.ReplayLSN = 0x5000 })
	tracker.Prune(backends.Snapshot().MinReplayLSN())
	if tracker.Len() != 0 {
		t.Errorf("prune after replay kept %d entries", tracker.Len())
	}
	if d := r.Route(parser.Analyze("SELECT * FROM calls", nil), other); d.Backend != "r1" {
		t.Errorf("after replay: %+v", d)
	}
}

func TestLSNTracker(t *testing.T) {
	tr := NewLSNTracker()
	tr.NoteWrite([]string{"a", "s.b"}, 10)
	tr.NoteWrite([]string{"a"}, 5) // older: ignored
	tr.NoteCommit("c1", []string{"b"}, 20)
	tr.NoteCommit("c1", nil, 0) // zero: ignored
	cases := []struct {
		tables []string
		want   LSN
	}{
		{nil, 0},
		{[]string{"a"}, 10},
		{[]string{"x.a"}, 10},
		{[]string{"b"}, 20},
		{[]string{"a", "zzz"}, 10},
		{[]string{"zzz"}, 0},
	}
	for _, tc := range cases {
		if got := tr.Required(tc.tables); got != tc.want {
			t.Errorf("Required(%v) = %v, want %v", tc.tables, got, tc.want)
		}
	}
	if tr.Client("c1") != 20 || tr.Client("c2") != 0 || tr.Client("") != 0 || tr.Max() != 20 {
		t.Errorf("client/max: %v %v %v", tr.Client("c1"), tr.Client("c2"), tr.Max())
	}
	tr.Prune(10)
	if tr.Required([]string{"a"}) != 0 || tr.Required([]string{"b"}) != 20 {
		t.Error("prune")
	}
}

func TestParseConsistency(t *testing.T) {
	for in, want := range map[string]Consistency{"": ReadYourWrites, "read_your_writes": ReadYourWrites, "table": TableConsistency, "eventual": Eventual} {
		got, err := ParseConsistency(in)
		if err != nil || got != want {
			t.Errorf("ParseConsistency(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseConsistency("strong"); err == nil {
		t.Error("accepted strong")
	}
}

func TestBackends(t *testing.T) {
	if _, err := NewBackends(primary(0), primary(0)); err == nil {
		t.Error("duplicate names accepted")
	}
	many := make([]ReplicaState, MaxBackends+1)
	for i := range many {
		many[i].Name = fmt.Sprint(i)
	}
	if _, err := NewBackends(many...); err == nil {
		t.Error("too many backends accepted")
	}
	b := mustBackends(t, primary(0), replica("r1", 1, "0/10"), replica("r2", 1, "0/20"))
	old := b.Snapshot()
	if p, ok := old.Primary(); !ok || p.Name != "primary" {
		t.Fatal("no primary")
	}
	if old.MinReplayLSN() != 0x10 {
		t.Errorf("MinReplayLSN = %v", old.MinReplayLSN())
	}
	if !b.Update("primary", func(s *ReplicaState) { s.InRecovery = true; s.Name = "renamed" }) {
		t.Fatal("update failed")
	}
	if b.Update("nope", func(*ReplicaState) {}) {
		t.Error("update of unknown backend succeeded")
	}
	if _, ok := b.Snapshot().Primary(); ok {
		t.Error("a primary in recovery is still writable")
	}
	if _, ok := b.Snapshot().Get("primary"); !ok {
		t.Error("Update renamed the backend")
	}
	if _, ok := old.Primary(); !ok {
		t.Error("old snapshot changed under its reader")
	}
}

func TestSessionExecuted(t *testing.T) {
	c := func(sql string) *parser.Classification { return parser.Analyze(sql, nil) }
	onPrimary := Decision{Target: Primary, Backend: "primary", Reason: ReasonExplicitTxn}
	onReplica := Decision{Target: Replica, Backend: "r1", Reason: ReasonReadOnlyTxn}

	t.Run("read-write transaction commits its writes", func(t *testing.T) {
		s := &SessionState{}
		if cm := s.Executed(c("BEGIN"), onPrimary, Outcome{TxStatus: 'T'}); cm.Needed {
			t.Fatal("BEGIN needs no LSN")
		}
		if !s.InTxn || !s.TxnBound || s.TxnBackend != "primary" || s.TxnReason != ReasonExplicitTxn {
			t.Fatalf("after BEGIN: %+v", s)
		}
		s.Executed(c("UPDATE a SET x = 1"), onPrimary, Outcome{TxStatus: 'T'})
		s.Executed(c("INSERT INTO b VALUES (1)"), onPrimary, Outcome{TxStatus: 'T'})
		cm := s.Executed(c("COMMIT"), onPrimary, Outcome{TxStatus: 'I'})
		if !cm.Needed || strings.Join(cm.Tables, ",") != "a,b" || s.InTxn || s.TxnBound {
			t.Fatalf("commit %+v state %+v", cm, s)
		}
	})
	t.Run("schema changes are marked for every client", func(t *testing.T) {
		onP := Decision{Target: Primary, Backend: "primary"}
		tests := []struct {
			name   string
			stmts  []string
			schema bool
		}{
			{"autocommit DDL", []string{"CREATE TABLE t (i int)"}, true},
			{"autocommit write", []string{"INSERT INTO t VALUES (1)"}, false},
			{"DDL inside a transaction", []string{"BEGIN", "INSERT INTO t VALUES (1)", "ALTER TABLE t ADD j int", "INSERT INTO t VALUES (2)", "COMMIT"}, true},
			{"writes inside a transaction", []string{"BEGIN", "INSERT INTO t VALUES (1)", "COMMIT"}, false},
			{"DDL in one string", []string{"BEGIN; CREATE INDEX ON t (i); COMMIT"}, true},
			{"a temp table is no one else's", []string{"CREATE TEMP TABLE tt (i int)"}, false},
			{"a temp table beside real DDL", []string{"CREATE TEMP TABLE tt (i int); CREATE TABLE t2 (i int)"}, true},
		}
		for _, tt := range tests {
			s := &SessionState{}
			var cm Commit
			for i, sql := range tt.stmts {
				status := byte('T')
				if i == len(tt.stmts)-1 {
					status = 'I'
				}
				cm = s.Executed(c(sql), onP, Outcome{TxStatus: status})
			}
			if !cm.Needed || cm.Schema != tt.schema {
				t.Errorf("%s: commit %+v, want schema %v", tt.name, cm, tt.schema)
			}
		}
		// The mark ends with its transaction.
		s := &SessionState{}
		s.Executed(c("BEGIN"), onP, Outcome{TxStatus: 'T'})
		s.Executed(c("DROP TABLE t"), onP, Outcome{TxStatus: 'T'})
		s.Executed(c("COMMIT"), onP, Outcome{TxStatus: 'I'})
		if cm := s.Executed(c("INSERT INTO u VALUES (1)"), onP, Outcome{TxStatus: 'I'}); cm.Schema {
			t.Errorf("a later write inherited the schema mark: %+v", cm)
		}
	})
	t.Run("rollback and failed transactions commit nothing", func(t *testing.T) {
		s := &SessionState{}
		s.Executed(c("BEGIN"), onPrimary, Outcome{TxStatus: 'T'})
		s.Executed(c("UPDATE a SET x = 1"), onPrimary, Outcome{TxStatus: 'T'})
		if cm := s.Executed(c("ROLLBACK"), onPrimary, Outcome{TxStatus: 'I'}); cm.Needed {
			t.Error("ROLLBACK needs no LSN")
		}
		s.Executed(c("BEGIN"), onPrimary, Outcome{TxStatus: 'T'})
		s.Executed(c("UPDATE a SET x = 1/0"), onPrimary, Outcome{TxStatus: 'E', Failed: true})
		if cm := s.Executed(c("COMMIT"), onPrimary, Outcome{TxStatus: 'I'}); cm.Needed {
			t.Error("COMMIT of a failed transaction is a rollback")
		}
	})
	t.Run("read-only transaction on a replica writes nothing", func(t *testing.T) {
		s := &SessionState{}
		s.Executed(c("BEGIN READ ONLY"), onReplica, Outcome{TxStatus: 'T'})
		if s.TxnTarget != Replica || s.TxnReadOnly != parser.ReadOnly || s.TxnReason != ReasonReadOnlyTxn {
			t.Fatalf("state %+v", s)
		}
		s.Executed(c("SELECT random()"), onReplica, Outcome{TxStatus: 'T'})
		if cm := s.Executed(c("COMMIT"), onReplica, Outcome{TxStatus: 'I'}); cm.Needed {
			t.Error("replica transaction asked for an LSN")
		}
	})
	t.Run("autocommit", func(t *testing.T) {
		s := &SessionState{}
		if cm := s.Executed(c("SELECT 1"), Decision{Target: Replica, Backend: "r1"}, Outcome{TxStatus: 'I'}); cm.Needed {
			t.Error("read asked for an LSN")
		}
		if cm := s.Executed(c("SELECT nextval('s')"), Decision{Target: Primary, Backend: "primary"}, Outcome{TxStatus: 'I'}); !cm.Needed {
			t.Error("volatile function on the primary may write")
		}
		if cm := s.Executed(c("BEGIN; INSERT INTO t VALUES (1); COMMIT"), Decision{Target: Primary}, Outcome{TxStatus: 'I'}); !cm.Needed || cm.Tables[0] != "t" {
			t.Errorf("whole transaction in one string: %+v", cm)
		}
		if cm := s.Executed(c("COMMIT; BEGIN; ROLLBACK"), Decision{Target: Primary}, Outcome{TxStatus: 'I'}); cm.Needed {
			t.Errorf("nothing written: %+v", cm)
		}
	})
	t.Run("deferred BEGIN binds on first statement", func(t *testing.T) {
		s := &SessionState{InTxn: true}
		d := Decide(c("SET TRANSACTION READ ONLY"), s)
		if d.Target != Replica {
			t.Fatalf("decide %+v", d)
		}
		d.Backend = "r1"
		s.Executed(c("SET TRANSACTION READ ONLY"), d, Outcome{TxStatus: 'T'})
		if !s.TxnBound || s.TxnBackend != "r1" {
			t.Fatalf("state %+v", s)
		}
		if d := Decide(c("SELECT * FROM t FOR UPDATE"), s); d.Backend != "r1" || d.Reason != ReasonReadOnlyTxn {
			t.Errorf("inside: %+v", d)
		}
	})
	t.Run("startup defaults", func(t *testing.T) {
		any := Decision{Target: Primary, Backend: "primary"}
		tests := []struct {
			name     string
			startup  map[string]string
			reset    string
			route    parser.Hint
			readOnly bool
			nonStd   bool
		}{
			{"route", map[string]string{"pgninja.route": "replica"}, "RESET pgninja.route", parser.HintReplica, false, false},
			{"route via RESET ALL", map[string]string{"pgninja.route": " Primary "}, "RESET ALL", parser.HintPrimary, false, false},
			{"read only", map[string]string{"default_transaction_read_only": "on"}, "RESET default_transaction_read_only", parser.HintNone, true, false},
			{"non-standard strings", map[string]string{"standard_conforming_strings": "off"}, "SET standard_conforming_strings TO DEFAULT", parser.HintNone, false, true},
			{"none", map[string]string{"application_name": "x"}, "RESET ALL", parser.HintNone, false, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := &SessionState{}
				if err := s.ApplyStartup(tt.startup); err != nil {
					t.Fatal(err)
				}
				check := func(when string) {
					t.Helper()
					if s.RouteHint != tt.route || s.DefaultReadOnly != tt.readOnly || s.NonStandardStrings != tt.nonStd {
						t.Fatalf("%s: %+v", when, s)
					}
				}
				check("at login")
				s.Executed(c("SET pgninja.route = 'auto'"), any, Outcome{TxStatus: 'I'})
				s.Executed(c("SET default_transaction_read_only = off"), any, Outcome{TxStatus: 'I'})
				s.Executed(c("SET standard_conforming_strings = on"), any, Outcome{TxStatus: 'I'})
				if s.RouteHint != parser.HintAuto || s.DefaultReadOnly || s.NonStandardStrings {
					t.Fatalf("after SETs: %+v", s)
				}
				s.Executed(c("RESET ALL"), any, Outcome{TxStatus: 'I'})
				check("after RESET ALL")
				s.Executed(c("SET pgninja.route = 'auto'"), any, Outcome{TxStatus: 'I'})
				s.Executed(c("SET default_transaction_read_only = off"), any, Outcome{TxStatus: 'I'})
				s.Executed(c("SET standard_conforming_strings = on"), any, Outcome{TxStatus: 'I'})
				s.Executed(c(tt.reset), any, Outcome{TxStatus: 'I'})
				switch {
				case strings.Contains(tt.reset, "route") && s.RouteHint != tt.route,
					strings.Contains(tt.reset, "read_only") && s.DefaultReadOnly != tt.readOnly,
					strings.Contains(tt.reset, "conforming") && s.NonStandardStrings != tt.nonStd:
					t.Fatalf("after %s: %+v", tt.reset, s)
				}
			})
		}
		if err := (&SessionState{}).ApplyStartup(map[string]string{"pgninja.route": "sideways"}); err == nil {
			t.Fatal("an unknown startup route was accepted")
		}
	})
	t.Run("settings", func(t *testing.T) {
		s := &SessionState{}
		any := Decision{Target: Primary, Backend: "primary"}
		s.Executed(c("SET pgninja.route = 'replica'"), any, Outcome{TxStatus: 'I'})
		s.Executed(c("SET default_transaction_read_only = on"), any, Outcome{TxStatus: 'I'})
		s.Executed(c("SET standard_conforming_strings = off"), any, Outcome{TxStatus: 'I'})
		if s.RouteHint != parser.HintReplica || !s.DefaultReadOnly || !s.NonStandardStrings {
			t.Fatalf("after SETs: %+v", s)
		}
		s.Executed(c("SET pgninja.route = 'primary'"), any, Outcome{TxStatus: 'I', Failed: true})
		if s.RouteHint != parser.HintReplica {
			t.Error("a failed SET changed the route")
		}
		s.Executed(c("SET LOCAL default_transaction_read_only = off"), any, Outcome{TxStatus: 'I'})
		if !s.DefaultReadOnly {
			t.Error("SET LOCAL changed the session")
		}
		s.Executed(c("RESET ALL"), any, Outcome{TxStatus: 'I'})
		// Back to the session's defaults: no startup settings, so none.
		if s.RouteHint != parser.HintNone || s.DefaultReadOnly || s.NonStandardStrings {
			t.Fatalf("after RESET ALL: %+v", s)
		}
		s.Executed(c("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"), any, Outcome{TxStatus: 'I'})
		if !s.DefaultReadOnly {
			t.Error("SESSION CHARACTERISTICS READ ONLY")
		}
		s.Executed(c("SET default_transaction_read_only TO DEFAULT"), any, Outcome{TxStatus: 'I'})
		if s.DefaultReadOnly {
			t.Error("TO DEFAULT")
		}
	})
	t.Run("serializable", func(t *testing.T) {
		any := Decision{Target: Primary, Backend: "primary"}
		for _, tt := range []struct {
			name    string
			startup map[string]string
			stmts   []string
			want    bool
		}{
			{"SET", nil, []string{"SET default_transaction_isolation = 'serializable'"}, true},
			{"SET in capitals", nil, []string{"SET default_transaction_isolation TO 'SERIALIZABLE'"}, true},
			{"SESSION CHARACTERISTICS", nil, []string{"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"}, true},
			{"another level", nil, []string{"SET default_transaction_isolation = 'repeatable read'"}, false},
			{"SET LOCAL", nil, []string{"SET LOCAL default_transaction_isolation = 'serializable'"}, false},
			{"RESET", nil, []string{"SET default_transaction_isolation = 'serializable'", "RESET default_transaction_isolation"}, false},
			{"startup", map[string]string{"default_transaction_isolation": "serializable"}, nil, true},
			{"startup, then RESET ALL", map[string]string{"default_transaction_isolation": "serializable"},
				[]string{"SET default_transaction_isolation = 'read committed'", "RESET ALL"}, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := &SessionState{}
				if err := s.ApplyStartup(tt.startup); err != nil {
					t.Fatal(err)
				}
				for _, q := range tt.stmts {
					s.Executed(c(q), any, Outcome{TxStatus: 'I'})
				}
				if s.DefaultSerializable != tt.want {
					t.Fatalf("DefaultSerializable = %v, want %v", s.DefaultSerializable, tt.want)
				}
				want := ReasonReplicaRead
				if tt.want {
					want = ReasonSerializable
				}
				if d := Decide(c("SELECT * FROM t"), s); d.Reason != want {
					t.Errorf("a read went by %s, want %s", d.Reason, want)
				}
			})
		}
		s := &SessionState{}
		s.Executed(c("BEGIN READ ONLY"), Decision{Target: Replica, Backend: "r1"}, Outcome{TxStatus: 'T'})
		s.Executed(c("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), Decision{Target: Replica, Backend: "r1"}, Outcome{TxStatus: 'T'})
		if s.TxnIsolation != "serializable" {
			t.Fatalf("in the transaction: %+v", s)
		}
		s.Executed(c("COMMIT"), Decision{Target: Replica, Backend: "r1"}, Outcome{TxStatus: 'I'})
		if s.TxnIsolation != "" {
			t.Fatalf("after COMMIT: %+v", s)
		}
	})
	t.Run("pins", func(t *testing.T) {
		s := &SessionState{}
		ran := func(sql string) Outcome { return Outcome{TxStatus: 'I', Pins: c(sql).Pins} }
		s.Executed(c("SELECT 1"), Decision{Target: Replica, Backend: "r1"}, ran("SELECT 1"))
		if s.Pinned {
			t.Fatal("pinned by a plain read")
		}
		// The proxy prepares a SQL statement again wherever its EXECUTE
		// runs, so PREPARE leaves the client's reads to the replicas.
		s.Executed(c("PREPARE q AS SELECT 1"), Decision{Target: Primary, Backend: "primary"}, ran("PREPARE q AS SELECT 1"))
		if s.Pinned {
			t.Fatal("pinned by PREPARE")
		}
		// A statement that was only Parse'd and described ran nothing.
		s.Executed(c("LISTEN x"), Decision{Target: Replica, Backend: "r1"}, Outcome{TxStatus: 'I'})
		if s.Pinned {
			t.Fatal("pinned by a statement that did not run")
		}
		s.Executed(c("LISTEN x"), Decision{Target: Primary, Backend: "primary"}, ran("LISTEN x"))
		if !s.Pinned || s.PinnedBackend != "primary" {
			t.Fatalf("LISTEN did not pin: %+v", s)
		}
		if d := Decide(c("SELECT 1"), s); d.Backend != "primary" || d.Reason != ReasonSessionPin {
			t.Errorf("pinned decide: %+v", d)
		}
		s.Unpin()
		if d := Decide(c("SELECT 1"), s); d.Reason != ReasonReplicaRead {
			t.Errorf("after Unpin: %+v", d)
		}
	})
}

func TestGucBool(t *testing.T) {
	for in, want := range map[string]bool{"on": true, "ON": true, "true": true, "t": true, "yes": true, "y": true, "1": true,
		"off": false, "false": false, "no": false, "0": false, "": false, "maybe": false, "o": false} {
		if got := gucBool([]string{in}); got != want {
			t.Errorf("gucBool(%q) = %v", in, got)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	lag := replica("r1", 1, "0/10")
	lag.LagBytes = 1234
	backends := mustBackends(t, primary(0), lag)
	m, err := NewMetrics(reg, backends)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg, backends); err == nil {
		t.Error("registering twice on one registry should fail")
	}
	r := New(Config{}, backends, WithMetrics(m))
	for _, sql := range []string{"SELECT 1", "SELECT 1", "INSERT INTO t VALUES (1)", "SELEC"} {
		r.Route(parser.Analyze(sql, nil), &SessionState{})
	}
	m.Observe(Decision{Target: Replica, Reason: "custom"})
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`pgninja_route_decisions_total{reason="replica_read",target="replica"}`: 2,
		`pgninja_route_decisions_total{reason="write",target="primary"}`:        1,
		`pgninja_route_decisions_total{reason="parse_error",target="primary"}`:  1,
		`pgninja_route_decisions_total{reason="custom",target="replica"}`:       1,
		`pgninja_route_decisions_total{reason="locking",target="primary"}`:      0,
		`pgninja_replica_lag_bytes{backend="r1",role="replica"}`:                1234,
		`pgninja_backend_up{backend="primary",role="primary"}`:                  1,
		`pgninja_backend_up{backend="r1",role="replica"}`:                       1,
		`pgninja_backend_in_recovery{backend="r1",role="replica"}`:              1,
		`pgninja_backend_replay_lsn{backend="r1",role="replica"}`:               16,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

// gather flattens a registry into "name{label=value,...}" -> value, labels
// sorted as Prometheus sorts them.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// TestRouteConcurrentWithUpdates: routing reads snapshots while the health
// checker swaps them (run with -race).
func TestRouteConcurrentWithUpdates(t *testing.T) {
	backends := mustBackends(t, primary(0), replica("r1", 1, "0/0"), replica("r2", 1, "0/0"))
	r := New(Config{}, backends)
	read := parser.Analyze("SELECT * FROM t", nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			backends.Update("r1", func(s *ReplicaState) { s.Healthy = i%2 == 0; s.ReplayLSN = LSN(i) })
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &SessionState{}
			for range 5000 {
				d := r.Route(read, s)
				if d.Backend != "r1" && d.Backend != "r2" {
					t.Errorf("goroutine %d: %+v", g, d)
					return
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// Under table consistency a write whose tables the text does not name (a
// procedure, a function that is not a built-in) holds every table's reads
// until a replica has it.
func TestTableConsistencyWriteOfUnnamedTables(t *testing.T) {
	backends := mustBackends(t, primary(0), replica("r1", 1, "0/1000"))
	tracker := NewLSNTracker()
	r := New(Config{Consistency: TableConsistency}, backends, WithTracker(tracker))
	writer, other := &SessionState{ClientKey: "w"}, &SessionState{ClientKey: "o"}
	for _, tc := range []struct {
		sql     string
		unnamed bool
	}{
		{"INSERT INTO calls VALUES (1)", false},
		{"SELECT nextval('calls_id_seq')", false},
		{"SELECT archive_calls(30)", true},
		{"CALL refresh_stats()", true},
	} {
		c := parser.Analyze(tc.sql, nil)
		commit := writer.Executed(c, r.Route(c, writer), Outcome{TxStatus: 'I'})
		if !commit.Needed || slices.Contains(commit.Tables, AnyTable) != tc.unnamed {
			t.Errorf("%q: commit %+v, want AnyTable among its tables: %v", tc.sql, commit, tc.unnamed)
		}
	}
	reads := func(when string, want map[string]string) {
		t.Helper()
		for sql, backend := range want {
			if d := r.Route(parser.Analyze(sql, nil), other); d.Backend != backend {
				t.Errorf("%s: %q went to %s (%s), want %s", when, sql, d.Backend, d.Reason, backend)
			}
		}
	}
	tracker.NoteCommit("w", []string{AnyTable}, 0x5000)
	reads("before replay", map[string]string{"SELECT * FROM users": "primary", "SELECT 1": "r1"})
	backends.Update("r1", func(st *ReplicaState) { st.ReplayLSN = 0x5000 })
	reads("after replay", map[string]string{"SELECT * FROM users": "r1"})
	tracker.NoteUnknown("w", []string{AnyTable}, false, time.Now())
	reads("position unknown", map[string]string{"SELECT * FROM users": "primary"})
}
