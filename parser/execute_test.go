package parser

import (
	"slices"
	"testing"
)

// An EXECUTE classifies as the statement its PREPARE made, with the
// EXECUTE's own parameters, hint and name.
func TestExecuting(t *testing.T) {
	cases := []struct {
		name, prepare, execute string
		kind                   Kind
		reads, writes, funcs   []string
		volatile, locking      bool
		pins                   Pins
		seq                    SeqUse
	}{
		{name: "read", prepare: "PREPARE q(int) AS SELECT abalance FROM pgbench_accounts WHERE aid = $1", execute: "EXECUTE q(5)",
			kind: Read, reads: []string{"pgbench_accounts"}, pins: PinExecute},
		{name: "write", prepare: "PREPARE ins AS INSERT INTO call_records (user_id) VALUES ($1)", execute: "EXECUTE ins(7)",
			kind: Write, writes: []string{"call_records"}, pins: PinExecute, seq: SeqMaySet},
		{name: "locking read", prepare: "PREPARE l AS SELECT * FROM users WHERE id = $1 FOR UPDATE", execute: "EXECUTE l(1)",
			kind: Read, reads: []string{"users"}, locking: true, pins: PinExecute},
		{name: "session advisory lock", prepare: "PREPARE lk AS SELECT pg_advisory_lock(42)", execute: "EXECUTE lk",
			kind: Read, funcs: []string{"pg_advisory_lock"}, volatile: true, pins: PinExecute | PinAdvisoryLock, seq: SeqMaySet},
		{name: "volatile parameter", prepare: "PREPARE q2(int) AS SELECT $1", execute: "EXECUTE q2(nextval('s'))",
			kind: Read, funcs: []string{"nextval"}, volatile: true, pins: PinExecute, seq: SeqMaySet},
		{name: "parameter subquery", prepare: "PREPARE q3(int) AS SELECT * FROM users WHERE id = $1", execute: "EXECUTE q3((SELECT max(user_id) FROM whitelists))",
			kind: Read, reads: []string{"users", "whitelists"}, funcs: []string{"max"}, pins: PinExecute},
		{name: "currval reads the session's value", prepare: "PREPARE cv AS SELECT currval('s')", execute: "EXECUTE cv",
			kind: Read, funcs: []string{"currval"}, volatile: true, pins: PinExecute, seq: SeqReadsPrior},
	}
	c := NewClassifier(64, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prep := c.Classify(tc.prepare)
			if prep.Prepared == nil {
				t.Fatalf("%q: no Prepared", tc.prepare)
			}
			exec := c.Classify(tc.execute)
			got := c.Executing(exec, prep.Prepared)
			if got.Kind != tc.kind || !slices.Equal(got.ReadTables, tc.reads) || !slices.Equal(got.WriteTables, tc.writes) ||
				!slices.Equal(got.Functions, tc.funcs) || got.VolatileFunc != tc.volatile || got.Locking != tc.locking ||
				got.Pins != tc.pins || got.Sequences != tc.seq {
				t.Errorf("got kind %v reads %v writes %v funcs %v volatile %v locking %v pins %v seq %v",
					got.Kind, got.ReadTables, got.WriteTables, got.Functions, got.VolatileFunc, got.Locking, got.Pins, got.Sequences)
			}
			if got.StatementName != exec.StatementName || got.Normalized != exec.Normalized || got.Fingerprint != exec.Fingerprint {
				t.Errorf("the EXECUTE's name and text are lost: %q %q", got.StatementName, got.Normalized)
			}
			if exec.Kind != Utility || exec.Prepared != nil {
				t.Errorf("the EXECUTE's own classification changed: %v", exec.Kind)
			}
		})
	}
}

// Only a string that is one PREPARE says what it prepares: of several,
// the proxy does not follow the statements one by one.
func TestPreparedOnlyAlone(t *testing.T) {
	c := NewClassifier(64, nil)
	for sql, want := range map[string]bool{
		"PREPARE a AS SELECT 1":                        true,
		"PREPARE a AS SELECT 1; PREPARE b AS SELECT 2": false,
		"SELECT 1; PREPARE a AS SELECT 1":              false,
		"EXECUTE a":                                    false,
		"PREPARE a AS SELEC 1":                         false,
	} {
		if got := c.Classify(sql).Prepared != nil; got != want {
			t.Errorf("%q: Prepared set %v, want %v", sql, got, want)
		}
	}
}

// A write the text does not name tables for is marked, so that table
// consistency can make every table's reads wait for it.
func TestUnnamedWrites(t *testing.T) {
	c := NewClassifier(64, nil)
	for _, tc := range []struct {
		sql, prepare string // with prepare, sql is an EXECUTE of it
		want         bool
	}{
		{sql: "INSERT INTO call_records (user_id) VALUES (1)"},
		{sql: "SELECT random(), now(), nextval('s')"},
		{sql: "SELECT pg_advisory_lock(1)"},
		{sql: "SELECT archive_calls(30)", want: true},
		{sql: "INSERT INTO call_records (user_id) VALUES (new_user())", want: true},
		{sql: "CALL refresh_stats()", want: true},
		{sql: "DO $$BEGIN DELETE FROM conversations; END$$", want: true},
		{sql: "EXECUTE unknown_stmt", want: true},
		{sql: "EXECUTE q", prepare: "PREPARE q AS SELECT 1"},
		{sql: "EXECUTE q(1)", prepare: "PREPARE q(int) AS UPDATE users SET name = 'x' WHERE id = $1"},
		{sql: "EXECUTE q(archive_calls(30))", prepare: "PREPARE q(int) AS SELECT $1", want: true},
		{sql: "EXECUTE q", prepare: "PREPARE q AS SELECT archive_calls(30)", want: true},
	} {
		got := c.Classify(tc.sql)
		if tc.prepare != "" {
			got = c.Executing(got, c.Classify(tc.prepare).Prepared)
		}
		if got.UnnamedWrites != tc.want {
			t.Errorf("%q (prepared %q): UnnamedWrites %v, want %v", tc.sql, tc.prepare, got.UnnamedWrites, tc.want)
		}
	}
}
