package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Prepared statements in transaction mode must behave as each client's
// own, however the server connections that hold them are shared.

// The unnamed statement on a shared server connection is whoever parsed
// last; a Bind of it without a Parse in the same batch must still run the
// client's own statement, or fail as it would without the proxy.
func TestTxnUnnamedStatementIsTheClientsOwn(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	a, b := loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty")
	fresh := loginRaw(t, rawConn(t, h), "trusty")

	a.Send(&pgproto3.Parse{Query: "select 'a'"})
	a.Send(&pgproto3.Sync{})
	expectMessages(t, a, "ParseComplete", "ReadyForQuery")
	b.Send(&pgproto3.Parse{Query: "select 'b'"})
	b.Send(&pgproto3.Sync{})
	expectMessages(t, b, "ParseComplete", "ReadyForQuery")
	// A simple query replaces the unnamed statement too.
	b.Send(&pgproto3.Query{String: "select 1"})
	expectMessages(t, b, "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")

	for _, tc := range []struct {
		name string
		fe   *pgproto3.Frontend
		want string
	}{{"a", a, "a"}, {"b", b, "b"}, {"a again", a, "a"}} {
		tc.fe.Send(&pgproto3.Bind{})
		tc.fe.Send(&pgproto3.Execute{})
		tc.fe.Send(&pgproto3.Sync{})
		msgs := expectMessages(t, tc.fe, "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
		if got := string(msgs[1].(*pgproto3.DataRow).Values[0]); got != tc.want {
			t.Fatalf("client %s ran %q", tc.name, got)
		}
	}

	fresh.Send(&pgproto3.Bind{})
	fresh.Send(&pgproto3.Execute{})
	fresh.Send(&pgproto3.Sync{})
	msgs := expectMessages(t, fresh, "ErrorResponse", "ReadyForQuery")
	if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "26000" {
		t.Fatalf("a client that parsed nothing got %s %s", e.Code, e.Message)
	}
}

// pgx's describe-exec mode parses in one round trip and binds in the next.
func TestTxnDescribeExecModeUnderLoad(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "30s"))
	ctx := ctxT(t, 60*time.Second)
	describeExec := func(cfg *pgx.ConnConfig) { cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }
	h.clientsAtOnce(t, ctx, 8, describeExec, func(i int, c *pgx.Conn) error {
		for j := 0; j < 40; j++ {
			if j%4 == 0 {
				// A simple query replaces the server's unnamed statement.
				if _, err := c.Exec(ctx, "select 1"); err != nil {
					return err
				}
			}
			var got string
			q := fmt.Sprintf("select $1::text || '-%d'", j%3)
			if err := c.QueryRow(ctx, q, fmt.Sprint(i)).Scan(&got); err != nil {
				return fmt.Errorf("query %d: %w", j, err)
			}
			if want := fmt.Sprintf("%d-%d", i, j%3); got != want {
				return fmt.Errorf("query %d got %q, want %q", j, got, want)
			}
		}
		return nil
	})
}

