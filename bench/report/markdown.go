package main

import (
	"fmt"
	"strings"
)

// Columns of the one table. bench/backup.sh prints its rows in these too.
var header = []string{"Scenario", "Target", "TPS per round", "TPS median", "Mean latency", "× direct", "× PgBouncer", "Errors / notes", "CPU µs per transaction: proxy (user) / PostgreSQL"}

func markdown(r *Report) string {
	var b strings.Builder
	m := r.Meta
	title := "pgninja benchmark"
	if m["quick"] == "1" {
		title += " (quick smoke run — not comparable)"
	}
	fmt.Fprintf(&b, "# %s — %s\n\n", title, m["date"])
	pgpool := ""
	if m["pgpool"] != "" {
		pgpool = ", Pgpool-II " + m["pgpool"]
	}
	fmt.Fprintf(&b, "Machine: %s cores (%s), shared by pgbench, PostgreSQL and the proxy. "+
		"PostgreSQL %s, PgBouncer %s%s, pgninja at %s (%s).\n\n",
		m["cores"], m["cpu"], m["postgresql"], m["pgbouncer"], pgpool, m["commit"], m["go"])
	fmt.Fprintf(&b, "Each cell: `pgbench -T %s -j 2`, scale %s, %s round(s) with the target order alternating; "+
		"PgBouncer and pgninja with pool size %s in the row's pool mode, trust auth for clients, SCRAM to PostgreSQL. "+
		"TPS median and latency are medians over the rounds; ratios compare medians.%s%s\n\n",
		m["seconds"], m["scale"], m["rounds"], m["pool_size"], warmupNote(m["warmup"]), pgpoolNote(m["pgpool"]))
	b.WriteString("The last column is the CPU time (user and system) the proxy and PostgreSQL (primary and replica, backends included) " +
		"spent during each run, read from /proc, per transaction pgbench completed; medians over the rounds. " +
		"In brackets, the proxy's time in user mode; the rest is the kernel's, mostly its work for the proxy's socket calls. " +
		"Where pgbench, PostgreSQL and the proxy share the cores, a proxy's throughput follows its CPU per transaction.\n\n")
	if hasPumps(r) {
		b.WriteString("The bare Go relays (bench/pump) only copy bytes between each client and a PostgreSQL connection of its own: " +
			"no pooling, parsing or authentication. One waits through the Go runtime's network poller, as every net.Conn program does; " +
			"one is a locked thread with its own epoll loop and raw system calls, as PgBouncer's loop works; " +
			"the third runs blocking-style copying code as coroutines on such a loop. " +
			"The first is the floor of a Go proxy built on goroutines; the gap to the others is what the runtime's scheduling costs.\n\n")
	}

	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---:|\n")
	for _, row := range r.Rows {
		cells := []string{row.Label, targetName(row.Target), perRound(row.Runs), "", "", f2(row.RatioDirect), f2(row.RatioPgBouncer), "",
			cpuCell(row.ProxyCPU, row.ProxyUserCPU, row.ServerCPU)}
		if row.TPSMedian != nil {
			cells[3] = fmt.Sprintf("%s", thousands(*row.TPSMedian))
		} else if len(row.Runs) > 0 {
			cells[3] = "error"
		}
		if row.LatencyMedian != nil {
			cells[4] = fmt.Sprintf("%.3f ms", *row.LatencyMedian)
		}
		notes := []string{}
		if row.Errors != "" {
			notes = append(notes, row.Errors)
		}
		if row.Note != "" {
			notes = append(notes, row.Note)
		}
		cells[7] = strings.Join(notes, "; ")
		writeRow(&b, cells)
	}
	// PgBouncer's added RSS, for plain clients and for TLS ones.
	bouncerAdded := map[bool]*float64{}
	for _, mem := range r.Memory {
		if mem.Target == "pgbouncer" {
			bouncerAdded[mem.TLS] = mem.AddedMB
		}
	}
	for _, mem := range r.Memory {
		kind := "idle clients"
		if mem.TLS {
			kind = "idle TLS clients"
		}
		label := fmt.Sprintf("%s %s (transaction): proxy RSS", thousands(float64(clientsOf(r, mem))), kind)
		cells := []string{label, targetName(mem.Target), "", "", "—", "—", "", mem.Error, ""}
		if mem.BeforeMB != nil && mem.AfterMB != nil {
			cells[2] = fmt.Sprintf("%.1f → %.1f MB", *mem.BeforeMB, *mem.AfterMB)
		}
		if mem.AddedMB != nil {
			cells[3] = fmt.Sprintf("+%.1f MB", *mem.AddedMB)
			if b := bouncerAdded[mem.TLS]; mem.Target == "pgninja" && b != nil && *b > 0 {
				cells[6] = fmt.Sprintf("%.2f (RSS)", *mem.AddedMB / *b)
			}
		} else if cells[7] == "" {
			cells[7] = "no measurement"
		}
		writeRow(&b, cells)
	}
	if r.Backup != nil {
		for _, l := range r.Backup.Rows {
			b.WriteString(l + "\n")
		}
		if r.Backup.Exit != 0 || len(r.Backup.Rows) == 0 {
			writeRow(&b, []string{"backup", "bench/backup.sh", "", "error", "", "", "",
				fmt.Sprintf("exit %d: %s", r.Backup.Exit, r.Backup.Stderr), ""})
		}
	}

	if len(r.Checks) > 0 {
		b.WriteString("\nTargets from the issues, on this run:\n\n")
		for _, c := range r.Checks {
			mark := "?"
			if c.Pass != nil {
				mark = map[bool]string{true: "met", false: "NOT met"}[*c.Pass]
			}
			fmt.Fprintf(&b, "- %s: %s — **%s**\n", c.What, c.Result, mark)
		}
	}
	return b.String()
}

