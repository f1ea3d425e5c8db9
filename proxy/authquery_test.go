package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestAuthQuery: with auth.query (PgBouncer's auth_query), a role the
// config does not list logs in with its PostgreSQL password: the query,
// run as auth.query_user, returns its verifier, and its own SCRAM login
// gives the keys its server connections need. A wrong password gets
// 28P01, a role the query does not find 28000, a role with no password
// 28P01, and a query that cannot run 08006 with the server's words.
func TestAuthQuery(t *testing.T) {
	env := testbed.Require(t)
	query := "select rolname, rolpassword from pg_authid where rolname = $1 and rolcanlogin"
	extra := backendsOf(t, env) + fmt.Sprintf("pool: {mode: transaction}\nauth:\n  query: %q\n  query_user: %s\n", query, env.SuperUser)
	h := startWith(t, env, extra)
	direct := h.direct(t)
	ctx := ctxT(t, 60*time.Second)
	role, _ := scramRole(t, direct, "aq-secret")
	connect := func(user, pass string) (*pgx.Conn, error) {
		return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/ai_ninja?sslmode=disable", user, pass, h.addr))
	}
	for i := range 2 { // the second login reuses the lookup's connection
		c, err := connect(role, "aq-secret")
		if err != nil {
			t.Fatalf("login %d of a role only PostgreSQL knows: %v", i, err)
		}
		var who string
		if err := c.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != role {
			t.Errorf("login %d is %q (%v), want %s", i, who, err, role)
		}
		_ = c.Close(ctx)
	}
	if _, err := connect(role, "wrong"); sqlstate(err) != "28P01" {
		t.Errorf("a wrong password: %v, want 28P01", err)
	}
	if _, err := connect("no_such_role", "x"); sqlstate(err) != "28000" || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a role the query does not find: %v, want 28000", err)
	}
	if _, err := direct.Exec(ctx, "alter role "+role+" password null"); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(role, ""); sqlstate(err) != "28P01" {
		t.Errorf("a role with no password: %v, want 28P01", err)
	}
	var n int
	if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name = 'pgninja-auth-query'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d lookup connections (%v), want the one reused", n, err)
	}
	if _, err := direct.Exec(ctx, "alter role "+role+" password 'aq-secret'"); err != nil {
		t.Fatal(err)
	}
	// A lookup connection the server ended while it sat idle (a restart,
	// an administrator) costs no login: the lookup runs on a new one.
	if _, err := direct.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgninja-auth-query'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the lookup connection ended", func() bool {
		var n int
		err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name = 'pgninja-auth-query'").Scan(&n)
		return err == nil && n == 0
	})
	if c, err := connect(role, "aq-secret"); err != nil {
		t.Errorf("a login after the lookup connection was ended: %v", err)
	} else {
		_ = c.Close(ctx)
	}

	// A query the server refuses: the client hears it, as 08006.
	bad, err := config.Parse([]byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nusers:\n  - {name: "+env.SuperUser+", password: "+env.SuperPass+"}\n"+
		backendsOf(t, env)+"auth:\n  query: select 1 from no_such_table where $1 = ''\n  query_user: "+env.SuperUser+"\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Reload(bad); err != nil {
		t.Fatal(err)
	}
	_, err = connect(role, "x")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Detail, "no_such_table") {
		t.Errorf("a query that fails: %v, want 08006 with the server's error in the detail", err)
	}
}

// TestAuthQuerySlowLookupHoldsUpNoOne: a lookup stuck on the server (here
// on a row lock the test holds) does not keep other users from logging
// in: they run on another of the database's lookup connections.
func TestAuthQuerySlowLookupHoldsUpNoOne(t *testing.T) {
	env := testbed.Require(t)
	gate := fmt.Sprintf("aq_gate_%d", time.Now().UnixNano()%1_000_000_000)
	// The lookup of aq_waits reads the gate's row FOR SHARE, so it waits
	// while the test holds the row FOR UPDATE. Lookups run in database
	// postgres, where the harness's direct connections make the gate.
	query := "select rolname, rolpassword from pg_authid where rolname = $1 and rolcanlogin" +
		" and ($1 <> 'aq_waits' or exists (select 1 from " + gate + " for share))"
	extra := backendsOf(t, env) + fmt.Sprintf("pool: {mode: transaction}\nauth:\n  query: %q\n  query_user: %s\n  query_database: postgres\n", query, env.SuperUser)
	h := startWith(t, env, extra)
	direct := h.direct(t)
	ctx := ctxT(t, 60*time.Second)
	if _, err := direct.Exec(ctx, "create table "+gate+" (x int); insert into "+gate+" values (1)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = direct.Exec(context.Background(), "drop table if exists "+gate) })
	role, _ := scramRole(t, direct, "aq-secret")
	connect := func(user, pass string) (*pgx.Conn, error) {
		return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/ai_ninja?sslmode=disable", user, pass, h.addr))
	}

	// The lock is held on a connection of its own: pg_stat_activity read
	// inside a transaction is a snapshot taken once.
	holder, err := h.direct(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "select * from "+gate+" for update"); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := connect("aq_waits", "x")
		waited <- err
	}()
	waitFor(t, 10*time.Second, "the lookup to wait on the lock", func() bool {
		var n int
		err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name = 'pgninja-auth-query' and wait_event_type = 'Lock'").Scan(&n)
		return err == nil && n == 1
	})

	c, err := connect(role, "aq-secret")
	if err != nil {
		t.Fatalf("a login while another lookup waits: %v", err)
	}
	_ = c.Close(ctx)
	select {
	case err := <-waited:
		t.Fatalf("the waiting lookup ended (%v) before the lock was let go: the other login waited for it", err)
	default:
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; sqlstate(err) != "28000" {
		t.Errorf("the lookup that waited, once let through: %v, want 28000 (no such role)", err)
	}
}
