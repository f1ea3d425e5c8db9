package proxy

import (
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PgBouncer's SHOW STATS, per client database: transactions and queries
// the servers answered, bytes from and to clients, and the time spent in
// transactions, in queries and waiting for a server connection. Each
// session counts its own, with atomics nobody else writes to (the relay
// and the session goroutine take turns), so the counting contends for no
// cache line; a departing session's counts move to its database's
// totals. The console sums both.

// clientStats are one client's totals; the times are microseconds.
// assigned counts the server connections the client was given, and
// waitUS the time it took to get them.
type clientStats struct {
	xacts, queries  atomic.Uint64
	received, sent  atomic.Uint64
	xactUS, queryUS atomic.Uint64
	assigned        atomic.Uint64
	waitUS          atomic.Uint64
}

// dbTotals is a plain copy of the counters, summed or subtracted.
type dbTotals struct {
	xacts, queries, received, sent, xactUS, queryUS, assigned, waitUS uint64
}

func (c *clientStats) load() dbTotals {
	return dbTotals{c.xacts.Load(), c.queries.Load(), c.received.Load(), c.sent.Load(),
		c.xactUS.Load(), c.queryUS.Load(), c.assigned.Load(), c.waitUS.Load()}
}

func (t *dbTotals) add(o dbTotals) {
	t.xacts += o.xacts
	t.queries += o.queries
	t.received += o.received
	t.sent += o.sent
	t.xactUS += o.xactUS
	t.queryUS += o.queryUS
	t.assigned += o.assigned
	t.waitUS += o.waitUS
}

// values are the totals in SHOW STATS' order: assignments, transactions,
// queries, bytes received and sent, transaction, query and wait time.
func (t dbTotals) values() []uint64 {
	return []uint64{t.assigned, t.xacts, t.queries, t.received, t.sent, t.xactUS, t.queryUS, t.waitUS}
}

func (t dbTotals) minus(o dbTotals) dbTotals {
	return dbTotals{t.xacts - o.xacts, t.queries - o.queries, t.received - o.received, t.sent - o.sent,
		t.xactUS - o.xactUS, t.queryUS - o.queryUS, t.assigned - o.assigned, t.waitUS - o.waitUS}
}

// serverStats keeps what departed sessions counted, and the last two
// samples of the totals, between which the averages are taken.
type serverStats struct {
	mu       sync.Mutex
	departed map[string]dbTotals
	// prev and last are totals by database at prevAt and lastAt.
	prev, last     map[string]dbTotals
	prevAt, lastAt time.Time
}

func newServerStats() *serverStats {
	return &serverStats{departed: map[string]dbTotals{}}
}

// depart keeps a leaving client's counts.
func (st *serverStats) depart(db string, c *clientStats) {
	st.mu.Lock()
	t := st.departed[db]
	t.add(c.load())
	st.departed[db] = t
	st.mu.Unlock()
}

// totals are every database's counts so far.
func (srv *Server) statsTotals() map[string]dbTotals {
	srv.stats.mu.Lock()
	out := make(map[string]dbTotals, len(srv.stats.departed))
	for db, t := range srv.stats.departed {
		out[db] = t
	}
	srv.stats.mu.Unlock()
	for _, s := range srv.sessionList() {
		if db, ok := s.statsDB(); ok {
			t := out[db]
			t.add(s.stats.load())
			out[db] = t
		}
	}
	return out
}

// statsDB is the client database a session counts under, once logged in
// to one (the console counts nowhere).
func (s *Session) statsDB() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil || s.console != 0 {
		return "", false
	}
	return s.l.dbName, true
}

// sampleStats takes a sample every stats_period until done closes, and
// logs the averages when log_stats is on. The period is read afresh each
// time, so a reload changes it from the next sample.
func (srv *Server) sampleStats(done <-chan struct{}) {
	period := func() time.Duration { return max(srv.settings.Load().cfg.StatsPeriod, time.Second) }
	t := time.NewTimer(period())
	defer t.Stop()
	srv.takeSample(time.Now())
	for {
		select {
		case now := <-t.C:
			srv.takeSample(now)
			if cfg := srv.settings.Load().cfg; cfg.LogStats == nil || *cfg.LogStats {
				srv.logStats()
			}
			t.Reset(period())
		case <-done:
			return
		}
	}
}

func (srv *Server) takeSample(now time.Time) {
	totals := srv.statsTotals()
	srv.stats.mu.Lock()
	srv.stats.prev, srv.stats.prevAt = srv.stats.last, srv.stats.lastAt
	srv.stats.last, srv.stats.lastAt = totals, now
	srv.stats.mu.Unlock()
}

// logStats logs the last period's averages of each database that had
// traffic, as PgBouncer's log_stats does.
func (srv *Server) logStats() {
	srv.stats.mu.Lock()
	dbs := make([]string, 0, len(srv.stats.last))
	for db, t := range srv.stats.last {
		// Traffic, however little: its per-second rates may round to 0.
		if t != srv.stats.prev[db] {
			dbs = append(dbs, db)
		}
	}
	srv.stats.mu.Unlock()
	slices.Sort(dbs)
	for _, db := range dbs {
		a := srv.averages(db)
		srv.log.Info("stats", "database", db, "xacts_per_s", a[0], "queries_per_s", a[1], "in_bytes_per_s", a[2],
			"out_bytes_per_s", a[3], "xact_us", a[4], "query_us", a[5], "wait_us", a[6])
	}
}

