package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type pgbenchResult struct {
	tps       float64
	latency   float64
	processed int64
	failed    int64
	ok        bool
	errors    []errCount
}

// errCount is one distinct error message and how often it occurred.
type errCount struct {
	Msg string `json:"message"`
	N   int    `json:"count"`
}

func (e errCount) String() string {
	if e.N > 1 {
		return fmt.Sprintf("%s (%d×)", e.Msg, e.N)
	}
	return e.Msg
}

var (
	reTPS       = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	reLatency   = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	reProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	reFailed    = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	// "client 3 script 0 aborted in command 1 query 0: " and similar.
	reClientPrefix = regexp.MustCompile(`^client [0-9]+ (script [0-9]+ aborted in command [0-9]+ (\([a-z]+\) )?query [0-9]+: *)?`)
	// pgbench's two threads write stderr concurrently, so prefixes can come
	// doubled or torn: "pgbench: pgbench: error: ", "pgbench:  error: ".
	rePgbenchPrefix = regexp.MustCompile(`^((pgbench|error|fatal):\s*)+`)
	reSeverity      = regexp.MustCompile(`(ERROR|FATAL|PANIC):\s`)
	reSpaces        = regexp.MustCompile(`\s+`)
)

// parsePgbench reads one run's stdout, stderr and exit status. A run is ok
// when pgbench exited 0, reported a TPS and no transaction failed; otherwise
// its errors say why, most frequent first, with a count.
func parsePgbench(stdout, stderr string, exit int) pgbenchResult {
	var r pgbenchResult
	if m := reTPS.FindStringSubmatch(stdout); m != nil {
		r.tps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLatency.FindStringSubmatch(stdout); m != nil {
		r.latency, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reProcessed.FindStringSubmatch(stdout); m != nil {
		r.processed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reFailed.FindStringSubmatch(stdout); m != nil {
		r.failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	r.errors = stderrErrors(stderr)
	hasTPS := reTPS.MatchString(stdout)
	r.ok = exit == 0 && hasTPS && r.failed == 0
	var why string
	switch {
	case exit == 124 || exit == 137:
		why = fmt.Sprintf("pgbench timed out and was killed (exit %d)", exit)
	case exit != 0 && len(r.errors) == 0:
		why = fmt.Sprintf("pgbench exited %d", exit)
	case exit == 0 && !hasTPS && reProcessed.MatchString(stdout) && r.processed == 0:
		why = "no transaction completed within -T (connecting took the whole run?)"
	case exit == 0 && !hasTPS:
		why = "no tps in pgbench's output"
	}
	if why != "" {
		r.errors = append([]errCount{{why, 1}}, r.errors...)
	}
	if r.failed > 0 {
		r.errors = append(r.errors, errCount{fmt.Sprintf("%d failed transactions", r.failed), 1})
	}
	return r
}

// stderrErrors condenses pgbench's error lines: prefixes are dropped and
// identical messages counted, e.g. `ERROR: prepared statement "P_0" does not
// exist` ×64. Server errors are kept from their severity on; other lines
// only when they start as pgbench's own ("pgbench: error: ...").
func stderrErrors(stderr string) []errCount {
	counts := map[string]int{}
	var order []string
	lines := strings.Split(stderr, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		var msg string
		if loc := reSeverity.FindStringIndex(l); loc != nil {
			msg = l[loc[0]:]
		} else if strings.HasPrefix(l, "pgbench:") {
			msg = reClientPrefix.ReplaceAllString(rePgbenchPrefix.ReplaceAllString(l, ""), "")
			// libpq continues a message on indented lines ("Is the server
			// running..."); keep the first continuation for context.
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
				msg += " " + strings.TrimSpace(lines[i+1])
			}
		}
		msg = reSpaces.ReplaceAllString(strings.TrimSpace(msg), " ")
		if msg == "" || strings.HasPrefix(msg, "Run was aborted") {
			continue
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	sort.SliceStable(order, func(a, b int) bool { return counts[order[a]] > counts[order[b]] })
	out := make([]errCount, 0, len(order))
	for _, m := range order {
		out = append(out, errCount{m, counts[m]})
	}
	return out
}

// cpuUse is a run's CPU time in microseconds per transaction: the
// proxy's, the part of it in user mode, and PostgreSQL's. A figure run.sh
// did not measure is nil.
type cpuUse struct {
	proxy, proxyUser, server *float64
}

// cpuPerTx reads what run.sh measured of a run's CPU (clock ticks per
// second, and the ticks PostgreSQL and the proxy spent).
func cpuPerTx(tsv string, transactions int64) cpuUse {
	ticks := map[string]float64{}
	for _, line := range strings.Split(tsv, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); ok && err == nil {
			ticks[k] = f
		}
	}
	hz := ticks["hz"]
	if hz <= 0 || transactions <= 0 {
		return cpuUse{}
	}
	per := func(k string) *float64 {
		t, ok := ticks[k]
		if !ok {
			return nil
		}
		us := t * 1e6 / hz / float64(transactions)
		return &us
	}
	return cpuUse{proxy: per("proxy"), proxyUser: per("proxy_user"), server: per("server")}
}
