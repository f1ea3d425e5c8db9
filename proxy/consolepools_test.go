package proxy_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5"
)

// columnsOf is the column names of a console SHOW, in order.
func columnsOf(t *testing.T, c *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := c.Query(ctxT(t, 10*time.Second), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var cols []string
	for _, fd := range rows.FieldDescriptions() {
		cols = append(cols, fd.Name)
	}
	return cols
}

// connColumns are PgBouncer 1.18's SHOW CLIENTS and SHOW SERVERS columns.
var connColumns = []string{"type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
	"connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls",
	"application_name"}

// TestShowPoolsAsPgBouncer: SHOW POOLS, SHOW DATABASES, SHOW CLIENTS and
// SHOW SERVERS begin with PgBouncer 1.18's columns, in its order, for the
// exporters and scripts that read them. sv_login counts connections being
// opened and sv_used idle ones that will be checked before they are lent
// (state used in SHOW SERVERS); a client's link names its server
// connection's ptr and the other way round.
func TestShowPoolsAsPgBouncer(t *testing.T) {
	env := testbed.Require(t)
	var stall atomic.Bool
	release := make(chan struct{})
	dial := func(ctx context.Context, tg pool.Target) (*pool.Conn, error) {
		if stall.Load() {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return pool.Dial(ctx, tg)
	}
	h := startWithDial(t, env, backendsOf(t, env)+consoleUsers+"  health_check_after: 300ms\n", dial)
	ctx := ctxT(t, 30*time.Second)
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		show string
		want []string
	}{
		{"SHOW POOLS", []string{"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
			"sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
			"maxwait", "maxwait_us", "pool_mode"}},
		{"SHOW DATABASES", []string{"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
			"reserve_pool", "pool_mode", "max_connections", "current_connections", "paused", "disabled"}},
		{"SHOW CLIENTS", connColumns},
		{"SHOW SERVERS", connColumns},
	} {
		if got := columnsOf(t, con, tt.show); len(got) < len(tt.want) || !slices.Equal(got[:len(tt.want)], tt.want) {
			t.Errorf("%s columns %v, want PgBouncer's %v first", tt.show, got, tt.want)
		}
	}

	pools := func() map[string]string {
		rows := rowsWhere(consoleRows(t, con, "SHOW POOLS"), "database", "ai_ninja")
		if len(rows) != 1 {
			t.Fatalf("SHOW POOLS: %v, want one ai_ninja pool", rows)
		}
		return rows[0]
	}
	a := h.ninja(t)
	if _, err := a.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the idle connection to need a check (sv_used)", func() bool {
		p := pools()
		return p["sv_used"] == "1" && p["sv_idle"] == "0"
	})

	// A second connection being opened is sv_login until the dial ends.
	tx := holdServer(t, ctx, a)
	stall.Store(true)
	b := h.ninja(t)
	done := make(chan error, 1)
	go func() {
		_, err := b.Exec(ctx, "select 1")
		done <- err
	}()
	waitFor(t, 5*time.Second, "a connection being opened (sv_login)", func() bool {
		p := pools()
		return p["sv_login"] == "1" && p["sv_active"] == "1"
	})
	clients := rowsWhere(consoleRows(t, con, "SHOW CLIENTS"), "database", "ai_ninja")
	active, waiting := rowsWhere(clients, "state", "active"), rowsWhere(clients, "state", "waiting")
	servers := rowsWhere(consoleRows(t, con, "SHOW SERVERS"), "state", "active")
	if len(active) != 1 || len(waiting) != 1 || len(servers) != 1 {
		t.Fatalf("SHOW CLIENTS %v and SHOW SERVERS %v: want one client active on one server, one waiting", clients, servers)
	}
	if c, sv := active[0], servers[0]; c["link"] != sv["ptr"] || sv["link"] != c["ptr"] || c["ptr"] == "" || sv["ptr"] == "" ||
		c["request_time"] == "" || sv["remote_pid"] != sv["pid"] || c["local_port"] != strconv.Itoa(h.port()) {
		t.Errorf("active client %v and its server %v: want each linked to the other, the server's pid as remote_pid, "+
			"the client's last request time and the proxy's port as local_port %d", c, sv, h.port())
	}
	if w := waiting[0]; w["link"] != "" || (w["wait"] == "0" && w["wait_us"] == "0") {
		t.Errorf("waiting client %v: want no link and its wait so far", w)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the request behind the stalled dial: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both connections idle", func() bool {
		p := pools()
		return p["sv_login"] == "0" && p["sv_active"] == "0" && p["sv_tested"] == "0"
	})
}
