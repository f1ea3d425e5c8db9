package main

import (
	"os"
	"path/filepath"
	"slices"
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
