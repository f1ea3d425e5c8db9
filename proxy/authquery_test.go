package proxy_test

import (
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
