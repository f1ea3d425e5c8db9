// Command report turns the raw output of a bench/run.sh run into the one
// results table: bench/results/<name>.md and .json, and the table on stdout.
//
//	report -dir WORK -md bench/results/latest.md -json bench/results/latest.json
//
// WORK holds what run.sh wrote: meta.tsv, plan.tsv, raw/<scenario>.<target>.r<N>.{cmd,out,err,rc,proxy},
// routing/<scenario>.<target>.r<N>, mem/<target>[_tls] and backup/{out,err,rc}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// targets in table order, with their display names. An optional target
// that did not run (BENCH_PGPOOL=0, no Pgpool-II; the relays outside the
// rows they stand in for) has no rows.
var targets = []struct {
	id, name string
	optional bool
}{
	{"direct", "direct (primary)", false},
	{"pgbouncer", "PgBouncer", false},
	{"pgpool", "Pgpool-II", true},
	{"pgninja", "pgninja", false},
	{"pump_netpoll", "bare Go relay, runtime poller", true},
	{"pump_epoll", "bare Go relay, own epoll loop", true},
	{"pump_coro", "bare Go relay, coroutines on an epoll loop", true},
}

// Run is one pgbench run.
type Run struct {
	Round     int        `json:"round"`
	Command   string     `json:"command"`
	Exit      int        `json:"exit"`
	TPS       float64    `json:"tps"`
	LatencyMS float64    `json:"latency_ms"`
	Processed int64      `json:"transactions"`
	Failed    int64      `json:"failed_transactions"`
	OK        bool       `json:"ok"`
	Errors    []errCount `json:"errors,omitempty"`
	// PrimaryXacts and ReplicaXacts are the server-side transaction counts
	// (pg_stat_database) during a routing run.
	PrimaryXacts *int64 `json:"primary_xacts,omitempty"`
	ReplicaXacts *int64 `json:"replica_xacts,omitempty"`
	// ProxyCPU and ServerCPU are the CPU time (user and system) the proxy
	// and PostgreSQL spent during the run, per transaction; ProxyUserCPU
	// is the proxy's in user mode, the rest being the kernel's work for
	// its system calls.
	ProxyCPU     *float64 `json:"proxy_cpu_us_per_tx,omitempty"`
	ProxyUserCPU *float64 `json:"proxy_user_cpu_us_per_tx,omitempty"`
	ServerCPU    *float64 `json:"postgresql_cpu_us_per_tx,omitempty"`
}

// Row is one scenario on one target.
type Row struct {
	Scenario       string   `json:"scenario"`
	Label          string   `json:"label"`
	PgbenchArgs    string   `json:"pgbench_args"`
	PoolMode       string   `json:"pool_mode"`
	Target         string   `json:"target"`
	Runs           []Run    `json:"runs"`
	TPSMedian      *float64 `json:"tps_median"`
	LatencyMedian  *float64 `json:"latency_ms_median"`
	RatioDirect    *float64 `json:"ratio_to_direct"`
	RatioPgBouncer *float64 `json:"ratio_to_pgbouncer"`
	ProxyCPU       *float64 `json:"proxy_cpu_us_per_tx_median,omitempty"`
	ProxyUserCPU   *float64 `json:"proxy_user_cpu_us_per_tx_median,omitempty"`
	ServerCPU      *float64 `json:"postgresql_cpu_us_per_tx_median,omitempty"`
	Errors         string   `json:"errors,omitempty"`
	Note           string   `json:"note,omitempty"`
}