// A Parse of a name already in use fails with 42P05 and skips the rest of
// its batch, and the statement the client had stays.
func TestTxnParseOfUsedNameFails(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	fe := loginRaw(t, rawConn(t, h), "trusty")
	fe.Send(&pgproto3.Parse{Name: "ps", Query: "select 1"})
	fe.Send(&pgproto3.Sync{})
	expectMessages(t, fe, "ParseComplete", "ReadyForQuery")

	fe.Send(&pgproto3.Parse{Name: "ps", Query: "select 2"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "ps"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	msgs := expectMessages(t, fe, "ErrorResponse", "ReadyForQuery")
	if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "42P05" || e.Message != `prepared statement "ps" already exists` {
		t.Fatalf("got %s %s", e.Code, e.Message)
	}

	fe.Send(&pgproto3.Bind{PreparedStatement: "ps"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	msgs = expectMessages(t, fe, "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
	if got := string(msgs[1].(*pgproto3.DataRow).Values[0]); got != "1" {
		t.Fatalf("ps ran as %q", got)
	}
}

// SQL DEALLOCATE reaches statements made with Parse: one namespace, as in
// PostgreSQL.
func TestTxnSQLDeallocateOfParsedStatement(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "5s"))
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	if _, err := c.Prepare(ctx, "ps", "select $1::text"); err != nil {
		t.Fatal(err)
	}
	tag, err := c.Exec(ctx, "deallocate ps")
	if err != nil || tag.String() != "DEALLOCATE" {
		t.Fatalf("deallocate: %q %v", tag, err)
	}
	if err := c.Deallocate(ctx, "ps"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "ps", "select $1::text, $2::text"); err != nil {
		t.Fatal(err)
	}
	var s1, s2 string
	if err := c.QueryRow(ctx, "ps", "hello", "world").Scan(&s1, &s2); err != nil || s1 != "hello" || s2 != "world" {
		t.Fatalf("got %q %q %v", s1, s2, err)
	}
	if _, err := c.Exec(ctx, "deallocate ps"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "deallocate ps"); err == nil {
		t.Fatal("a second deallocate of ps succeeded")
	}
}

// A Parse the server refuses creates no statement, so the client may use
// the name again, as pgx's statement cache does after an error; a Bind of
// it meanwhile finds nothing (26000).
func TestTxnFailedParseLeavesTheNameFree(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "5s"))
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "again", "select $1::no_such_type", nil); sqlstate(err) != "42704" {
		t.Fatalf("Parse of a statement naming an unknown type: %v, want 42704", err)
	}
	res := pc.ExecPrepared(ctx, "again", [][]byte{[]byte("1")}, nil, nil).Read()
	if sqlstate(res.Err) != "26000" {
		t.Fatalf("Bind of the failed statement: %v, want 26000", res.Err)
	}
	if _, err := pc.Prepare(ctx, "again", "select $1::int + 1", nil); err != nil {
		t.Fatalf("Parse of the name again: %v", err)
	}
	res = pc.ExecPrepared(ctx, "again", [][]byte{[]byte("41")}, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "42" {
		t.Fatalf("the statement parsed again: %v %q", res.Err, res.Rows)
	}
}

// A SQL PREPARE of a name the client Parse'd is refused as PostgreSQL
// refuses it (the two share one namespace), and the Parse'd statement
// still works; after a DEALLOCATE the name is free for PREPARE.
func TestTxnSQLPrepareOfParsedNameFails(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	if _, err := c.Prepare(ctx, "dup", "select $1::int + 1"); err != nil {
		t.Fatal(err)
	}
	for _, inTxn := range []bool{false, true} {
		if inTxn {
			if _, err := c.Exec(ctx, "begin"); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.Exec(ctx, "prepare dup as select 2")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42P05" || pe.Message != `prepared statement "dup" already exists` {
			t.Fatalf("in transaction %v: PREPARE of a Parse'd name: %v, want 42P05", inTxn, err)
		}
		if inTxn {
			if _, err := c.Exec(ctx, "rollback"); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := c.QueryRow(ctx, "dup", 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("the Parse'd statement after the refusal: %d %v", n, err)
		}
	}
	// The refusals left nothing of that name on the server for EXECUTE
	// to find (which does not reach Parse'd statements).
	if _, err := c.Exec(ctx, "execute dup"); sqlstate(err) != "26000" {
		t.Fatalf("EXECUTE after the refusals: %v, want 26000", err)
	}
	if _, err := c.Exec(ctx, "deallocate dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "prepare dup as select 7"); err != nil {
		t.Fatalf("PREPARE after DEALLOCATE: %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "execute dup", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 7 {
		t.Fatalf("EXECUTE of the new statement: %d %v", n, err)
	}
}

// A statement prepared after a schema change is planned against the new
// schema, though identical text was prepared before it on the same server
// connection.
func TestTxnStatementsFollowSchemaChanges(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	ctx := ctxT(t, 30*time.Second)
	typ := fmt.Sprintf("mood_%d", time.Now().UnixNano())
	table := "t_" + typ
	admin := h.ninja(t)
	t.Cleanup(func() {
		_, _ = h.direct(t).Exec(context.Background(), "drop table if exists "+table+"; drop type if exists "+typ)
	})
	steps := []struct {
		ddl, query string
	}{
		{"create type " + typ + " as enum ('sad', 'ok')", "select 'ok'::" + typ + "::text"},
		{"drop type " + typ + "; create type " + typ + " as enum ('ok', 'happy')", "select 'ok'::" + typ + "::text"},
		{"create table " + table + " (id int, a text); insert into " + table + " values (1, 'x')", "select * from " + table},
		{"alter table " + table + " drop column a", "select * from " + table},
	}
	for i, step := range steps {
		if _, err := admin.Exec(ctx, step.ddl); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		// A new client each time: it prepares the text afresh.
		c := h.ninja(t)
		rows, err := c.Query(ctx, step.query)
		if err == nil {
			rows.Next()
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			t.Fatalf("step %d: %s: %v", i, step.query, err)
		}
		c.Close(ctx)
	}
}

// A pipeline that asks for results with Flush before its Sync is one
// batch: what the proxy adds to it stays hidden from the client.
func TestTxnPipelineFlushBeforeSync(t *testing.T) {
	// One cached statement per server connection: preparing a second one
	// evicts the first, so the pipeline's Bind needs it prepared again.
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s")+"  max_prepared_statements: 1\n")
	ctx := ctxT(t, 30*time.Second)
	pc, err := pgconn.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	for _, name := range []string{"ps", "other"} {
		if _, err := pc.Prepare(ctx, name, "select $1::bigint as num, '"+name+"'", nil); err != nil {
			t.Fatal(err)
		}
	}
	p := pc.StartPipeline(ctx)
	p.SendQueryPrepared("ps", [][]byte{[]byte("1")}, nil, nil)
	p.SendQueryPrepared("ps", [][]byte{[]byte("2")}, nil, nil)
	p.SendFlushRequest()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		res, err := p.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			t.Fatalf("result %d: got %T", want, res)
		}
		r := rr.Read()
		if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != fmt.Sprint(want) {
			t.Fatalf("result %d: %v %q", want, r.Err, r.Rows)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	res, err := p.GetResults()
	if _, ok := res.(*pgconn.PipelineSync); !ok || err != nil {
		t.Fatalf("got %T %v, want the pipeline's sync", res, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := pc.ExecParams(ctx, "select 41 + 1", nil, nil, nil, nil).Read(); r.Err != nil || string(r.Rows[0][0]) != "42" {
		t.Fatalf("after the pipeline: %v %q", r.Err, r.Rows)
	}
}

// A statement name another client prepared on the shared server
// connection is not this client's: binding it fails as it would without
// the proxy.
func TestTxnBindOfAnotherClientsStatementFails(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	a, b := loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty")
	a.Send(&pgproto3.Query{String: "prepare foo as select 'a''s'"})
	expectMessages(t, a, "CommandComplete", "ReadyForQuery")

	for _, msg := range []pgproto3.FrontendMessage{
		&pgproto3.Bind{PreparedStatement: "foo"},
		&pgproto3.Describe{ObjectType: 'S', Name: "foo"},
	} {
		b.Send(msg)
		b.Send(&pgproto3.Execute{})
		b.Send(&pgproto3.Sync{})
		msgs := expectMessages(t, b, "ErrorResponse", "ReadyForQuery")
		if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "26000" || e.Message != `prepared statement "foo" does not exist` {
			t.Fatalf("%T of another client's statement: %s %s", msg, e.Code, e.Message)
		}
	}

	// The client that prepared it may still use it by name.
	a.Send(&pgproto3.Query{String: "execute foo"})
	msgs := expectMessages(t, a, "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	if got := string(msgs[1].(*pgproto3.DataRow).Values[0]); got != "a's" {
		t.Fatalf("execute foo gave %q", got)
	}
}

// SQL prepared statements through transaction mode answer as PostgreSQL
// answers a client alone, where one server connection serves every client.
func TestTxnSQLPreparedStatementsAnswerAsPostgreSQL(t *testing.T) {
	for _, tc := range []struct {
		name string
		// pool is the server connections the proxy may open; 1 unless a
		// client is pinned to one.
		pool  int
		steps []step
	}{
		{"a failed PREPARE leaves no statement", 1, []step{
			{"a", "prepare p as select nosuch"}, {"a", "execute p"},
			{"a", "prepare p as select 1"}, {"a", "execute p"},
			{"b", "prepare p as select 2"}, {"a", "execute p"}, {"b", "execute p"}}},
		{"another client's statement is not this one's", 1, []step{
			{"a", "prepare q as select 42"}, {"b", "execute q"}, {"b", "deallocate q"},
			{"a", "execute q"}, {"b", "prepare q as select 43"}, {"a", "execute q"}, {"b", "execute q"},
			{"a", "bind q"}, {"b", "bind q"}, {"b", "deallocate q"}, {"b", "bind q"}, {"a", "bind q"}}},
		{"PREPARE of a name in use fails", 1, []step{
			{"a", "prepare y as select 1"}, {"a", "prepare y as select 2"}, {"a", "execute y"},
			{"a", "deallocate y"}, {"a", "prepare y as select 3"}, {"a", "execute y"}}},
		{"PREPARE outlives a rollback", 1, []step{
			{"a", "begin"}, {"a", "prepare r as select 3"}, {"a", "rollback"}, {"a", "execute r"}, {"b", "execute r"}}},
		{"in a failed transaction", 1, []step{
			{"a", "prepare f as select 8"}, {"a", "begin"}, {"a", "select nosuch"},
			{"a", "prepare f as select 9"}, {"a", "execute f"}, {"a", "deallocate f"}, {"a", "rollback"},
			{"a", "execute f"}}},
		// psycopg 3 sends DEALLOCATE ALL, after a ROLLBACK, as a Bind
		// and Execute; the shared server copies go with it.
		{"DEALLOCATE ALL through the extended protocol", 1, []step{
			{"a", "parse s select 1"}, {"b", "parse t select 1"}, {"a", "ext deallocate all"},
			{"b", "bind t"}, {"a", "bind s"}, {"a", "parse s select 2"}, {"a", "bind s"}, {"b", "bind t"}}},
		{"DISCARD ALL through the extended protocol", 1, []step{
			{"a", "parse s select 1"}, {"b", "parse t select 1"}, {"a", "prepare q as select 3"},
			{"a", "begin"}, {"a", "ext discard all"}, {"a", "rollback"}, {"a", "bind s"}, {"a", "execute q"},
			{"a", "ext discard all"}, {"b", "bind t"}, {"a", "bind s"}, {"a", "execute q"}, {"a", "prepare q as select 4"},
			{"a", "execute q"}}},
		{"PREPARE, EXECUTE and DEALLOCATE through the extended protocol", 1, []step{
			{"a", "ext prepare q as select 42"}, {"b", "ext discard all"}, {"a", "ext execute q"},
			{"b", "ext execute q"}, {"a", "ext prepare q as select 44"}, {"a", "ext deallocate q"},
			{"a", "ext execute q"}, {"a", "ext prepare q as select 43"}, {"a", "execute q"},
			{"a", "ext prepare bad as select nosuch"}, {"a", "ext execute bad"}, {"b", "prepare bad as select 7"},
			{"a", "ext prepare bad as select 8"}, {"a", "ext execute bad"}, {"b", "ext execute bad"},
			{"a", "parse p select 5"}, {"a", "ext deallocate p"}, {"a", "bind p"}, {"a", "ext deallocate p"}}},
		{"several statements in one string", 2, []step{
			{"a", "prepare m as select 5; execute m"}, {"a", "execute m"}, {"b", "execute m"},
			{"b", "prepare n as select 6"}, {"b", "select 1; execute n"}, {"a", "execute n"},
			{"a", "select 1; deallocate m"}, {"a", "execute m"}, {"a", "prepare m as select 7"}, {"a", "execute m"},
			{"b", "execute n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { answersAsPostgreSQL(t, tc.pool, tc.steps) })
	}
}

// A statement parsed before a schema change whose result it changes
// (through the proxy or around it), and bound on a server connection that
// has to prepare it again, is refused
// as PostgreSQL refuses it ("cached plan must not change result type"),
// not run for rows of a shape the client was not shown; one whose shape
// stayed runs. Each server connection keeps one statement, so the
// client's next Parse evicts it from the only one. Inside a transaction
// the connection is the client's already, and the check goes out as a
// request of the proxy's own.
func TestTxnStatementChangedBySchemaIsRefused(t *testing.T) {
	type testCase struct {
		name, ddl string
		changed   bool
		inTxn     bool
		// around: the DDL goes straight to the server, unseen by the
		// proxy.
		around bool
		// gone: the statement no longer parses, and the client gets
		// PostgreSQL's error for that, not 0A000 (nor, in a
		// transaction, 25P02 from the proxy's own check).
		gone bool
	}
	var cases []testCase
	for _, inTxn := range []bool{false, true} {
		for _, tc := range []testCase{
			{name: "a column dropped", ddl: "alter table %s drop column f1", changed: true},
			{name: "a column's type changed", ddl: "alter table %s alter column f2 type text", changed: true},
			{name: "an index added", ddl: "create index on %s (f2)"},
			{name: "a column dropped around the proxy", ddl: "alter table %s drop column f1", changed: true, around: true},
			{name: "the table dropped", ddl: "drop table %s", changed: true, gone: true},
		} {
			tc.inTxn = inTxn
			cases = append(cases, tc)
		}
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/in transaction=%v", tc.name, tc.inTxn), func(t *testing.T) {
			h := startProxy(t, "pool:\n  mode: transaction\n  max_size: 1\n  max_prepared_statements: 1\n")
			ctx := ctxT(t, 30*time.Second)
			table := fmt.Sprintf("shape_%d", time.Now().UnixNano())
			admin := h.ninja(t)
			if _, err := admin.Exec(ctx, "create table "+table+" (id int, f1 int, f2 int); insert into "+table+" values (1, 10, 20)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_, _ = h.direct(t).Exec(context.Background(), "drop table if exists ninja."+table+", public."+table)
			})
			fe := loginRaw(t, rawConn(t, h), "trusty")
			fe.Send(&pgproto3.Parse{Name: "s1", Query: "select * from " + table + " where id = $1", ParameterOIDs: []uint32{23}})
			fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "s1"})
			fe.Send(&pgproto3.Sync{})
			expectMessages(t, fe, "ParseComplete", "ParameterDescription", "RowDescription", "ReadyForQuery")
			ddl := admin
			if tc.around {
				ddl = h.env.Connect(t, h.env.AppDSN("ai_ninja"))
			}
			if _, err := ddl.Exec(ctx, fmt.Sprintf(tc.ddl, table)); err != nil {
				t.Fatal(err)
			}
			if tc.inTxn {
				fe.Send(&pgproto3.Query{String: "begin"})
				expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
			}
			fe.Send(&pgproto3.Parse{Name: "s2", Query: "select 2"})
			fe.Send(&pgproto3.Sync{})
			expectMessages(t, fe, "ParseComplete", "ReadyForQuery")

			fe.Send(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}})
			fe.Send(&pgproto3.Execute{})
			fe.Send(&pgproto3.Sync{})
			if !tc.changed {
				msgs := expectMessages(t, fe, "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
				if n := len(msgs[1].(*pgproto3.DataRow).Values); n != 3 {
					t.Fatalf("%d columns, want the 3 the client was shown", n)
				}
				return
			}
			msgs := expectMessages(t, fe, "ErrorResponse", "ReadyForQuery")
			e := msgs[0].(*pgproto3.ErrorResponse)
			switch {
			case tc.gone && e.Code != "42P01":
				t.Fatalf("got %s %q, want PostgreSQL's 42P01", e.Code, e.Message)
			case !tc.gone && (e.Code != "0A000" || e.Message != "cached plan must not change result type"):
				t.Fatalf("got %s %q, want PostgreSQL's 0A000", e.Code, e.Message)
			case !tc.gone && e.Routine != "RevalidateCachedQuery":
				// asyncpg tells this error by its routine, and then
				// prepares the statement again.
				t.Fatalf("routine %q, want PostgreSQL's RevalidateCachedQuery", e.Routine)
			}
			if tc.inTxn {
				if st := msgs[1].(*pgproto3.ReadyForQuery).TxStatus; st != 'E' {
					t.Fatalf("transaction status %c after the refusal, want E", st)
				}
				fe.Send(&pgproto3.Query{String: "rollback"})
				expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
			}
			if tc.gone {
				return
			}
			// Parsed again, the statement runs with its new shape.
			fe.Send(&pgproto3.Close{ObjectType: 'S', Name: "s1"})
			fe.Send(&pgproto3.Parse{Name: "s1", Query: "select * from " + table + " where id = $1", ParameterOIDs: []uint32{23}})
			fe.Send(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}})
			fe.Send(&pgproto3.Execute{})
			fe.Send(&pgproto3.Sync{})
			expectMessages(t, fe, "CloseComplete", "ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
		})
	}
}

// A utility statement's result may change without PostgreSQL objecting: a
// FETCH prepared before its cursor existed describes as NoData and then
// returns the cursor's rows. Prepared anew on another server connection it
// must run, not be refused as reshaped (pgx's
// TestConnQueryPreparedCursorFetch).
func TestTxnPreparedFetchIsNotRefusedAsReshaped(t *testing.T) {
	h := startProxy(t, "pool:\n  mode: transaction\n  max_size: 1\n  max_prepared_statements: 1\n")
	fe := loginRaw(t, rawConn(t, h), "trusty")
	fe.Send(&pgproto3.Parse{Name: "f", Query: `fetch all in "cur"`})
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "f"})
	fe.Send(&pgproto3.Sync{})
	expectMessages(t, fe, "ParseComplete", "ParameterDescription", "NoData", "ReadyForQuery")
	fe.Send(&pgproto3.Parse{Name: "other", Query: "select 2"}) // evicts f
	fe.Send(&pgproto3.Sync{})
	expectMessages(t, fe, "ParseComplete", "ReadyForQuery")
	fe.Send(&pgproto3.Query{String: `begin; declare "cur" cursor for select 1 as n`})
	expectMessages(t, fe, "CommandComplete", "CommandComplete", "ReadyForQuery")
	fe.Send(&pgproto3.Bind{PreparedStatement: "f"})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	expectMessages(t, fe, "BindComplete", "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	fe.Send(&pgproto3.Query{String: "rollback"})
	expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
}

