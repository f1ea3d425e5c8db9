package parser

import "testing"

func TestSequences(t *testing.T) {
	const (
		none  SeqUse = 0
		reads        = SeqReadsPrior
		sets         = SeqMaySet
	)
	cases := []struct {
		sql  string
		want SeqUse
	}{
		{"SELECT currval('call_records_id_seq')", reads},
		{"SELECT pg_catalog.lastval()", reads},
		{"SELECT lastval() + 1 FROM call_records LIMIT 1", reads},
		{"SELECT nextval('s')", sets},
		{"SELECT setval('s', 10)", sets},
		{"SELECT my_function()", sets}, // unknown: may call nextval
		{"SELECT now(), abs(-1)", none},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 1", none},
		{"INSERT INTO call_records (caller_phone) VALUES ('1')", sets}, // a serial default
		{"UPDATE t SET x = 1", sets},
		{"CREATE TABLE t2 (id serial)", sets},
		{"DISCARD SEQUENCES", sets},
		{"SELEC 1", sets},
		{"BEGIN", none},
		{"SET search_path = a", none},
		// Order within a string decides.
		{"INSERT INTO t (x) VALUES (1); SELECT currval('t_id_seq')", sets},
		{"SELECT currval('t_id_seq'); INSERT INTO t (x) VALUES (1)", reads | sets},
		{"BEGIN; SELECT lastval(); COMMIT", reads},
		{"SELECT 1; SELECT currval('s')", reads},
		// One statement that sets too counts as setting first.
		{"INSERT INTO t (id) VALUES (nextval('s')) RETURNING currval('s')", sets},
		{"SELECT nextval('s'), currval('s')", sets},
		// EXPLAIN only plans; EXPLAIN ANALYZE runs.
		{"EXPLAIN SELECT currval('s')", none},
		{"EXPLAIN ANALYZE SELECT currval('s')", reads},
	}
	c := NewClassifier(100, nil)
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			for _, got := range []*Classification{Analyze(tc.sql, nil), c.Classify(tc.sql)} {
				if got.Sequences != tc.want {
					t.Errorf("Sequences = %02b, want %02b", got.Sequences, tc.want)
				}
			}
		})
	}
}