// Memory is the idle-client row of one proxy, with plain or TLS clients.
type Memory struct {
	Target         string   `json:"target"`
	TLS            bool     `json:"tls,omitempty"`
	Clients        int      `json:"clients"`
	BeforeMB       *float64 `json:"rss_before_mb"`
	AfterMB        *float64 `json:"rss_after_mb"`
	AddedMB        *float64 `json:"rss_added_mb"`
	ConnectSeconds *float64 `json:"connect_seconds,omitempty"`
	FDLimit        string   `json:"fd_limit,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// Backup is what bench/backup.sh printed.
type Backup struct {
	Rows   []string `json:"rows"`
	Exit   int      `json:"exit"`
	Stderr string   `json:"stderr_tail,omitempty"`
}

// Check is one of the issues' targets, evaluated on this run.
type Check struct {
	What   string `json:"what"`
	Result string `json:"result"`
	Pass   *bool  `json:"pass"`
}

// Report is the whole of latest.json.
type Report struct {
	Meta   map[string]string `json:"meta"`
	Rows   []Row             `json:"rows"`
	Memory []Memory          `json:"memory,omitempty"`
	Backup *Backup           `json:"backup,omitempty"`
	Checks []Check           `json:"targets"`
}

func main() {
	dir := flag.String("dir", "", "bench work directory written by bench/run.sh")
	mdPath := flag.String("md", "", "write the markdown table here")
	jsonPath := flag.String("json", "", "write the JSON results here")
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	r, err := build(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	md := markdown(r)
	fmt.Print(md)
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

func build(dir string) (*Report, error) {
	meta, err := readTSV(filepath.Join(dir, "meta.tsv"))
	if err != nil {
		return nil, err
	}
	r := &Report{Meta: map[string]string{}}
	for _, kv := range meta {
		r.Meta[kv[0]] = kv[1]
	}
	rounds, _ := strconv.Atoi(r.Meta["rounds"])
	plan, err := readTSV(filepath.Join(dir, "plan.tsv"))
	if err != nil {
		return nil, err
	}
	for _, p := range plan {
		if len(p) < 4 {
			continue
		}
		id, group, label, args, mode := p[0], p[1], p[2], p[3], ""
		if len(p) > 4 {
			mode = p[4]
		}
		var rows []*Row
		for _, t := range targets {
			row := &Row{Scenario: id, Label: label, PgbenchArgs: args, PoolMode: mode, Target: t.id}
			for n := 1; n <= rounds; n++ {
				base := filepath.Join(dir, "raw", fmt.Sprintf("%s.%s.r%d", id, t.id, n))
				if _, err := os.Stat(base + ".rc"); err != nil {
					continue // not run (interrupted)
				}
				run := readRun(base, n)
				if kv, err := readTSV(filepath.Join(dir, "routing", fmt.Sprintf("%s.%s.r%d", id, t.id, n))); err == nil {
					run.PrimaryXacts, run.ReplicaXacts = routingCounts(kv)
				}
				row.Runs = append(row.Runs, run)
			}
			if t.optional && len(row.Runs) == 0 {
				continue
			}
			summarize(row)
			rows = append(rows, row)
		}
		ratios(rows)
		for _, row := range rows {
			if group == "routing" && (row.Target == "pgninja" || row.Target == "pgpool") {
				row.Note = routingNote(row.Runs)
			}
			r.Rows = append(r.Rows, *row)
		}
	}
	for _, tls := range []bool{false, true} {
		for _, t := range []string{"pgbouncer", "pgninja"} {
			file := t
			if tls {
				file += "_tls"
			}
			if m, ok := readMemory(filepath.Join(dir, "mem", file), t); ok {
				m.TLS = tls
				r.Memory = append(r.Memory, m)
			}
		}
	}
	r.Backup = readBackup(filepath.Join(dir, "backup"))
	r.Checks = checks(r)
	return r, nil
}

func readRun(base string, round int) Run {
	run := Run{Round: round}
	run.Command = strings.TrimSpace(readFile(base + ".cmd"))
	run.Exit, _ = strconv.Atoi(strings.TrimSpace(readFile(base + ".rc")))
	p := parsePgbench(readFile(base+".out"), readFile(base+".err"), run.Exit)
	run.TPS, run.LatencyMS, run.Processed, run.Failed, run.Errors = p.tps, p.latency, p.processed, p.failed, p.errors
	run.OK = p.ok
	cpu := cpuPerTx(readFile(base+".cpu"), run.Processed)
	run.ProxyCPU, run.ProxyUserCPU, run.ServerCPU = cpu.proxy, cpu.proxyUser, cpu.server
	// run.sh notes here how pgninja died, if it did during this run.
	if crash := strings.TrimSpace(readFile(base + ".proxy")); crash != "" {
		run.Errors = append(run.Errors, errCount{crash, 1})
	}
	return run
}

// summarize computes the medians over the successful rounds and merges the
// rounds' errors: a message is counted over all rounds and, when not every
// round had it, says which did ("round 2: ...").
func summarize(row *Row) {
	var tps, lat, proxyCPU, proxyUserCPU, serverCPU []float64
	type agg struct {
		n      int
		rounds []string
	}
	errs := map[string]*agg{}
	var order []string
	for _, run := range row.Runs {
		if run.OK {
			tps = append(tps, run.TPS)
			lat = append(lat, run.LatencyMS)
			if run.ProxyCPU != nil {
				proxyCPU = append(proxyCPU, *run.ProxyCPU)
			}
			if run.ProxyUserCPU != nil {
				proxyUserCPU = append(proxyUserCPU, *run.ProxyUserCPU)
			}
			if run.ServerCPU != nil {
				serverCPU = append(serverCPU, *run.ServerCPU)
			}
		}
		for _, e := range run.Errors {
			a := errs[e.Msg]
			if a == nil {
				a = &agg{}
				errs[e.Msg] = a
				order = append(order, e.Msg)
			}
			a.n += e.N
			a.rounds = append(a.rounds, strconv.Itoa(run.Round))
		}
	}
	row.TPSMedian = median(tps)
	row.LatencyMedian = median(lat)
	row.ProxyCPU, row.ProxyUserCPU, row.ServerCPU = median(proxyCPU), median(proxyUserCPU), median(serverCPU)
	sort.SliceStable(order, func(i, j int) bool { return errs[order[i]].n > errs[order[j]].n })
	const maxShown = 4
	var parts []string
	for i, msg := range order {
		if i == maxShown {
			parts = append(parts, fmt.Sprintf("and %d more (see the JSON)", len(order)-maxShown))
			break
		}
		a := errs[msg]
		s := errCount{msg, a.n}.String()
		if len(row.Runs) > 1 && len(a.rounds) < len(row.Runs) {
			s = "round " + strings.Join(a.rounds, ", ") + ": " + s
		}
		parts = append(parts, s)
	}
	row.Errors = strings.Join(parts, "; ")
}

func ratios(rows []*Row) {
	var direct, bouncer *float64
	for _, r := range rows {
		switch r.Target {
		case "direct":
			direct = r.TPSMedian
		case "pgbouncer":
			bouncer = r.TPSMedian
		}
	}
	for _, r := range rows {
		r.RatioDirect = ratio(r.TPSMedian, direct)
		r.RatioPgBouncer = ratio(r.TPSMedian, bouncer)
	}
}

func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	v := *a / *b
	return &v
}

func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

func routingCounts(kv [][]string) (p, r *int64) {
	for _, e := range kv {
		v, err := strconv.ParseInt(e[1], 10, 64)
		if err != nil {
			continue
		}
		switch e[0] {
		case "primary":
			p = &v
		case "replica":
			r = &v
		}
	}
	return p, r
}

// routingNote says where pgninja's routing-row transactions ran, from the
// servers' own pg_stat_database counters. The counters are flushed about once
// a second, so the share is a lower bound.
func routingNote(runs []Run) string {
	var replica, processed int64
	for _, run := range runs {
		if run.ReplicaXacts != nil && run.Processed > 0 {
			replica += *run.ReplicaXacts
			processed += run.Processed
		}
	}
	if processed == 0 {
		return ""
	}
	share := min(100*float64(replica)/float64(processed), 100)
	switch {
	case share < 5:
		return fmt.Sprintf("NOT ROUTED: the replica ran %.0f%% of the transactions; reads went to the primary", share)
	case share < 50:
		return fmt.Sprintf("partly routed: the replica ran ≈%.0f%% of the transactions", share)
	default:
		return fmt.Sprintf("routed: the replica ran ≈%.0f%% of the transactions", share)
	}
}

func readMemory(path, target string) (Memory, bool) {
	kv, err := readTSV(path)
	if err != nil {
		return Memory{}, false
	}
	m := Memory{Target: target}
	var before, after float64
	var haveBefore, haveAfter bool
	for _, e := range kv {
		switch e[0] {
		case "before_kb":
			before, haveBefore = kb(e[1])
		case "after_kb":
			after, haveAfter = kb(e[1])
		case "clients":
			m.Clients, _ = strconv.Atoi(e[1])
		case "connect_seconds":
			if v, err := strconv.ParseFloat(e[1], 64); err == nil {
				m.ConnectSeconds = &v
			}
		case "fd_limit":
			m.FDLimit = e[1]
		case "error":
			if m.Error != "" {
				m.Error += "; "
			}
			m.Error += e[1]
		}
	}
	if haveBefore {
		m.BeforeMB = &before
	}
	if haveAfter {
		m.AfterMB = &after
		if haveBefore {
			d := after - before
			m.AddedMB = &d
		}
	}
	return m, true
}

func kb(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v / 1024, err == nil
}

func readBackup(dir string) *Backup {
	if _, err := os.Stat(filepath.Join(dir, "rc")); err != nil {
		return nil
	}
	b := &Backup{}
	b.Exit, _ = strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(dir, "rc"))))
	for _, l := range strings.Split(readFile(filepath.Join(dir, "out")), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "|-") && !strings.HasPrefix(l, "|:") && !strings.HasPrefix(l, "| -") {
			b.Rows = append(b.Rows, l)
		}
	}
	if b.Exit != 0 || len(b.Rows) == 0 {
		lines := strings.Split(strings.TrimSpace(readFile(filepath.Join(dir, "err"))), "\n")
		if len(lines) > 3 {
			lines = lines[len(lines)-3:]
		}
		b.Stderr = strings.Join(lines, " / ")
	}
	return b
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// readTSV reads tab-separated lines; every line has at least two fields.
func readTSV(path string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			f = append(f, "")
		}
		out = append(out, f)
	}
	return out, nil
}
