package main

import (
	"reflect"
	"strings"
	"testing"
)

const okOut = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 104420
number of failed transactions: 0 (0.000%)
latency average = 1.538 ms
initial connection time = 69.860 ms
tps = 10452.358868 (without initial connection time)
`

func TestParseOK(t *testing.T) {
	r := parsePgbench(okOut, "", 0)
	if !r.ok || r.tps != 10452.358868 || r.latency != 1.538 || r.processed != 104420 || len(r.errors) != 0 {
		t.Fatalf("got %+v", r)
	}
}

func TestParsePreparedThroughPgBouncer(t *testing.T) {
	// PgBouncer 1.18 in transaction mode with -M prepared: pgbench still
	// prints a TPS from what ran before the clients aborted, and exits 2.
	var stderr strings.Builder
	for i := 0; i < 3; i++ {
		stderr.WriteString("pgbench: error: ERROR:  prepared statement \"P_0\" already exists\n")
	}
	stderr.WriteString("pgbench: error: client 9 script 0 aborted in command 1 query 0: ERROR:  prepared statement \"P_0\" does not exist\n")
	stderr.WriteString("pgbench: error: Run was aborted; the above results are incomplete.\n")
	r := parsePgbench(okOut, stderr.String(), 2)
	want := []string{`ERROR: prepared statement "P_0" already exists (3×)`, `ERROR: prepared statement "P_0" does not exist`}
	if r.ok || !reflect.DeepEqual(strs(r.errors), want) {
		t.Fatalf("got ok=%v errors=%q", r.ok, strs(r.errors))
	}
}

func TestParseTornLines(t *testing.T) {
	// pgbench's two threads write stderr at once.
	stderr := "pgbench: pgbench: error: ERROR:  prepared statement \"P_0\" already exists\n" +
		"error: ERROR:  prepared statement \"P_0\" already exists\n" +
		"pgbench: error: pgbench:ERROR:  prepared statement \"P_0\" already exists\n" +
		" error: ERROR:  prepared statement \"P_0\" already exists\n" +
		"pgbench:pgbench:  error: client 3 aborted while establishing connection\n"
	r := parsePgbench(okOut, stderr, 2)
	want := []string{`ERROR: prepared statement "P_0" already exists (4×)`, `aborted while establishing connection`}
	if !reflect.DeepEqual(strs(r.errors), want) {
		t.Fatalf("got %q", strs(r.errors))
	}
}

func TestSummarizeMergesRounds(t *testing.T) {
	row := &Row{Runs: []Run{
		{Round: 1, Errors: []errCount{{"ERROR: x", 60}, {"ERROR: y", 2}}},
		{Round: 2, OK: true, TPS: 100, LatencyMS: 1, Errors: nil},
		{Round: 3, Errors: []errCount{{"ERROR: x", 4}}},
	}}
	summarize(row)
	if want := "round 1, 3: ERROR: x (64×); round 1: ERROR: y (2×)"; row.Errors != want {
		t.Fatalf("got %q, want %q", row.Errors, want)
	}
	if *row.TPSMedian != 100 {
		t.Fatal(*row.TPSMedian)
	}
}

func strs(es []errCount) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.String()
	}
	return out
}

func TestParseConnectionRefused(t *testing.T) {
	stderr := "pgbench: error: connection to server at \"127.0.0.1\", port 27440 failed: Connection refused\n" +
		"\tIs the server running on that host and accepting TCP/IP connections?\n" +
		"pgbench: error: could not create connection for initialization\n"
	r := parsePgbench("pgbench (15.18)\n", stderr, 1)
	if r.ok || len(r.errors) != 2 || !strings.HasPrefix(r.errors[0].Msg, `connection to server at "127.0.0.1", port 27440 failed: Connection refused Is the server`) {
		t.Fatalf("got %q", strs(r.errors))
	}
}

func TestParseTimeoutAndEmpty(t *testing.T) {
	r := parsePgbench("pgbench (15.18)\n", "", 124)
	if r.ok || len(r.errors) != 1 || !strings.Contains(r.errors[0].Msg, "timed out") {
		t.Fatalf("got %q", strs(r.errors))
	}
	zero := strings.Replace(okOut, "104420", "0", 1)
	zero = zero[:strings.Index(zero, "latency")]
	r = parsePgbench(zero, "", 0)
	if r.ok || len(r.errors) != 1 || !strings.Contains(r.errors[0].Msg, "no transaction completed") {
		t.Fatalf("got %q", strs(r.errors))
	}
}

func TestMedianAndThousands(t *testing.T) {
	if m := median([]float64{3, 1, 2}); *m != 2 {
		t.Fatal(*m)
	}
	if m := median([]float64{4, 1}); *m != 2.5 {
		t.Fatal(*m)
	}
	if median(nil) != nil {
		t.Fatal("median of nothing")
	}
	if s := thousands(17912.6); s != "17,913" {
		t.Fatal(s)
	}
}

func TestCPUPerTx(t *testing.T) {
	us := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		name                     string
		tsv                      string
		transactions             int64
		proxy, proxyUser, server *float64
	}{
		{"all", "hz\t100\nserver\t520\nproxy\t260\nproxy_user\t60\n", 100000, us(26), us(6), us(52)},
		{"before the user split", "hz\t100\nserver\t520\nproxy\t260\n", 100000, us(26), nil, us(52)},
		{"direct: no proxy", "hz\t100\nserver\t520\n", 100000, nil, nil, us(52)},
		{"not measured", "", 100000, nil, nil, nil},
		{"no transactions", "hz\t100\nserver\t520\nproxy\t260\n", 0, nil, nil, nil},
		{"garbage", "hz\tx\nserver\t520\n", 100000, nil, nil, nil},
	} {
		got := cpuPerTx(tt.tsv, tt.transactions)
		if !reflect.DeepEqual(got.proxy, tt.proxy) || !reflect.DeepEqual(got.proxyUser, tt.proxyUser) || !reflect.DeepEqual(got.server, tt.server) {
			t.Errorf("%s: got %v (%v) / %v, want %v (%v) / %v", tt.name, deref(got.proxy), deref(got.proxyUser), deref(got.server),
				deref(tt.proxy), deref(tt.proxyUser), deref(tt.server))
		}
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}
