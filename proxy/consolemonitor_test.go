package proxy_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
)

// TestConsoleAsPgBouncerMonitoringReadsIt: the SHOW commands PgBouncer's
// monitoring reads (pgbouncer_exporter among others: VERSION, LISTS,
// CONFIG, STATS_TOTALS, TOTALS) have PgBouncer's shape, so that pointing
// such a tool at pgninja works. The exporter, for one, gives up on a
// scrape whose SHOW CONFIG has other than three or four columns, and
// finds its counters in STATS_TOTALS by PgBouncer's names.
func TestConsoleAsPgBouncerMonitoringReadsIt(t *testing.T) {
	h := startProxy(t, consoleUsers+"max_client_conn: 321\nstats_period: 1s\n")
	ctx := ctxT(t, 30*time.Second)
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	app := h.ninja(t)
	for range 3 {
		if _, err := app.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		show string
		want []string
	}{
		{"SHOW VERSION", []string{"version"}},
		{"SHOW LISTS", []string{"list", "items"}},
		{"SHOW CONFIG", []string{"key", "value", "default", "changeable"}},
		{"SHOW TOTALS", []string{"name", "value"}},
		{"SHOW STATS_TOTALS", []string{"database", "server_assignment_count", "xact_count", "query_count",
			"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time"}},
		{"SHOW STATS_AVERAGES", []string{"database", "xact_count", "query_count", "bytes_received", "bytes_sent",
			"xact_time", "query_time", "wait_time"}},
	} {
		if got := columnsOf(t, con, tt.show); !slices.Equal(got, tt.want) {
			t.Errorf("%s columns %v, want %v", tt.show, got, tt.want)
		}
	}

	// SHOW LISTS: PgBouncer's lists first, in its order, every count a
	// number.
	lists := consoleRows(t, con, "SHOW LISTS")
	var names []string
	for _, r := range lists {
		names = append(names, r["list"])
		if _, err := strconv.ParseFloat(r["items"], 64); err != nil {
			t.Errorf("SHOW LISTS %s: items %q is not a number", r["list"], r["items"])
		}
	}
	pgbouncerLists := []string{"databases", "users", "pools", "free_clients", "used_clients", "login_clients",
		"free_servers", "used_servers", "dns_names", "dns_zones", "dns_queries", "dns_pending"}
	if len(names) < len(pgbouncerLists) || !slices.Equal(names[:len(pgbouncerLists)], pgbouncerLists) {
		t.Errorf("SHOW LISTS lists %v, want PgBouncer's %v first", names, pgbouncerLists)
	}
	if r := rowsWhere(lists, "list", "login_clients"); len(r) != 1 || r[0]["items"] != "0" {
		t.Errorf("SHOW LISTS login_clients: %v, want 0 with nobody logging in", r)
	}

	// SHOW CONFIG: the value, the default and whether a reload applies it.
	cfg := map[string]map[string]string{}
	for _, r := range consoleRows(t, con, "SHOW CONFIG") {
		cfg[r["key"]] = r
	}
	for _, tt := range []struct{ key, value, def, changeable string }{
		{"max_client_conn", "321", "10000", "yes"},
		{"pool.mode", "transaction", "session", "yes"},
		{"pool.max_size", "20", "20", "yes"},
		{"admin_listen", cfg["admin_listen"]["value"], "127.0.0.1:9432", "no"},
		{"routing.enabled", "false", "false", "no"},
		{"sidecar.backup.enabled", "false", "false", "no"},
	} {
		r := cfg[tt.key]
		if r["value"] != tt.value || r["default"] != tt.def || r["changeable"] != tt.changeable {
			t.Errorf("SHOW CONFIG %s: %v, want value %q, default %q, changeable %q", tt.key, r, tt.value, tt.def, tt.changeable)
		}
	}

	// STATS_TOTALS and TOTALS count what SHOW STATS counts.
	var stats map[string]string
	waitFor(t, 10*time.Second, "SHOW STATS to count the three transactions", func() bool {
		rows := rowsWhere(consoleRows(t, con, "SHOW STATS"), "database", "ai_ninja")
		if len(rows) == 1 && rows[0]["total_xact_count"] == "3" {
			stats = rows[0]
			return true
		}
		return false
	})
	totals := rowsWhere(consoleRows(t, con, "SHOW STATS_TOTALS"), "database", "ai_ninja")
	if len(totals) != 1 {
		t.Fatalf("SHOW STATS_TOTALS: %v, want a row for ai_ninja", totals)
	}
	for col, statsCol := range map[string]string{"xact_count": "total_xact_count", "query_count": "total_query_count",
		"bytes_received": "total_received", "bytes_sent": "total_sent", "server_assignment_count": "total_server_assignment_count"} {
		if totals[0][col] != stats[statsCol] {
			t.Errorf("SHOW STATS_TOTALS %s = %q, SHOW STATS %s = %q", col, totals[0][col], statsCol, stats[statsCol])
		}
	}
	sum := map[string]string{}
	for _, r := range consoleRows(t, con, "SHOW TOTALS") {
		sum[r["name"]] = r["value"]
		if _, err := strconv.ParseUint(r["value"], 10, 64); err != nil {
			t.Errorf("SHOW TOTALS %s: %q is not a count", r["name"], r["value"])
		}
	}
	// Only ai_ninja has traffic (the console counts nowhere).
	for name, statsCol := range map[string]string{"total_xact_count": "total_xact_count", "total_query_count": "total_query_count",
		"total_client_bytes": "total_received", "total_server_bytes": "total_sent"} {
		if sum[name] != stats[statsCol] {
			t.Errorf("SHOW TOTALS %s = %q, SHOW STATS %s = %q", name, sum[name], statsCol, stats[statsCol])
		}
	}
	for _, name := range []string{"avg_xact_count", "avg_query_count", "avg_client_bytes", "avg_server_bytes",
		"avg_xact_time", "avg_query_time", "avg_wait_time"} {
		if _, ok := sum[name]; !ok {
			t.Errorf("SHOW TOTALS has no %s", name)
		}
	}
}

// TestShowClientsNamesAUnixSocketClientsProcess: as in PgBouncer,
// remote_pid in SHOW CLIENTS is the process of a client on the unix
// socket (here the test itself), and 0 for one over TCP.
func TestShowClientsNamesAUnixSocketClientsProcess(t *testing.T) {
	env := testbed.Require(t)
	dir := t.TempDir()
	h := startServer(t, env, backendsOf(t, env)+consoleUsers, nil,
		serverHooks{sets: []string{"listen=" + freeAddr(t), "unix_socket_dir=" + dir}})
	ctx := ctxT(t, 30*time.Second)
	unixDSN := fmt.Sprintf("host=%s port=%d user=ninja password=ninja dbname=ai_ninja sslmode=disable application_name=by_unix", dir, h.port())
	local, err := pgx.Connect(ctx, unixDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close(ctx)
	h.ninja(t)
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	byApp := map[string]string{}
	for _, r := range rowsWhere(consoleRows(t, con, "SHOW CLIENTS"), "database", "ai_ninja") {
		byApp[r["application_name"]] = r["remote_pid"]
	}
	if len(byApp) != 2 || byApp["by_unix"] != strconv.Itoa(os.Getpid()) || byApp[""] != "0" {
		t.Errorf("SHOW CLIENTS remote_pid by application_name: %v, want by_unix %d and the TCP client 0", byApp, os.Getpid())
	}
}