// Clients on one server connection that prepare the same text under
// different search paths (a schema per tenant) each run their own
// statement: a server copy prepared under one tenant's path is not lent
// to the other. Shared, PostgreSQL replans it under the other's path and
// refuses the other's result shape with 0A000, which no direct client
// sees; the same goes for SQL PREPARE.
func TestTxnStatementsOfDifferentSearchPathsAreNotShared(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	ctx := ctxT(t, 30*time.Second)
	admin := h.ninja(t)
	for _, q := range []string{
		"drop schema if exists tenant_a cascade", "drop schema if exists tenant_b cascade",
		"create schema tenant_a", "create schema tenant_b",
		"create table tenant_a.acct (v int)", "insert into tenant_a.acct values (1)",
		"create table tenant_b.acct (v int, w text)", "insert into tenant_b.acct values (2, 'two')",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	a, b := h.ninja(t), h.ninja(t)
	simple := pgx.QueryExecModeSimpleProtocol
	for c, path := range map[*pgx.Conn]string{a: "tenant_a", b: "tenant_b"} {
		if _, err := c.Exec(ctx, "set search_path = "+path, simple); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "prepare acct_all as select * from acct", simple); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		for _, step := range []struct {
			c    *pgx.Conn
			sql  string
			mode pgx.QueryExecMode
			want string
		}{
			{b, "select * from acct", pgx.QueryExecModeCacheStatement, "[2 two]"},
			{a, "select * from acct", pgx.QueryExecModeCacheStatement, "[1]"},
			{b, "execute acct_all", simple, "[2 two]"},
			{a, "execute acct_all", simple, "[1]"},
		} {
			rows, err := step.c.Query(ctx, step.sql, step.mode)
			if err != nil {
				t.Fatalf("round %d, %s: %v", i, step.sql, err)
			}
			var got []string
			for rows.Next() {
				vals, _ := rows.Values()
				got = append(got, fmt.Sprint(vals))
			}
			if err := rows.Err(); err != nil || len(got) != 1 || got[0] != step.want {
				t.Fatalf("round %d, %s: %v %v, want %s", i, step.sql, got, err, step.want)
			}
		}
	}
}

