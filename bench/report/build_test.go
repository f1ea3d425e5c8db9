package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildRowsPerTarget: every target that ran gets a row in table
// order; Pgpool-II, optional, gets none when it did not run, and the
// mandatory targets keep theirs even without a run.
func TestBuildRowsPerTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		ran  []string
		want []string
	}{
		{"with Pgpool-II", []string{"direct", "pgbouncer", "pgpool", "pgninja"}, []string{"direct", "pgbouncer", "pgpool", "pgninja"}},
		{"without Pgpool-II", []string{"direct", "pgbouncer", "pgninja"}, []string{"direct", "pgbouncer", "pgninja"}},
		{"an interrupted run", []string{"direct", "pgninja"}, []string{"direct", "pgbouncer", "pgninja"}},
		{"with the bare relays", []string{"direct", "pgbouncer", "pgninja", "pump_netpoll", "pump_epoll", "pump_coro"},
			[]string{"direct", "pgbouncer", "pgninja", "pump_netpoll", "pump_epoll", "pump_coro"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, text string) {
				t.Helper()
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("meta.tsv", "rounds\t1\n")
			write("plan.tsv", "s1\tsession\tsession: -S\t-S\tsession\n")
			for _, target := range tc.ran {
				write("raw/s1."+target+".r1.rc", "0\n")
				write("raw/s1."+target+".r1.out", "tps = 1000.0 (without initial connection time)\n")
			}
			r, err := build(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range r.Rows {
				got = append(got, row.Target)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows for %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMemoryRowsPlainAndTLS: the idle-client rows come plain then TLS,
// each pgninja row compared with PgBouncer's of the same kind, and only
// the plain one checked against the 250 MB target.
func TestMemoryRowsPlainAndTLS(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"meta.tsv":          "rounds\t1\nidle_clients\t100\n",
		"plan.tsv":          "",
		"mem/pgbouncer":     "before_kb\t1024\nafter_kb\t2048\nclients\t100\n",
		"mem/pgninja":       "before_kb\t10240\nafter_kb\t12288\nclients\t100\n",
		"mem/pgbouncer_tls": "before_kb\t1024\nafter_kb\t5120\nclients\t100\n",
		"mem/pgninja_tls":   "before_kb\t10240\nafter_kb\t18432\nclients\t100\n",
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range r.Memory {
		got = append(got, fmt.Sprintf("%s tls=%v +%.0f", m.Target, m.TLS, *m.AddedMB))
	}
	want := []string{"pgbouncer tls=false +1", "pgninja tls=false +2", "pgbouncer tls=true +4", "pgninja tls=true +8"}
	if !slices.Equal(got, want) {
		t.Errorf("memory rows %v, want %v", got, want)
	}
	md := markdown(r)
	for _, line := range []string{
		"| 100 idle clients (transaction): proxy RSS | pgninja | 10.0 → 12.0 MB | +2.0 MB | — | — | 2.00 (RSS) |",
		"| 100 idle TLS clients (transaction): proxy RSS | pgninja | 10.0 → 18.0 MB | +8.0 MB | — | — | 2.00 (RSS) |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("the table lacks %q:\n%s", line, md)
		}
	}
	var memChecks int
	for _, c := range r.Checks {
		if strings.Contains(c.What, "idle clients") {
			memChecks++
			if c.Result != "+2.0 MB" {
				t.Errorf("the memory target was checked on %s, want the plain row's +2.0 MB", c.Result)
			}
		}
	}
	if memChecks != 1 {
		t.Errorf("%d memory checks, want 1", memChecks)
	}
}
