package partition

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Partition is one child of a partitioned table as the catalog shows it.
type Partition struct {
	Schema, Name string
	// Default marks the DEFAULT partition; From/To are then zero.
	Default bool
	// Bounded is false for partitions whose bounds this package cannot
	// read (MINVALUE, multi-column); they are reported, never touched.
	Bounded  bool
	From, To time.Time
	// Rows is the planner's estimate (exact for the DEFAULT partition).
	Rows  int64
	Bytes int64
}

// QualifiedName is the quoted schema.name.
func (p Partition) QualifiedName() string { return pgx.Identifier{p.Schema, p.Name}.Sanitize() }

// table is what the catalog says about one managed parent.
type table struct {
	Spec
	oid        uint32
	schema     string
	name       string
	keyColumn  string
	keyType    string // format_type of the key column
	columns    []string
	partitions []Partition // bounded and unbounded, not the default
	def        *Partition
}

func (t *table) qualified() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }
func (t *table) key() string       { return pgx.Identifier{t.keyColumn}.Sanitize() }

// literal renders a boundary for the key column's type.
func (t *table) literal(ts time.Time) string {
	ts = ts.UTC()
	switch t.keyType {
	case "date":
		return "'" + ts.Format(time.DateOnly) + "'::date"
	case "timestamp without time zone":
		return "'" + ts.Format(time.DateTime) + "'::timestamp"
	default:
		return "'" + ts.Format(time.DateTime) + "+00'::timestamptz"
	}
}

// partitionName is the child's name, shortened to PostgreSQL's 63-byte
// identifier limit by trimming the parent's part, never the date.
func (t *table) partitionName(start time.Time) string {
	suffix := "_" + t.Interval.Suffix(start)
	base := t.name
	if len(base)+len(suffix) > 63 {
		base = base[:63-len(suffix)]
	}
	return base + suffix
}

func (t *table) columnList() string {
	q := make([]string, len(t.columns))
	for i, c := range t.columns {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

var supportedKeyTypes = map[string]bool{
	"timestamp with time zone":    true,
	"timestamp without time zone": true,
	"date":                        true,
}

// load reads a parent's partitioning and its partitions. The connection
// must have TimeZone=UTC so the bound text parses in UTC.
func load(ctx context.Context, conn *pgx.Conn, spec Spec) (*table, error) {
	t := &table{Spec: spec}
	var strat *string
	var keyCol, keyType *string
	err := conn.QueryRow(ctx, `
SELECT c.oid, n.nspname, c.relname, pt.partstrat::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND pt.partnatts = 1 AND a.attnum = pt.partattrs[0]
WHERE c.oid = to_regclass($1)`, spec.Table).Scan(&t.oid, &t.schema, &t.name, &strat, &keyCol, &keyType)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("table %s does not exist (run `pgninja migrate up`?)", spec.Table)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec.Table, err)
	}
	if strat == nil || *strat != "r" {
		return nil, fmt.Errorf("table %s is not range-partitioned", spec.Table)
	}
	if keyCol == nil || keyType == nil || !supportedKeyTypes[*keyType] {
		return nil, fmt.Errorf("table %s: partition key must be one timestamptz, timestamp or date column", spec.Table)
	}
	t.keyColumn, t.keyType = *keyCol, *keyType

	rows, err := conn.Query(ctx, `
SELECT attname::text FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
ORDER BY attnum`, t.oid)
	if err != nil {
		return nil, err
	}
	if t.columns, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}

	rows, err = conn.Query(ctx, `
SELECT n.nspname::text, c.relname::text, pg_get_expr(c.relpartbound, c.oid),
       greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = $1`, t.oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p Partition
		var bound string
		if err := rows.Scan(&p.Schema, &p.Name, &bound, &p.Rows, &p.Bytes); err != nil {
			rows.Close()
			return nil, err
		}
		if bound == "DEFAULT" {
			p.Default = true
			t.def = &p
			continue
		}
		p.From, p.To, p.Bounded = parseBound(bound)
		t.partitions = append(t.partitions, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(t.partitions, func(i, j int) bool {
		a, b := t.partitions[i], t.partitions[j]
		if a.Bounded != b.Bounded {
			return a.Bounded
		}
		return a.From.Before(b.From) || (a.From.Equal(b.From) && a.Name < b.Name)
	})
	if t.def != nil {
		// Exact: rows here are the thing the report is for.
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.def.QualifiedName()).Scan(&t.def.Rows); err != nil {
			return nil, err
		}
	}
	return t, nil
}

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \('([^']*)'\) TO \('([^']*)'\)$`)

var boundLayouts = []string{"2006-01-02 15:04:05Z07", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02"}

func parseBound(s string) (from, to time.Time, ok bool) {
	m := boundRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, time.Time{}, false
	}
	from, ok1 := parseTime(m[1])
	to, ok2 := parseTime(m[2])
	return from, to, ok1 && ok2
}

func parseTime(s string) (time.Time, bool) {
	for _, l := range boundLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// overlapping returns the bounded partition overlapping [from, to), if any.
func (t *table) overlapping(from, to time.Time) *Partition {
	for i := range t.partitions {
		p := &t.partitions[i]
		if p.Bounded && p.From.Before(to) && from.Before(p.To) {
			return p
		}
	}
	return nil
}

// defaultRowsIn counts DEFAULT-partition rows that belong to [from, to).
func (t *table) defaultRowsIn(ctx context.Context, q querier, from, to time.Time) (int64, error) {
	if t.def == nil || t.def.Rows == 0 {
		return 0, nil
	}
	var n int64
	err := q.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s >= %s AND %s < %s",
		t.def.QualifiedName(), t.key(), t.literal(from), t.key(), t.literal(to))).Scan(&n)
	return n, err
}

// defaultBuckets lists the interval starts of the rows in the DEFAULT
// partition.
func (t *table) defaultBuckets(ctx context.Context, q querier) ([]time.Time, error) {
	if t.def == nil || t.def.Rows == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT DISTINCT date_trunc('%s', %s)::timestamp FROM %s ORDER BY 1",
		t.Interval.pgUnit(), t.key(), t.def.QualifiedName()))
	if err != nil {
		return nil, err
	}
	starts, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	for i := range starts {
		// ::timestamp gives the UTC wall clock (TimeZone is UTC); pin the
		// location so comparisons with our UTC times work.
		s := starts[i]
		starts[i] = time.Date(s.Year(), s.Month(), s.Day(), s.Hour(), 0, 0, 0, time.UTC)
	}
	return starts, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
