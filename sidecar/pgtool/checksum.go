package pgtool

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TableSum is one table's row count and content checksum.
type TableSum struct {
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// QualifiedName is schema.name, quoted for SQL.
func (s TableSum) QualifiedName() string {
	return pgx.Identifier{s.Schema, s.Name}.Sanitize()
}

// Key is schema.name unquoted, for matching and messages.
func (s TableSum) Key() string { return s.Schema + "." + s.Name }

// userTablesSQL lists tables that hold rows (partitions included, their
// partitioned parents not, so no row is counted twice) outside the system
// schemas.
const userTablesSQL = `
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY 1, 2`

// ChecksumAlgorithm names how Checksum is computed; manifests record it.
const ChecksumAlgorithm = "sum(hashtextextended(row::text, 0))"

// tableSumSQL is order-independent so that the same rows give the same
// checksum whatever their physical order after a restore: the sum of a
// 64-bit hash of each row's text. hashtextextended is PostgreSQL's own
// (fast) hash: about twice as cheap as md5 here, which matters because the
// checksums run beside pg_dump on the same two cores. Its values can
// differ between CPU byte orders, so compare sums taken on servers of the
// same architecture (verification always restores on the primary's).
// Row text is only stable under Connect's settings (time zone, float
// digits, ...).
const tableSumSQL = `SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ONLY %s t`

// TableSums counts and checksums every user table, in the connection's
// current transaction (so, inside a snapshot, consistently).
func TableSums(ctx context.Context, conn *pgx.Conn) ([]TableSum, error) {
	rows, err := conn.Query(ctx, userTablesSQL)
	if err != nil {
		return nil, err
	}
	var sums []TableSum
	for rows.Next() {
		var s TableSum
		if err := rows.Scan(&s.Schema, &s.Name); err != nil {
			return nil, err
		}
		sums = append(sums, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range sums {
		s := &sums[i]
		if err := conn.QueryRow(ctx, fmt.Sprintf(tableSumSQL, s.QualifiedName())).Scan(&s.Rows, &s.Checksum); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", s.Key(), err)
		}
	}
	return sums, nil
}

// Mismatch is one difference between two sets of table sums.
type Mismatch struct {
	Table string
	What  string // "missing", "unexpected", "rows", "checksum"
	Want  string
	Got   string
}

func (m Mismatch) String() string {
	switch m.What {
	case "missing":
		return fmt.Sprintf("table %s: missing after restore", m.Table)
	case "unexpected":
		return fmt.Sprintf("table %s: present after restore but not in the manifest", m.Table)
	}
	return fmt.Sprintf("table %s: %s %s, manifest says %s", m.Table, m.What, m.Got, m.Want)
}

// Compare lists every difference between the recorded sums (want) and the
// ones found (got).
func Compare(want, got []TableSum) []Mismatch {
	g := make(map[string]TableSum, len(got))
	for _, s := range got {
		g[s.Key()] = s
	}
	var out []Mismatch
	for _, w := range want {
		s, ok := g[w.Key()]
		delete(g, w.Key())
		switch {
		case !ok:
			out = append(out, Mismatch{Table: w.Key(), What: "missing"})
		case s.Rows != w.Rows:
			out = append(out, Mismatch{Table: w.Key(), What: "rows", Want: fmt.Sprint(w.Rows), Got: fmt.Sprint(s.Rows)})
		case s.Checksum != w.Checksum:
			out = append(out, Mismatch{Table: w.Key(), What: "checksum", Want: w.Checksum, Got: s.Checksum})
		}
	}
	for _, w := range got {
		if _, ok := g[w.Key()]; ok {
			out = append(out, Mismatch{Table: w.Key(), What: "unexpected"})
		}
	}
	return out
}

// UserRelations returns up to limit tables, views and sequences outside
// the system schemas: a database with any is not empty.
func UserRelations(ctx context.Context, conn *pgx.Conn, limit int) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY 1 LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
