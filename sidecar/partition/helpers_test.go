package partition

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
)

// testDB returns a fresh database owned by the non-superuser application
// role, as pgninja is deployed.
func testDB(t *testing.T) pgtool.Target {
	t.Helper()
	return pgtest.Require(t).NewDB(t)
}

func connect(t *testing.T, tg pgtool.Target) *pgx.Conn {
	t.Helper()
	return pgtest.Connect(t, tg)
}

func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// eventsSchema is a small partitioned table shaped like call_records.
const eventsSchema = `
CREATE TABLE events (
    id      bigint GENERATED ALWAYS AS IDENTITY,
    at      timestamptz NOT NULL,
    payload text NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX events_at_idx ON events (at);
CREATE TABLE events_default PARTITION OF events DEFAULT;`

// partitions lists the bounded children of a table as "name from..to".
func partitions(t *testing.T, c *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), `
SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func clock(s string) func() time.Time {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return at }
}

// rowsDigest is an order-independent digest of a table's rows.
func rowsDigest(t *testing.T, c *pgx.Conn, table string) (int64, string) {
	t.Helper()
	var n int64
	var d string
	err := c.QueryRow(context.Background(),
		fmt.Sprintf("SELECT count(*), coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM %s x", table)).Scan(&n, &d)
	if err != nil {
		t.Fatal(err)
	}
	return n, d
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
