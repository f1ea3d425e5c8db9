package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// LockKey is the advisory lock that serializes partition maintenance
// across pgninja instances.
var LockKey = pgtool.LockKey("pgninja/partitions")

// Spec is one managed table.
type Spec struct {
	Table     string
	Interval  Interval
	Premake   int
	Retention int // whole intervals kept before the current one; 0 keeps all
	// RetentionAction is "detach" or "drop".
	RetentionAction   string
	ArchiveBeforeDrop bool
	MoveDefaultRows   bool
}

// Manager plans and applies partition maintenance.
type Manager struct {
	Specs []Spec
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Store receives archives; needed only when a spec archives.
	Store  storage.Storage
	Logger *slog.Logger
	// LockTimeout bounds each DDL statement's wait for table locks, so a
	// long-running query delays maintenance instead of maintenance
	// queueing every later query behind its lock request.
	LockTimeout time.Duration
}

// Action kinds.
const (
	ActCreate      = "create"       // create a partition
	ActCreateMove  = "create+move"  // create it and move its rows out of DEFAULT
	ActDetach      = "detach"       // retention: detach
	ActDrop        = "drop"         // retention: drop
	ActArchiveDrop = "archive+drop" // retention: archive, verify, drop
)

// Action is one planned or applied change.
type Action struct {
	Kind      string
	Table     string // the parent as configured
	Partition string
	From, To  time.Time
	// Rows moved (create+move) or archived (archive+drop).
	Rows int64
	// Archive is the archive object (archive+drop).
	Archive string
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s [%s, %s)", a.Kind, a.Partition, a.From.Format(time.DateOnly), a.To.Format(time.DateOnly))
	if a.Rows > 0 {
		s += fmt.Sprintf(" rows=%d", a.Rows)
	}
	if a.Archive != "" {
		s += " archive=" + a.Archive
	}
	return s
}

// TableStatus is the health of one managed table.
type TableStatus struct {
	Spec       Spec
	KeyColumn  string
	Partitions []Partition // excluding DEFAULT
	Default    *Partition
	// Future counts partitions starting after the current interval.
	Future int
	// Missing lists the starts of wanted partitions (current and premake
	// future ones) that do not exist.
	Missing []time.Time
	Bytes   int64
	// Problems are things a person should look at.
	Problems []string
}

// Result is what a run did or, for a dry run, would do.
type Result struct {
	Actions []Action
	// Applied is false for a dry run.
	Applied bool
	// Problems lists what was skipped and why; the run still did the rest.
	Problems []string
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// utc makes the session's timestamp text and date_trunc UTC, which the
// bound parsing and bucketing rely on.
func utc(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "SET TimeZone TO 'UTC'")
	return err
}

// Status reports every managed table's health without changing anything.
func (m *Manager) Status(ctx context.Context, conn *pgx.Conn) ([]TableStatus, error) {
	if err := utc(ctx, conn); err != nil {
		return nil, err
	}
	now := m.now()
	var out []TableStatus
	for _, spec := range m.Specs {
		t, err := load(ctx, conn, spec)
		if err != nil {
			out = append(out, TableStatus{Spec: spec, Problems: []string{err.Error()}})
			continue
		}
		out = append(out, m.status(t, now))
	}
	return out, nil
}

func (m *Manager) status(t *table, now time.Time) TableStatus {
	st := TableStatus{Spec: t.Spec, KeyColumn: t.keyColumn, Partitions: t.partitions, Default: t.def}
	cur := t.Interval.Floor(now)
	for _, p := range t.partitions {
		st.Bytes += p.Bytes
		if !p.Bounded {
			st.Problems = append(st.Problems, fmt.Sprintf("partition %s has bounds pgninja does not manage", p.Name))
			continue
		}
		if p.From.After(cur) {
			st.Future++
		}
	}
	for i := 0; i <= t.Premake; i++ {
		from := t.Interval.Add(cur, i)
		if t.overlapping(from, t.Interval.Add(from, 1)) == nil {
			st.Missing = append(st.Missing, from)
		}
	}
	if len(st.Missing) > 0 {
		st.Problems = append(st.Problems, fmt.Sprintf("%d wanted partitions missing (current + %d future)", len(st.Missing), t.Premake))
	}
	if t.def == nil {
		st.Problems = append(st.Problems, "no DEFAULT partition: rows outside every partition are rejected")
	} else {
		st.Bytes += t.def.Bytes
		if t.def.Rows > 0 {
			st.Problems = append(st.Problems, fmt.Sprintf("DEFAULT partition %s holds %d rows (move them with move_default_rows or `partitions run --move-default`)", t.def.Name, t.def.Rows))
		}
	}
	return st
}

