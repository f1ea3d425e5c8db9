package parser

import (
	"errors"
	"slices"
	"testing"
)

// expect lists the fields a case checks; zero values are checked too, so
// each case states everything that is true of its statement.
type expect struct {
	kind         Kind
	reads        []string
	writes       []string
	funcs        []string
	volatile     bool
	locking      bool
	advisory     bool
	selectInto   bool
	copyIn       bool
	modifyingCTE bool
	explainWrite bool
	multi        bool
	readOnly     AccessMode
	pins         Pins
	releases     Pins
	held, closed []string
	isolation    string
	start        bool
	chain        bool
	stmtName     string
	hint         Hint
	hintErr      bool
	route        Hint
	parseErr     bool
}

func TestClassify(t *testing.T) {
	cases := []struct {
		sql  string
		want expect
	}{
		// pgbench
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", expect{kind: Read, reads: []string{"pgbench_accounts"}}},
		{"UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;", expect{kind: Write, writes: []string{"pgbench_accounts"}}},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 5, -1234, CURRENT_TIMESTAMP);", expect{kind: Write, writes: []string{"pgbench_history"}}},
		{"BEGIN;", expect{kind: TxnBegin}},
		{"END;", expect{kind: TxnCommit}},

		// qualification as written, CTE names are not tables, joins and subqueries
		{"SELECT * FROM public.users u JOIN whitelists w ON w.user_id = u.id WHERE u.id IN (SELECT user_id FROM spam_profiles)",
			expect{kind: Read, reads: []string{"public.users", "whitelists", "spam_profiles"}}},
		{"WITH recent AS (SELECT * FROM call_records WHERE started_at > now() - interval '1 day') SELECT count(*) FROM recent",
			expect{kind: Read, reads: []string{"call_records"}, funcs: []string{"count", "now"}}},
		{"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 10) SELECT * FROM r", expect{kind: Read}},
		{"SELECT * FROM mydb.app.t", expect{kind: Read, reads: []string{"mydb.app.t"}}},

		// writes hidden in reads
		{"WITH d AS (DELETE FROM user_spam_interactions WHERE created_at < now() RETURNING *) SELECT count(*) FROM d",
			expect{kind: Write, writes: []string{"user_spam_interactions"}, funcs: []string{"count", "now"}, modifyingCTE: true}},
		{"WITH u AS (UPDATE users SET seen = true WHERE id = 1 RETURNING id) INSERT INTO audit SELECT id FROM u",
			expect{kind: Write, writes: []string{"audit", "users"}, modifyingCTE: true}},
		{"SELECT * INTO archive FROM conversations", expect{kind: Write, reads: []string{"conversations"}, writes: []string{"archive"}, selectInto: true}},
		{"SELECT * INTO TEMP tmp_x FROM conversations", expect{kind: Write, reads: []string{"conversations"}, writes: []string{"tmp_x"}, selectInto: true, pins: PinTempTable}},
		{"INSERT INTO t SELECT * FROM t", expect{kind: Write, reads: []string{"t"}, writes: []string{"t"}}},
		{"MERGE INTO user_configs c USING staging s ON c.user_id = s.user_id WHEN MATCHED THEN UPDATE SET v = s.v",
			expect{kind: Write, reads: []string{"staging"}, writes: []string{"user_configs"}}},
		{"DELETE FROM whitelists USING users WHERE users.id = whitelists.user_id", expect{kind: Write, reads: []string{"users"}, writes: []string{"whitelists"}}},
		{"TRUNCATE a, public.b", expect{kind: Write, writes: []string{"a", "public.b"}}},
		{"REFRESH MATERIALIZED VIEW CONCURRENTLY dashboard_daily", expect{kind: Write, writes: []string{"dashboard_daily"}}},
		{"CALL rollup_calls(1)", expect{kind: Write, funcs: []string{"rollup_calls"}, volatile: true}},
		{"DO $$ BEGIN PERFORM 1; END $$", expect{kind: Write}},
		{"COPY users FROM STDIN", expect{kind: Write, writes: []string{"users"}, copyIn: true}},
		{"COPY users FROM '/tmp/users.csv'", expect{kind: Write, writes: []string{"users"}}},
		{"COPY users FROM PROGRAM 'cat /tmp/users.csv'", expect{kind: Write, writes: []string{"users"}}},
		{"INSERT INTO users VALUES (1); COPY users FROM STDIN", expect{kind: Write, writes: []string{"users"}, copyIn: true, multi: true}},
		{"COPY users TO STDOUT", expect{kind: Read, reads: []string{"users"}}},
		{"COPY (SELECT * FROM users) TO STDOUT", expect{kind: Read, reads: []string{"users"}}},
		{"COPY users TO '/tmp/users.csv'", expect{kind: Utility, reads: []string{"users"}}},
		{"COMMIT PREPARED 'gid1'", expect{kind: Write}},

		// functions and volatility
		{"SELECT now(), lower(name), coalesce(a, b) FROM users", expect{kind: Read, reads: []string{"users"}, funcs: []string{"now", "lower"}}},
		{"SELECT random()", expect{kind: Read, funcs: []string{"random"}, volatile: true}},
		{"SELECT nextval('s')", expect{kind: Read, funcs: []string{"nextval"}, volatile: true}},
		{"SELECT pg_catalog.now()", expect{kind: Read, funcs: []string{"pg_catalog.now"}}},
		{"SELECT my_fn(1)", expect{kind: Read, funcs: []string{"my_fn"}, volatile: true}},
		{"SELECT extract(year FROM now()), ts AT TIME ZONE 'UTC' FROM t", expect{kind: Read, reads: []string{"t"}, funcs: []string{"extract", "now", "timezone"}}},
		{"SELECT * FROM generate_series(1, 10)", expect{kind: Read, funcs: []string{"generate_series"}}},
		{"SELECT pg_advisory_lock(42)", expect{kind: Read, funcs: []string{"pg_advisory_lock"}, volatile: true, advisory: true, pins: PinAdvisoryLock}},
		{"SELECT pg_advisory_xact_lock(42)", expect{kind: Read, funcs: []string{"pg_advisory_xact_lock"}, volatile: true, advisory: true}},
		{"SELECT pg_catalog.pg_try_advisory_xact_lock_shared(1, 2)", expect{kind: Read, funcs: []string{"pg_catalog.pg_try_advisory_xact_lock_shared"}, volatile: true, advisory: true}},
		{"SELECT x FROM t WHERE pg_try_advisory_lock_shared(x)", expect{kind: Read, reads: []string{"t"}, funcs: []string{"pg_try_advisory_lock_shared"}, volatile: true, advisory: true, pins: PinAdvisoryLock}},
		// EXPLAIN without ANALYZE runs nothing.
		{"EXPLAIN SELECT pg_advisory_xact_lock(42)", expect{kind: Read, funcs: []string{"pg_advisory_xact_lock"}, volatile: true}},
		{"SELECT set_config('search_path', 'x', false)", expect{kind: Read, funcs: []string{"set_config"}, volatile: true, pins: PinSetConfig}},
		{"SELECT set_config('app.user_id', '42', true)", expect{kind: Read, funcs: []string{"set_config"}, volatile: true}},
		{"SELECT set_config('app.user_id', '42', $1)", expect{kind: Read, funcs: []string{"set_config"}, volatile: true, pins: PinSetConfig}},

		// locking
		{"SELECT * FROM users WHERE id = 1 FOR UPDATE", expect{kind: Read, reads: []string{"users"}, locking: true}},
		{"SELECT * FROM users u FOR NO KEY UPDATE OF u SKIP LOCKED", expect{kind: Read, reads: []string{"users"}, locking: true}},
		{"SELECT * FROM users FOR SHARE", expect{kind: Read, reads: []string{"users"}, locking: true}},
		{"SELECT * FROM users FOR KEY SHARE", expect{kind: Read, reads: []string{"users"}, locking: true}},
		{"SELECT * FROM (SELECT * FROM users FOR UPDATE) s", expect{kind: Read, reads: []string{"users"}, locking: true}},
		{"LOCK TABLE users IN ACCESS EXCLUSIVE MODE", expect{kind: Utility, reads: []string{"users"}, locking: true}},

		// EXPLAIN
		{"EXPLAIN SELECT * FROM users", expect{kind: Read, reads: []string{"users"}}},
		{"EXPLAIN ANALYZE SELECT * FROM users", expect{kind: Read, reads: []string{"users"}}},
		{"EXPLAIN UPDATE users SET a = 1", expect{kind: Read, reads: []string{"users"}}},
		{"EXPLAIN ANALYZE UPDATE users SET a = 1", expect{kind: Write, writes: []string{"users"}, explainWrite: true}},
		{"EXPLAIN (ANALYZE, BUFFERS) DELETE FROM users", expect{kind: Write, writes: []string{"users"}, explainWrite: true}},
		{"EXPLAIN (ANALYZE false) DELETE FROM users", expect{kind: Read, reads: []string{"users"}}},
		{"EXPLAIN (ANALYZE 0) DELETE FROM users", expect{kind: Read, reads: []string{"users"}}},
		{"EXPLAIN (ANALYZE 1) DELETE FROM users", expect{kind: Write, writes: []string{"users"}, explainWrite: true}},
		{"EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", expect{kind: Write, writes: []string{"t"}, explainWrite: true, modifyingCTE: true}},

		// transactions
		{"BEGIN READ ONLY", expect{kind: TxnBegin, readOnly: ReadOnly}},
		{"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", expect{kind: TxnBegin, readOnly: ReadOnly, isolation: "repeatable read", start: true}},
		{"/* c */ start transaction", expect{kind: TxnBegin, start: true}},
		{"-- c\nBegin Transaction", expect{kind: TxnBegin}},
		{"BEGIN READ WRITE", expect{kind: TxnBegin, readOnly: ReadWrite}},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE", expect{kind: TxnBegin, isolation: "serializable"}},
		{"SET TRANSACTION READ ONLY", expect{kind: TxnOther, readOnly: ReadOnly}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ WRITE", expect{kind: TxnOther, readOnly: ReadWrite, isolation: "serializable"}},
		{"COMMIT", expect{kind: TxnCommit}},
		{"COMMIT AND CHAIN", expect{kind: TxnCommit, chain: true}},
		{"ROLLBACK AND CHAIN", expect{kind: TxnRollback, chain: true}},
		{"COMMIT AND NO CHAIN", expect{kind: TxnCommit}},
		{"ROLLBACK", expect{kind: TxnRollback}},
		{"ABORT", expect{kind: TxnRollback}},
		{"SAVEPOINT s1", expect{kind: TxnOther}},
		{"RELEASE SAVEPOINT s1", expect{kind: TxnOther}},
		{"ROLLBACK TO SAVEPOINT s1", expect{kind: TxnOther}},
		{"PREPARE TRANSACTION 'g'", expect{kind: TxnOther}},

		// multi-statement: strongest wins
		{"SELECT 1; SELECT 2", expect{kind: Read, multi: true}},
		{"SELECT * FROM a; UPDATE b SET x = 1", expect{kind: Write, reads: []string{"a"}, writes: []string{"b"}, multi: true}},
		{"BEGIN READ ONLY; SELECT * FROM a; COMMIT", expect{kind: TxnBegin, reads: []string{"a"}, readOnly: ReadOnly, multi: true}},
		{"BEGIN; INSERT INTO a VALUES (1); COMMIT;", expect{kind: Write, writes: []string{"a"}, multi: true}},
		{"SELECT 1; CREATE TABLE x (id int)", expect{kind: DDL, writes: []string{"x"}, multi: true}},
		{"SET search_path = a; SELECT 1", expect{kind: Set, multi: true}},

		// DDL and utility
		{"CREATE TABLE call_records_2025_01 PARTITION OF call_records FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')",
			expect{kind: DDL, reads: []string{"call_records"}, writes: []string{"call_records_2025_01"}}},
		{"CREATE TEMP TABLE scratch (id int)", expect{kind: DDL, writes: []string{"scratch"}, pins: PinTempTable}},
		{"CREATE TEMPORARY VIEW v AS SELECT * FROM users", expect{kind: DDL, reads: []string{"users"}, writes: []string{"v"}, pins: PinTempTable}},
		{"CREATE TABLE pg_temp.scratch (id int)", expect{kind: DDL, writes: []string{"pg_temp.scratch"}, pins: PinTempTable}},
		{"CREATE TABLE pg_temp_3.scratch (id int)", expect{kind: DDL, writes: []string{"pg_temp_3.scratch"}, pins: PinTempTable}},
		// Other objects in the session's temporary schema (pgx's own tests
		// make such types and functions).
		{`create type pg_temp.text_bounds_range as range (subtype = text, collation = "C")`, expect{kind: DDL, pins: PinTempTable}},
		{"CREATE TYPE pg_temp.mood AS ENUM ('ok', 'sad')", expect{kind: DDL, pins: PinTempTable}},
		{"CREATE TYPE pg_temp.pair AS (a int, b int)", expect{kind: DDL, reads: []string{"pg_temp.pair"}, pins: PinTempTable}},
		{"CREATE DOMAIN pg_temp.posint AS int CHECK (VALUE > 0)", expect{kind: DDL, pins: PinTempTable}},
		{"CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'select 1'", expect{kind: DDL, pins: PinTempTable}},
		{"CREATE AGGREGATE pg_temp.agg (int) (sfunc = int4pl, stype = int)", expect{kind: DDL, pins: PinTempTable}},
		{"CREATE TYPE public.mood AS ENUM ('ok')", expect{kind: DDL}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", expect{kind: DDL}},
		{"CREATE MATERIALIZED VIEW dash AS SELECT count(*) FROM call_records", expect{kind: DDL, reads: []string{"call_records"}, writes: []string{"dash"}, funcs: []string{"count"}}},
		{"CREATE INDEX ON users (email)", expect{kind: DDL, writes: []string{"users"}}},
		{"ALTER TABLE users ADD COLUMN x int", expect{kind: DDL, writes: []string{"users"}}},
		{"DROP TABLE IF EXISTS a, public.b", expect{kind: DDL, writes: []string{"a", "public.b"}}},
		{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", expect{kind: DDL}},
		{"GRANT SELECT ON users TO reader", expect{kind: DDL, reads: []string{"users"}}},
		{"VACUUM ANALYZE users", expect{kind: Utility, reads: []string{"users"}}},
		{"SHOW search_path", expect{kind: Utility}},
		{"LISTEN calls", expect{kind: Utility, pins: PinListen}},
		{"UNLISTEN *", expect{kind: Utility, pins: PinUnlisten, releases: PinListen}},
		{"UNLISTEN calls", expect{kind: Utility, pins: PinUnlisten}},
		{"SELECT pg_advisory_unlock_all()", expect{kind: Read, funcs: []string{"pg_advisory_unlock_all"}, volatile: true, releases: PinAdvisoryLock}},
		{"SELECT pg_advisory_unlock(42)", expect{kind: Read, funcs: []string{"pg_advisory_unlock"}, volatile: true}},
		{"DISCARD TEMP", expect{kind: Utility, releases: PinTempTable}},
		{"CLOSE ALL", expect{kind: Utility, releases: PinHoldCursor}},
		{"CLOSE c", expect{kind: Utility, closed: []string{"c"}}},
		{"NOTIFY calls, 'x'", expect{kind: Utility}},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM users", expect{kind: Read, reads: []string{"users"}, pins: PinHoldCursor, held: []string{"c"}}},
		{`DECLARE "Big" CURSOR WITH HOLD FOR SELECT 1; CLOSE c; CLOSE "Big"`, expect{kind: Utility, multi: true, pins: PinHoldCursor, held: []string{"Big"}, closed: []string{"c", "Big"}}},
		{"DECLARE c CURSOR FOR SELECT * FROM users", expect{kind: Read, reads: []string{"users"}}},
		{"FETCH 10 FROM c", expect{kind: Utility}},
		{"PREPARE q(int) AS SELECT * FROM users WHERE id = $1", expect{kind: Utility, pins: PinPrepare, stmtName: "q"}},
		{"EXECUTE q(1)", expect{kind: Utility, pins: PinExecute, stmtName: "q"}},
		{"DEALLOCATE q", expect{kind: Utility, pins: PinDeallocate, stmtName: "q"}},
		{"DEALLOCATE ALL", expect{kind: Utility, pins: PinDeallocate}},
		{"DISCARD ALL", expect{kind: Utility}},

		// SET family
		{"SET search_path TO a, b", expect{kind: Set}},
		{"SET LOCAL statement_timeout = 5000", expect{kind: SetLocal}},
		{"RESET ALL", expect{kind: Set, route: HintAuto}},
		{"SET ROLE admin", expect{kind: Set, pins: PinRole}},
		{"SET LOCAL ROLE admin", expect{kind: SetLocal}},
		{"SET SESSION AUTHORIZATION bob", expect{kind: Set, pins: PinRole}},
		{"RESET ROLE", expect{kind: Set}},
		{"SET pgninja.route = 'replica'", expect{kind: Set, route: HintReplica}},
		{"SET pgninja.route TO replica", expect{kind: Set, route: HintReplica}},
		// PRIMARY is a reserved word: PostgreSQL itself rejects this.
		{"SET pgninja.route TO primary", expect{kind: Unknown, parseErr: true}},
		{"SET pgninja.route = 'auto'", expect{kind: Set, route: HintAuto}},
		{"RESET pgninja.route", expect{kind: Set, route: HintAuto}},
		{"SET pgninja.route = 'sideways'", expect{kind: Set, hintErr: true}},
		{"SET LOCAL pgninja.route = 'replica'", expect{kind: SetLocal}},

		// hints
		{"/* pgninja:replica */ SELECT * FROM users", expect{kind: Read, reads: []string{"users"}, hint: HintReplica}},
		{"  /* pgninja:primary */ SELECT 1", expect{kind: Read, hint: HintPrimary}},
		{"/*pgninja:replica*/SELECT 1", expect{kind: Read, hint: HintReplica}},
		{"-- app\n/* pgninja:replica */ SELECT 1", expect{kind: Read, hint: HintReplica}},
		{"/* pgninja:Primary */ SELECT 1", expect{kind: Read, hint: HintPrimary}},
		{"/* pgninja:foo */ SELECT 1", expect{kind: Read, hintErr: true}},
		{"SELECT /* pgninja:replica */ 1", expect{kind: Read}},
		{"/* other */ SELECT 1", expect{kind: Read}},

		// malformed
		{"SELEC 1", expect{kind: Unknown, parseErr: true}},
		{"SELECT * FROM", expect{kind: Unknown, parseErr: true}},
		{"SELECT 'unterminated", expect{kind: Unknown, parseErr: true}},
		{"", expect{kind: Unknown}},
		{"-- only a comment", expect{kind: Unknown}},
	}
	c := NewClassifier(100, nil)
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			for _, got := range []*Classification{Analyze(tc.sql, nil), c.Classify(tc.sql), c.Classify(tc.sql)} {
				checkExpect(t, got, tc.want)
			}
		})
	}
}