// averages are per-database rates and means over the last sampled
// period: counts and bytes per second, times per transaction, query and
// wait (PgBouncer's avg_ columns). None before two samples.
func (srv *Server) averages(db string) [7]uint64 {
	return srv.averagesOf(func(m map[string]dbTotals) dbTotals { return m[db] })
}

// allAverages are the averages of all databases' traffic together
// (SHOW TOTALS): times are weighted by each database's counts.
func (srv *Server) allAverages() [7]uint64 {
	return srv.averagesOf(sumTotals)
}

func sumTotals(m map[string]dbTotals) (sum dbTotals) {
	for _, t := range m {
		sum.add(t)
	}
	return sum
}

// averagesOf takes the averages of what pick reads from the last two
// samples.
func (srv *Server) averagesOf(pick func(map[string]dbTotals) dbTotals) (avg [7]uint64) {
	srv.stats.mu.Lock()
	prev, last, secs := srv.stats.prev, srv.stats.last, srv.stats.lastAt.Sub(srv.stats.prevAt).Seconds()
	srv.stats.mu.Unlock()
	if prev == nil || secs <= 0 {
		return avg
	}
	d := pick(last).minus(pick(prev))
	per := func(v uint64) uint64 { return uint64(float64(v)/secs + 0.5) }
	mean := func(sum, n uint64) uint64 {
		if n == 0 {
			return 0
		}
		return sum / n
	}
	return [7]uint64{per(d.xacts), per(d.queries), per(d.received), per(d.sent),
		mean(d.xactUS, d.xacts), mean(d.queryUS, d.queries), mean(d.waitUS, d.assigned)}
}

// noteReady counts a ReadyForQuery that answered a client's request sent
// at sent, and returns how long the request took; s.mu is held. A
// transaction runs from its first request's sending to the
// ReadyForQuery that finds the server idle again.
func (s *Session) noteReady(status byte, sent time.Time) time.Duration {
	if sent.IsZero() {
		return 0
	}
	// One monotonic clock read serves both figures (and the caller's
	// query statistics): sent carries a monotonic reading.
	took := time.Since(sent)
	s.stats.queries.Add(1)
	s.stats.queryUS.Add(uint64(took.Microseconds()))
	if s.xactStart.IsZero() {
		s.xactStart = sent
	}
	if status == 'I' {
		s.stats.xacts.Add(1)
		s.stats.xactUS.Add(uint64((took + sent.Sub(s.xactStart)).Microseconds()))
		s.xactStart = time.Time{}
	}
	return took
}

// noteAssigned counts a server connection given to the client for a
// request it began asking for at start.
func (s *Session) noteAssigned(start time.Time) {
	s.stats.assigned.Add(1)
	s.stats.waitUS.Add(uint64(time.Since(start).Microseconds()))
}

// countingWriter counts the bytes written to a client.
type countingWriter struct {
	w     io.Writer
	count *atomic.Uint64 // nil until login
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if c.count != nil {
		c.count.Add(uint64(n))
	}
	return n, err
}

// statsCollector exports SHOW STATS's totals to Prometheus, read at each
// scrape.
type statsCollector struct {
	srv                                       *Server
	xacts, queries, recv, sent, xactT, queryT *prometheus.Desc
	assigned, waitT                           *prometheus.Desc
}

func newStatsCollector(srv *Server) *statsCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pgninja_database_"+name, help, []string{"database"}, nil)
	}
	return &statsCollector{srv: srv,
		xacts:    d("transactions_total", "Transactions the servers answered for clients of the database."),
		queries:  d("queries_total", "Client requests the servers answered (one per Query or Sync)."),
		recv:     d("received_bytes_total", "Bytes received from clients."),
		sent:     d("sent_bytes_total", "Bytes sent to clients."),
		xactT:    d("transaction_seconds_total", "Time spent in transactions, from their first request to their end."),
		queryT:   d("query_seconds_total", "Time from sending each request to its ReadyForQuery."),
		assigned: d("server_assignments_total", "Server connections given to clients."),
		waitT:    d("wait_seconds_total", "Time clients waited for a server connection."),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.xacts, c.queries, c.recv, c.sent, c.xactT, c.queryT, c.assigned, c.waitT} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for db, t := range c.srv.statsTotals() {
		for _, m := range []struct {
			d *prometheus.Desc
			v float64
		}{
			{c.xacts, float64(t.xacts)}, {c.queries, float64(t.queries)},
			{c.recv, float64(t.received)}, {c.sent, float64(t.sent)},
			{c.xactT, float64(t.xactUS) / 1e6}, {c.queryT, float64(t.queryUS) / 1e6},
			{c.assigned, float64(t.assigned)}, {c.waitT, float64(t.waitUS) / 1e6},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v, db)
		}
	}
}