// RunOptions change one run.
type RunOptions struct {
	// DryRun plans without changing anything (and without the lock).
	DryRun bool
	// MoveDefault moves DEFAULT-partition rows for every table, as if
	// each spec had MoveDefaultRows.
	MoveDefault bool
	// SkipRetention only creates partitions (the demo loader uses it so a
	// short retention does not drop the history it is about to fill).
	SkipRetention bool
}

// Run plans and applies maintenance for every table under the advisory
// lock. One table's failure does not stop the others; their problems are
// in the Result and the error joins the failures.
func (m *Manager) Run(ctx context.Context, conn *pgx.Conn, opts RunOptions) (*Result, error) {
	if err := utc(ctx, conn); err != nil {
		return nil, err
	}
	if !opts.DryRun {
		// Waiting (rather than skipping) makes a concurrent second run
		// see the first one's work and do nothing, instead of failing.
		if err := pgtool.Lock(ctx, conn, LockKey); err != nil {
			return nil, fmt.Errorf("partition lock: %w", err)
		}
		defer pgtool.Unlock(conn, LockKey)
		if m.LockTimeout > 0 {
			if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", m.LockTimeout.Milliseconds())); err != nil {
				return nil, err
			}
			defer conn.Exec(context.WithoutCancel(ctx), "RESET lock_timeout")
		}
	}
	res := &Result{Applied: !opts.DryRun}
	var errs []error
	now := m.now()
	for _, spec := range m.Specs {
		if opts.MoveDefault {
			spec.MoveDefaultRows = true
		}
		if opts.SkipRetention {
			spec.Retention = 0
		}
		t, err := load(ctx, conn, spec)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			errs = append(errs, err)
			continue
		}
		plan, problems, err := m.plan(ctx, conn, t, now)
		res.Problems = append(res.Problems, problems...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if opts.DryRun {
			res.Actions = append(res.Actions, plan...)
			continue
		}
		for _, a := range plan {
			done, err := m.apply(ctx, conn, t, a)
			if err != nil {
				err = fmt.Errorf("%s %s: %w", a.Kind, a.Partition, err)
				m.logger().Error("partition action failed", "table", t.Table, "action", a.Kind, "partition", a.Partition, "err", err)
				res.Problems = append(res.Problems, err.Error())
				errs = append(errs, err)
				continue
			}
			m.logger().Info("partition action", "table", t.Table, "action", done.Kind, "partition", done.Partition,
				"from", done.From.Format(time.DateOnly), "to", done.To.Format(time.DateOnly), "rows", done.Rows)
			res.Actions = append(res.Actions, done)
		}
	}
	return res, errors.Join(errs...)
}

// plan computes the actions for one table at time now.
func (m *Manager) plan(ctx context.Context, conn *pgx.Conn, t *table, now time.Time) ([]Action, []string, error) {
	var plan []Action
	var problems []string
	iv := t.Interval
	cur := iv.Floor(now)
	var cutoff time.Time // partitions ending at or before cutoff are past retention
	if t.Retention > 0 {
		cutoff = iv.Add(cur, -t.Retention)
	}
	planned := map[time.Time]bool{}
	want := func(from time.Time, moveAllowed bool) error {
		to := iv.Add(from, 1)
		if planned[from] {
			return nil
		}
		if p := t.overlapping(from, to); p != nil {
			if !p.From.Equal(from) || !p.To.Equal(to) {
				problems = append(problems, fmt.Sprintf("%s: wanted [%s, %s) overlaps partition %s with other bounds",
					t.Table, from.Format(time.DateOnly), to.Format(time.DateOnly), p.Name))
			}
			return nil
		}
		planned[from] = true
		rows, err := t.defaultRowsIn(ctx, conn, from, to)
		if err != nil {
			return err
		}
		a := Action{Kind: ActCreate, Table: t.Table, Partition: t.partitionName(from), From: from, To: to}
		if rows > 0 {
			if !moveAllowed {
				problems = append(problems, fmt.Sprintf("%s: not creating %s: DEFAULT partition holds %d rows of its range (set move_default_rows or use --move-default)",
					t.Table, a.Partition, rows))
				return nil
			}
			a.Kind, a.Rows = ActCreateMove, rows
		}
		plan = append(plan, a)
		return nil
	}
	for i := 0; i <= t.Premake; i++ {
		if err := want(iv.Add(cur, i), t.MoveDefaultRows); err != nil {
			return nil, problems, err
		}
	}
	if t.MoveDefaultRows {
		buckets, err := t.defaultBuckets(ctx, conn)
		if err != nil {
			return nil, problems, err
		}
		for _, b := range buckets {
			if !cutoff.IsZero() && !iv.Add(b, 1).After(cutoff) {
				problems = append(problems, fmt.Sprintf("%s: DEFAULT partition holds rows from %s, older than retention: left there",
					t.Table, b.Format(time.DateOnly)))
				continue
			}
			if err := want(b, true); err != nil {
				return nil, problems, err
			}
		}
	}
	if !cutoff.IsZero() {
		for _, p := range t.partitions {
			if !p.Bounded || p.To.After(cutoff) {
				continue
			}
			a := Action{Kind: ActDetach, Table: t.Table, Partition: p.Name, From: p.From, To: p.To, Rows: 0}
			if t.RetentionAction == "drop" {
				a.Kind = ActDrop
				if t.ArchiveBeforeDrop {
					a.Kind = ActArchiveDrop
					a.Archive = archiveBase(t, p.Name)
				}
			}
			plan = append(plan, a)
		}
	}
	return plan, problems, nil
}

