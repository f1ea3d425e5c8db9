package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ai-ninja/pgninja/internal/libpq"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
)

// healthQuery answers everything one check needs in one round trip.
// pg_is_in_recovery() is read once so a promotion between two calls cannot
// pair "in recovery" with a function that fails there.
//
// The primary's position is its WAL flush LSN, not its insert LSN: only
// flushed WAL can reach a replica, and on an idle primary whose last
// record ended on a page boundary the insert LSN points past the next
// page header, so a fully caught-up replica would look 24 or 40 bytes
// behind until the next write (after every WAL segment switch, for one).
const healthQuery = `select r,
  case when r then coalesce(pg_last_wal_replay_lsn(), '0/0') else pg_current_wal_flush_lsn() end,
  case when r then coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0) else 0 end
from (select pg_is_in_recovery() as r) s`

// lsnSample is the primary's WAL position and when it was read (the time
// the query was sent, so the primary was at least there by then).
type lsnSample struct {
	lsn LSN
	at  time.Time
}

// backendProbe keeps one connection open to one backend and runs the health
// query on it. sem (capacity 1) serializes users of the connection — the
// Run loop and CheckNow — and, unlike a mutex, can be waited for with a
// context.
type backendProbe struct {
	target  HealthTarget
	connStr string
	timeout time.Duration
	sem     chan struct{}
	// failures counts its failed checks; stop ends its poller (set
	// under the checker's lock).
	failures prometheus.Counter
	stop     context.CancelFunc

	// Guarded by sem.
	conn       *pgconn.PgConn
	caughtUpAt time.Time // ref time of the last poll that found it caught up
}

func newBackendProbe(t HealthTarget, cfg HealthConfig) *backendProbe {
	q := libpq.Quote
	sslmode := cfg.SSLMode
	if sslmode == "" {
		sslmode = "prefer"
	}
	connStr := fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=%s application_name=pgninja-health",
		q(t.Host), t.Port, q(cfg.Database), q(cfg.User), q(cfg.Password), q(sslmode)) + cfg.SSLFiles.Params()
	return &backendProbe{target: t, connStr: connStr, timeout: cfg.ConnectTimeout, sem: make(chan struct{}, 1)}
}

func (p *backendProbe) lock(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *backendProbe) unlock() { <-p.sem }

// observe runs one check, (re)connecting first if needed. Connecting and
// the query are each bounded by the timeout, so a dead or hung server
// delays only its own checks. Any failure closes the connection; the next
// check opens a fresh one. ref is the primary's latest sample, read before
// the query is sent. Call with sem held.
func (p *backendProbe) observe(ctx context.Context, ref lsnSample) backendObservation {
	fail := func(err error) backendObservation {
		p.close()
		return backendObservation{err: err, at: time.Now()}
	}
	if p.conn == nil {
		cfg, err := pgconn.ParseConfig(p.connStr)
		if err != nil {
			return fail(fmt.Errorf("connect: %w", err))
		}
		cctx, cancel := context.WithTimeout(ctx, p.timeout)
		p.conn, err = pgconn.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			p.conn = nil
			return fail(fmt.Errorf("connect: %w", err))
		}
	}
	at := time.Now()
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	res, err := p.conn.Exec(qctx, healthQuery).ReadAll()
	cancel()
	if err == nil && (len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 3) {
		err = errors.New("unexpected result shape")
	}
	if err != nil {
		return fail(fmt.Errorf("health query: %w", err))
	}
	row := res[0].Rows[0]
	o := backendObservation{up: true, at: at, inRecovery: string(row[0]) == "t"}
	if o.lsn, err = ParseLSN(string(row[1])); err != nil {
		return fail(fmt.Errorf("health query: %w", err))
	}
	secs, err := strconv.ParseFloat(string(row[2]), 64)
	if err != nil {
		return fail(fmt.Errorf("health query: bad lag %q", row[2]))
	}
	if o.inRecovery {
		o.lag = p.replayLag(o.lsn, time.Duration(secs*float64(time.Second)), ref, at)
		o.noRef = ref.lsn == 0
	}
	return o
}

// replayLag estimates how far behind a replica's data is. The query's
// now() - pg_last_xact_replay_timestamp() is only an upper bound: it is
// the age of the last replayed commit, so it grows on an idle primary
// even when the replica has everything. Two corrections:
//   - replay at or past ref, the primary's position sampled before this
//     query, means caught up: lag 0;
//   - otherwise the replica still had everything the primary had at the
//     last caught-up ref time, so the lag is at most the time since then.
//
// Without the second, the first write after a long idle spell would make
// a replica that is milliseconds behind look minutes behind.
func (p *backendProbe) replayLag(replay LSN, queryLag time.Duration, ref lsnSample, now time.Time) time.Duration {
	if ref.lsn != 0 && replay >= ref.lsn {
		p.caughtUpAt = ref.at
		return 0
	}
	lag := max(queryLag, 0)
	if !p.caughtUpAt.IsZero() {
		lag = min(lag, max(now.Sub(p.caughtUpAt), 0))
	}
	return lag
}

// close drops the connection, politely but without waiting long.
func (p *backendProbe) close() {
	if p.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = p.conn.Close(ctx)
	cancel()
	p.conn = nil
}