func clientsOf(r *Report, m Memory) int {
	if m.Clients > 0 {
		return m.Clients
	}
	var n int
	fmt.Sscan(r.Meta["idle_clients"], &n)
	return n
}

// cpuCell shows a row's CPU per transaction, the proxy's user part in
// brackets; direct connections have no proxy ("—").
func cpuCell(proxy, proxyUser, server *float64) string {
	if proxy == nil && server == nil {
		return ""
	}
	us := func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.1f", *v)
	}
	cell := us(proxy)
	if proxy != nil && proxyUser != nil {
		cell += " (" + us(proxyUser) + ")"
	}
	return cell + " / " + us(server)
}

func writeRow(b *strings.Builder, cells []string) {
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(strings.ReplaceAll(c, "|", `\|`), "\n", " ")
	}
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func targetName(id string) string {
	for _, t := range targets {
		if t.id == id {
			return t.name
		}
	}
	return id
}

func perRound(runs []Run) string {
	parts := make([]string, 0, len(runs))
	for _, run := range runs {
		if run.OK {
			parts = append(parts, thousands(run.TPS))
		} else {
			parts = append(parts, "✗")
		}
	}
	return strings.Join(parts, " / ")
}

func f2(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *p)
}

// thousands formats 17912.4 as "17,912".
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// checks evaluates the figures the issues ask for (issue 2, 3 and 4 targets).
func checks(r *Report) []Check {
	find := func(scenario, target string) *Row {
		for i := range r.Rows {
			if r.Rows[i].Scenario == scenario && r.Rows[i].Target == target {
				return &r.Rows[i]
			}
		}
		return nil
	}
	var out []Check
	vsBouncer := func(scenario, what string, min float64) {
		row := find(scenario, "pgninja")
		if row == nil {
			return
		}
		c := Check{What: fmt.Sprintf("%s: pgninja ≥ %.1f× PgBouncer", what, min)}
		switch {
		case row.RatioPgBouncer != nil:
			pass := *row.RatioPgBouncer >= min
			c.Pass = &pass
			c.Result = fmt.Sprintf("%.2f×", *row.RatioPgBouncer)
		case row.TPSMedian == nil:
			pass := false
			c.Pass = &pass
			c.Result = "pgninja failed: " + row.Errors
		default:
			c.Result = "no PgBouncer figure"
		}
		if row.Note != "" {
			c.Result += " (" + row.Note + ")"
			if strings.HasPrefix(row.Note, "NOT ROUTED") && c.Pass != nil {
				pass := false
				c.Pass = &pass
			}
		}
		out = append(out, c)
	}
	vsBouncer("session_select_simple", "session -S -M simple -c 16", 1.0)
	vsBouncer("session_select_extended", "session -S -M extended -c 16", 1.0)
	vsBouncer("session_connect_select", "session -C -S -M simple -c 16", 0.9)
	vsBouncer("tx_select_simple", "transaction -S -M simple -c 64", 1.0)
	vsBouncer("tx_select_extended", "transaction -S -M extended -c 64", 1.0)
	if row := find("tx_select_prepared", "pgninja"); row != nil {
		pass := row.Errors == "" && row.TPSMedian != nil
		res := "works"
		if !pass {
			res = "fails: " + row.Errors
		}
		out = append(out, Check{What: "transaction -S -M prepared -c 64: pgninja works without errors", Result: res, Pass: &pass})
	}
	vsBouncer("routing_select_simple", "routing on, reads to the replica, -S -M simple -c 16", 1.0)
	for _, m := range r.Memory {
		// The target is for plain clients; the TLS row is beside it.
		if m.Target != "pgninja" || m.TLS {
			continue
		}
		c := Check{What: "idle clients through pgninja: ≤ 250 MB added RSS"}
		if m.AddedMB != nil {
			pass := *m.AddedMB <= 250 && m.Error == ""
			c.Pass = &pass
			c.Result = fmt.Sprintf("+%.1f MB", *m.AddedMB)
		} else {
			pass := false
			c.Pass = &pass
			c.Result = "no measurement: " + m.Error
		}
		out = append(out, c)
	}
	return out
}

// warmupNote says how each start of the proxies was warmed up.
func warmupNote(seconds string) string {
	if seconds == "" || seconds == "0" {
		return ""
	}
	return fmt.Sprintf(" Each time the proxies start, every target first gets an unmeasured %s s `pgbench -S -c 16`.", seconds)
}

func hasPumps(r *Report) bool {
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Target, "pump_") {
			return true
		}
	}
	return false
}

// pgpoolNote says how Pgpool-II ran, when it did.
func pgpoolNote(version string) string {
	if version == "" {
		return ""
	}
	return " Pgpool-II has no transaction pooling: it runs a child process, with a server connection of its own, " +
		"per client (so more server connections than the others in the transaction rows), " +
		"and in the routing row load-balances reads to the replica."
}