// apply carries out one action.
func (m *Manager) apply(ctx context.Context, conn *pgx.Conn, t *table, a Action) (Action, error) {
	name := pgx.Identifier{t.schema, a.Partition}.Sanitize()
	bounds := fmt.Sprintf("FOR VALUES FROM (%s) TO (%s)", t.literal(a.From), t.literal(a.To))
	switch a.Kind {
	case ActCreate:
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s %s", name, t.qualified(), bounds))
		return a, err
	case ActCreateMove:
		return m.createMove(ctx, conn, t, a, name, bounds)
	case ActDetach:
		_, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DETACH PARTITION %s", t.qualified(), name))
		return a, err
	case ActDrop:
		_, err := conn.Exec(ctx, "DROP TABLE "+name)
		return a, err
	case ActArchiveDrop:
		return m.archiveDrop(ctx, conn, t, a)
	}
	return a, fmt.Errorf("unknown action %q", a.Kind)
}

// createMove creates a partition for a range that has rows in DEFAULT.
// PostgreSQL refuses to add such a partition, so, as pg_partman does, the
// rows go into a standalone table that is then attached. The DEFAULT
// partition is locked against writes meanwhile so no new row of the range
// lands there between the move and the attach.
func (m *Manager) createMove(ctx context.Context, conn *pgx.Conn, t *table, a Action, name, bounds string) (Action, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return a, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	cols := t.columnList()
	stmts := []string{
		"LOCK TABLE " + t.def.QualifiedName() + " IN EXCLUSIVE MODE",
		fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", name, t.qualified()),
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return a, err
		}
	}
	tag, err := tx.Exec(ctx, fmt.Sprintf(
		"WITH moved AS (DELETE FROM %s WHERE %s >= %s AND %s < %s RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM moved",
		t.def.QualifiedName(), t.key(), t.literal(a.From), t.key(), t.literal(a.To), cols, name, cols, cols))
	if err != nil {
		return a, err
	}
	a.Rows = tag.RowsAffected()
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ATTACH PARTITION %s %s", t.qualified(), name, bounds)); err != nil {
		return a, err
	}
	return a, tx.Commit(ctx)
}

// ErrNotManaged is returned by EnsureRange for a table no spec names.
var ErrNotManaged = errors.New("not a managed partitioned table")

// EnsureRange creates any missing partitions covering [from, to) for the
// configured table (used by the demo-data loader before it inserts a year
// of rows). Rows already in DEFAULT for those ranges are moved. The table
// may be named with or without its schema, whichever way the spec names it.
func (m *Manager) EnsureRange(ctx context.Context, conn *pgx.Conn, tableName string, from, to time.Time) ([]Action, error) {
	var spec *Spec
	for i := range m.Specs {
		var same bool
		err := conn.QueryRow(ctx, "SELECT coalesce(to_regclass($1) = to_regclass($2), false)", m.Specs[i].Table, tableName).Scan(&same)
		if err != nil {
			return nil, err
		}
		if same {
			spec = &m.Specs[i]
			break
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("%s: %w", tableName, ErrNotManaged)
	}
	if err := utc(ctx, conn); err != nil {
		return nil, err
	}
	if err := pgtool.Lock(ctx, conn, LockKey); err != nil {
		return nil, err
	}
	defer pgtool.Unlock(conn, LockKey)
	t, err := load(ctx, conn, *spec)
	if err != nil {
		return nil, err
	}
	var done []Action
	for s := t.Interval.Floor(from); s.Before(to); s = t.Interval.Add(s, 1) {
		e := t.Interval.Add(s, 1)
		if t.overlapping(s, e) != nil {
			continue
		}
		a := Action{Kind: ActCreate, Table: t.Table, Partition: t.partitionName(s), From: s, To: e}
		if n, err := t.defaultRowsIn(ctx, conn, s, e); err != nil {
			return done, err
		} else if n > 0 {
			a.Kind = ActCreateMove
		}
		a, err := m.apply(ctx, conn, t, a)
		if err != nil {
			return done, fmt.Errorf("%s %s: %w", a.Kind, a.Partition, err)
		}
		done = append(done, a)
	}
	return done, nil
}
