package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// step is one statement a script's client sends; "quit" closes the
// client's connection, and its next step opens another.
type step struct{ client, sql string }

// answersAsPostgreSQL runs a script straight on the primary (one
// connection per client) and through a transaction-mode proxy with pool
// server connections, and fails on every answer that differs. The proxy
// must neither send a notice nor close a server connection on the way.
func answersAsPostgreSQL(t *testing.T, pool int, steps []step) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	h := startProxy(t, fmt.Sprintf(txnMode, pool, "10s"))
	run := func(connect func() *pgx.Conn) []string {
		clients := map[string]*pgx.Conn{}
		var got []string
		for _, s := range steps {
			c := clients[s.client]
			if s.sql == "quit" {
				if c != nil {
					_ = c.Close(ctx)
				}
				delete(clients, s.client)
				continue
			}
			if c == nil {
				c = connect()
				clients[s.client] = c
			}
			got = append(got, s.client+": "+s.sql+" → "+answer(ctx, c, s.sql))
		}
		for _, c := range clients {
			// Through the proxy the server connection is not reset
			// between clients: leave it as it was.
			_, _ = c.Exec(ctx, "deallocate all")
		}
		return got
	}
	want := run(func() *pgx.Conn { return h.direct(t) })
	var ns notices
	closedBefore := closedConns(h)
	got := run(func() *pgx.Conn { return connectNoticed(t, h.dsn("ninja", "ninja", "ai_ninja"), &ns) })
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("through the proxy %s\n                   PostgreSQL %s", got[i], want[i])
		}
	}
	if got := ns.take(); len(got) > 0 {
		t.Errorf("notices: %q", describeNotices(got))
	}
	if n := closedConns(h) - closedBefore; n > 0 {
		t.Errorf("%d server connections closed", n)
	}
}

// answer runs sql with the simple protocol; "bind NAME" as a Bind and
// Execute of the prepared statement NAME; "parse NAME SQL" as a Parse of
// SQL under NAME; "ext SQL" through the extended protocol's unnamed
// statement, as psycopg 3 sends its own commands. It describes what came
// back: the last result's first value, or the error's SQLSTATE.
func answer(ctx context.Context, c *pgx.Conn, sql string) string {
	var res []*pgconn.Result
	var err error
	if name, ok := strings.CutPrefix(sql, "bind "); ok {
		r := c.PgConn().ExecPrepared(ctx, name, nil, nil, nil).Read()
		res, err = []*pgconn.Result{r}, r.Err
	} else if rest, ok := strings.CutPrefix(sql, "parse "); ok {
		name, query, _ := strings.Cut(rest, " ")
		if _, err := c.PgConn().Prepare(ctx, name, query, nil); err != nil {
			return "ERROR " + sqlstate(err)
		}
		return "PARSE"
	} else if query, ok := strings.CutPrefix(sql, "ext "); ok {
		r := c.PgConn().ExecParams(ctx, query, nil, nil, nil, nil).Read()
		res, err = []*pgconn.Result{r}, r.Err
	} else {
		res, err = c.PgConn().Exec(ctx, sql).ReadAll()
	}
	if err != nil {
		return "ERROR " + sqlstate(err)
	}
	last := res[len(res)-1]
	if len(last.Rows) > 0 {
		return string(last.Rows[0][0])
	}
	return last.CommandTag.String()
}

// Settings through transaction mode are each client's own as PostgreSQL
// keeps them, savepoints included. The other client's request between
// makes the server connection hold its settings, so that the first
// client's next request has the proxy bring the connection back to what
// it tracked.
func TestTxnSettingsAnswerAsPostgreSQL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"ROLLBACK TO undoes a SET", []step{
			{"a", "begin"}, {"a", "savepoint s"}, {"a", "set search_path = pgninja_elsewhere"},
			{"a", "rollback to savepoint s"}, {"a", "commit"}, {"b", "select 1"}, {"a", "show search_path"}}},
		{"RELEASE keeps it", []step{
			{"a", "begin"}, {"a", "savepoint s"}, {"a", "set search_path = pgninja_elsewhere"},
			{"a", "release savepoint s"}, {"a", "commit"}, {"b", "select 1"}, {"a", "show search_path"}}},
		{"nested savepoints", []step{
			{"a", "begin; savepoint x; set timezone = 'Asia/Tokyo'; savepoint y; set timezone = 'Europe/Paris'; rollback to y; commit"},
			{"b", "select 1"}, {"a", "show timezone"},
			{"a", "begin; savepoint x; set timezone = 'America/Lima'; savepoint y; set timezone = 'Europe/Paris'; rollback to x; commit"},
			{"b", "select 1"}, {"a", "show timezone"}}},
		{"a failed subtransaction", []step{
			{"a", "begin"}, {"a", "savepoint s"}, {"a", "set statement_timeout = '3s'"}, {"a", "select nosuch"},
			{"a", "rollback to s"}, {"a", "set work_mem = '7MB'"}, {"a", "commit"},
			{"b", "select 1"}, {"a", "show statement_timeout"}, {"a", "show work_mem"}}},
		{"RESET ALL and DISCARD ALL", []step{
			{"a", "set work_mem = '5MB'"}, {"a", "prepare d as select 1"}, {"b", "select 1"},
			{"a", "reset all"}, {"b", "select 1"}, {"a", "show work_mem"}, {"a", "execute d"},
			{"a", "set work_mem = '6MB'"}, {"a", "discard all"}, {"b", "select 1"}, {"a", "show work_mem"},
			{"a", "execute d"}}},
		{"a SET that fails", []step{
			{"a", "set work_mem = 'lots'"}, {"b", "select 1"}, {"a", "show work_mem"},
			{"a", "set work_mem = '5MB'; select nosuch"}, {"b", "select 1"}, {"a", "show work_mem"}}},
		{"a savepoint name used twice", []step{
			{"a", "begin; savepoint s; set work_mem = '5MB'; savepoint s; set work_mem = '6MB'; rollback to s; release s; commit"},
			{"b", "select 1"}, {"a", "show work_mem"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { answersAsPostgreSQL(t, 1, tc.steps) })
	}
}

// State that pins a client to its server connection is never seen by
// another client, during the session or after it.
func TestTxnPinnedStateAnswersAsPostgreSQL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"temporary table", []step{
			{"a", "create temp table pgninja_tmp (i int)"}, {"a", "insert into pgninja_tmp values (1)"},
			{"b", "select count(*) from pgninja_tmp"}, {"a", "select count(*) from pgninja_tmp"},
			{"a", "quit"}, {"b", "select count(*) from pgninja_tmp"}, {"c", "select count(*) from pgninja_tmp"}}},
		{"cursor WITH HOLD", []step{
			{"a", "declare cur cursor with hold for select 42"}, {"b", "fetch cur"}, {"a", "fetch cur"},
			{"a", "quit"}, {"b", "fetch cur"}, {"c", "fetch cur"}}},
		{"set_config for the session", []step{
			{"a", "select set_config('work_mem', '9MB', false)"}, {"b", "show work_mem"},
			{"a", "show work_mem"}, {"a", "quit"}, {"b", "show work_mem"}, {"c", "show work_mem"}}},
		{"advisory lock", []step{
			{"a", "select pg_advisory_lock(4242)"}, {"b", "select pg_try_advisory_lock(4242)"},
			{"a", "quit"}, {"b", "select pg_try_advisory_lock(4243)"}, {"c", "select pg_try_advisory_lock(4242)"},
			{"b", "select pg_advisory_unlock_all()"}, {"c", "select pg_advisory_unlock_all()"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { answersAsPostgreSQL(t, 2, tc.steps) })
	}
}
