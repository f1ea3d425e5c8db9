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
	errors    []string
}

var (
	reTPS       = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	reLatency   = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	reProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	reFailed    = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	// "client 3 script 0 aborted in command 1 query 0: " and similar.
	reClientPrefix = regexp.MustCompile(`^client [0-9]+ (script [0-9]+ )?(aborted in command [0-9]+ (\([a-z]+\) )?query [0-9]+|aborted while establishing connection|aborted)[:]? *`)
	reSpaces       = regexp.MustCompile(`\s+`)
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
	switch {
	case exit == 124 || exit == 137:
		r.errors = append([]string{fmt.Sprintf("pgbench timed out and was killed (exit %d)", exit)}, r.errors...)
	case exit != 0 && len(r.errors) == 0:
		r.errors = []string{fmt.Sprintf("pgbench exited %d", exit)}
	case exit == 0 && !hasTPS && reProcessed.MatchString(stdout) && r.processed == 0:
		r.errors = append(r.errors, "no transaction completed within -T (connecting took the whole run?)")
	case exit == 0 && !hasTPS:
		r.errors = append(r.errors, "no tps in pgbench's output")
	}
	if r.failed > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d failed transactions", r.failed))
	}
	return r
}

// stderrErrors condenses pgbench's error lines: the client prefix is dropped
// and identical messages are counted, e.g.
// `ERROR: prepared statement "P_0" does not exist (64×)`.
func stderrErrors(stderr string) []string {
	counts := map[string]int{}
	var order []string
	lines := strings.Split(stderr, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		var msg string
		for _, p := range []string{"pgbench: error: ", "pgbench: fatal: "} {
			if strings.HasPrefix(l, p) {
				msg = strings.TrimPrefix(l, p)
			}
		}
		if msg == "" {
			continue
		}
		// libpq continues a message on indented lines (DETAIL, HINT, "Is the
		// server running..."); keep the first continuation for context.
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") && !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "pgbench:") {
			msg += " " + strings.TrimSpace(lines[i+1])
		}
		msg = reClientPrefix.ReplaceAllString(msg, "")
		msg = reSpaces.ReplaceAllString(msg, " ")
		if msg == "" || strings.HasPrefix(msg, "Run was aborted") {
			continue
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	sort.SliceStable(order, func(a, b int) bool { return counts[order[a]] > counts[order[b]] })
	if len(order) > 3 {
		order = order[:3]
	}
	out := make([]string, 0, len(order))
	for _, m := range order {
		if counts[m] > 1 {
			m = fmt.Sprintf("%s (%d×)", m, counts[m])
		}
		out = append(out, m)
	}
	return out
}