// A literal of a type read under the session's time zone is folded when
// the statement is prepared. A copy prepared for a client in another time
// zone would answer with that zone's instant: a wrong answer, not an
// error.
func TestTxnStatementsOfDifferentTimeZonesAreNotShared(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "5s"))
	ctx := ctxT(t, 30*time.Second)
	utc, tokyo := h.ninja(t), h.ninja(t)
	for c, zone := range map[*pgx.Conn]string{utc: "UTC", tokyo: "Asia/Tokyo"} {
		if _, err := c.Exec(ctx, "set timezone = '"+zone+"'", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	const q = "select extract(epoch from '2024-01-01 00:00'::timestamptz)::bigint"
	for _, step := range []struct {
		c    *pgx.Conn
		want int64
	}{{utc, 1704067200}, {tokyo, 1704067200 - 9*3600}, {utc, 1704067200}} {
		var got int64
		if err := step.c.QueryRow(ctx, q).Scan(&got); err != nil || got != step.want {
			t.Fatalf("midnight, 1 January 2024: %d %v, want %d", got, err, step.want)
		}
	}
}

// Clients with the same text share a server copy per connection. After a
// schema change made around the proxy, a client that described the
// statement before it may be lent a connection whose copy another client
// prepared after it, and the other way round. PostgreSQL refuses the
// first (the statement's result changed under it) and runs the second.
func TestTxnSharedStatementCopyOfAnotherShape(t *testing.T) {
	h := startProxy(t, "pool:\n  mode: transaction\n  max_size: 2\n")
	ctx := ctxT(t, 30*time.Second)
	table := threeColumnTable(t, h, ctx, "shared_shape")
	query := "select * from " + table + " where id = $1"
	prepare := func(fe *pgproto3.Frontend) int {
		fe.Send(&pgproto3.Parse{Name: "s1", Query: query, ParameterOIDs: []uint32{23}})
		fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "s1"})
		fe.Send(&pgproto3.Sync{})
		msgs := expectMessages(t, fe, "ParseComplete", "ParameterDescription", "RowDescription", "ReadyForQuery")
		return len(msgs[2].(*pgproto3.RowDescription).Fields)
	}
	run := func(fe *pgproto3.Frontend) {
		fe.Send(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
	}
	before, after, holder := loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty")
	if n := prepare(before); n != 3 {
		t.Fatalf("%d columns before the change", n)
	}
	if _, err := h.env.Connect(t, h.env.AppDSN("ai_ninja")).Exec(ctx, "alter table "+table+" drop column f1"); err != nil {
		t.Fatal(err)
	}
	// The holder keeps the connection with the copy prepared before the
	// change, so the other client prepares its own on a second one. (A
	// lone BEGIN takes no server connection: the proxy holds it back.)
	holder.Send(&pgproto3.Query{String: "begin; select 1"})
	expectMessages(t, holder, "CommandComplete", "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	if n := prepare(after); n != 2 {
		t.Fatalf("%d columns after the change", n)
	}
	run(before)
	msgs := expectMessages(t, before, "ErrorResponse", "ReadyForQuery")
	if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "0A000" {
		t.Fatalf("statement described before the change, on the copy made after it: %s %q, want 0A000", e.Code, e.Message)
	}
	holder.Send(&pgproto3.Query{String: "rollback"})
	expectMessages(t, holder, "CommandComplete", "ReadyForQuery")
	// Both connections are idle; the newest back, lent first, is the one
	// whose copy was prepared before the change.
	waitFor(t, 5*time.Second, "the connections back in the pool", func() bool { return allIdle(h) })
	run(after)
	msgs = expectMessages(t, after, "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
	if n := len(msgs[1].(*pgproto3.DataRow).Values); n != 2 {
		t.Fatalf("statement described after the change: %d columns, want 2", n)
	}
}

// pgjdbc learns a named statement's columns from a Describe of the portal
// it binds, and binds it again later without a Describe. Prepared anew on
// another server connection after a schema change made around the proxy,
// the statement must be refused as PostgreSQL refuses it ("cached plan
// must not change result type", which pgjdbc's autosave retries), not run
// with a shape the client never saw.
func TestTxnPortalDescribedStatementKeepsItsShape(t *testing.T) {
	h := startProxy(t, "pool:\n  mode: transaction\n  max_size: 2\n")
	ctx := ctxT(t, 30*time.Second)
	table := threeColumnTable(t, h, ctx, "portal_shape")
	client, holder := loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty")
	client.Send(&pgproto3.Parse{Name: "S_1", Query: "select * from " + table + " where id = $1", ParameterOIDs: []uint32{23}})
	client.Send(&pgproto3.Bind{PreparedStatement: "S_1", Parameters: [][]byte{[]byte("1")}})
	client.Send(&pgproto3.Describe{ObjectType: 'P'})
	client.Send(&pgproto3.Execute{})
	client.Send(&pgproto3.Sync{})
	msgs := expectMessages(t, client, "ParseComplete", "BindComplete", "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	if n := len(msgs[2].(*pgproto3.RowDescription).Fields); n != 3 {
		t.Fatalf("%d columns before the change", n)
	}
	if _, err := h.env.Connect(t, h.env.AppDSN("ai_ninja")).Exec(ctx, "alter table "+table+" drop column f1"); err != nil {
		t.Fatal(err)
	}
	// The holder keeps the connection with the copy prepared before the
	// change, so the client's statement is prepared on the other one.
	holder.Send(&pgproto3.Query{String: "begin; select 1"})
	expectMessages(t, holder, "CommandComplete", "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	client.Send(&pgproto3.Bind{PreparedStatement: "S_1", Parameters: [][]byte{[]byte("1")}})
	client.Send(&pgproto3.Execute{})
	client.Send(&pgproto3.Sync{})
	msgs = expectMessages(t, client, "ErrorResponse", "ReadyForQuery")
	if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "0A000" {
		t.Fatalf("statement described through its portal before the change, prepared anew after it: %s %q, want 0A000", e.Code, e.Message)
	}
}

// threeColumnTable makes a table (id, f1, f2) holding one row, (1, 10, 20),
// for tests that change its shape under a prepared statement.
func threeColumnTable(t *testing.T, h *harness, ctx context.Context, prefix string) string {
	t.Helper()
	table := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := h.ninja(t).Exec(ctx, "create table "+table+" (id int, f1 int, f2 int); insert into "+table+" values (1, 10, 20)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = h.direct(t).Exec(context.Background(), "drop table if exists ninja."+table+", public."+table)
	})
	return table
}