func checkExpect(t *testing.T, got *Classification, w expect) {
	t.Helper()
	check := func(name string, ok bool, g, w any) {
		t.Helper()
		if !ok {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	check("Kind", got.Kind == w.kind, got.Kind, w.kind)
	check("ReadTables", slices.Equal(got.ReadTables, w.reads), got.ReadTables, w.reads)
	check("WriteTables", slices.Equal(got.WriteTables, w.writes), got.WriteTables, w.writes)
	check("Functions", slices.Equal(got.Functions, w.funcs), got.Functions, w.funcs)
	check("VolatileFunc", got.VolatileFunc == w.volatile, got.VolatileFunc, w.volatile)
	check("Locking", got.Locking == w.locking, got.Locking, w.locking)
	check("AdvisoryLock", got.AdvisoryLock == w.advisory, got.AdvisoryLock, w.advisory)
	check("SelectInto", got.SelectInto == w.selectInto, got.SelectInto, w.selectInto)
	check("CopyFromClient", got.CopyFromClient == w.copyIn, got.CopyFromClient, w.copyIn)
	check("ModifyingCTE", got.ModifyingCTE == w.modifyingCTE, got.ModifyingCTE, w.modifyingCTE)
	check("ExplainAnalyzeWrite", got.ExplainAnalyzeWrite == w.explainWrite, got.ExplainAnalyzeWrite, w.explainWrite)
	check("MultiStatement", got.MultiStatement == w.multi, got.MultiStatement, w.multi)
	check("TxnReadOnly", got.TxnReadOnly == w.readOnly, got.TxnReadOnly, w.readOnly)
	check("Pins", got.Pins == w.pins, got.Pins, w.pins)
	check("Releases", got.Releases == w.releases, got.Releases, w.releases)
	check("HoldCursors", slices.Equal(got.HoldCursors, w.held), got.HoldCursors, w.held)
	check("ClosedCursors", slices.Equal(got.ClosedCursors, w.closed), got.ClosedCursors, w.closed)
	check("TxnIsolation", got.TxnIsolation == w.isolation, got.TxnIsolation, w.isolation)
	check("TxnStart", got.TxnStart == w.start, got.TxnStart, w.start)
	check("TxnChain", got.TxnChain == w.chain, got.TxnChain, w.chain)
	check("StatementName", got.StatementName == w.stmtName, got.StatementName, w.stmtName)
	check("Hint", got.Hint == w.hint, got.Hint, w.hint)
	check("SessionRoute", got.SessionRoute == w.route, got.SessionRoute, w.route)
	check("HintErr", (got.HintErr != nil) == w.hintErr, got.HintErr, w.hintErr)
	if got.HintErr != nil {
		var he *HintError
		if !errors.As(got.HintErr, &he) || he.SQLState() != "22023" {
			t.Errorf("HintErr = %#v, want *HintError with SQLSTATE 22023", got.HintErr)
		}
	}
	check("ParseError", (got.ParseError != nil) == w.parseErr, got.ParseError, w.parseErr)
}
