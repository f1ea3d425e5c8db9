package migrations

import (
	"context"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
)

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	bed := pgtest.Require(t)
	db, err := Open(bed.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := NewProvider(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Up(ctx)
	if err != nil || len(res) != 4 {
		t.Fatalf("up: %v %v", res, err)
	}
	var parts int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid
		WHERE c.relname IN ('call_records', 'conversations') AND pt.partstrat = 'r'`).Scan(&parts); err != nil || parts != 2 {
		t.Fatalf("partitioned tables: %d %v", parts, err)
	}
	var refreshed int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM refresh_dashboard_stats()").Scan(&refreshed); err != nil || refreshed != 4 {
		t.Fatalf("refresh: %d %v", refreshed, err)
	}
	// Every Down must undo its Up exactly, or the second Up fails.
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var left int
	db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relname <> 'goose_db_version' AND c.relname NOT LIKE 'goose_db_version%'`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d relations left after down", left)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != goose.StateApplied {
			t.Fatalf("%s: %s", s.Source.Path, s.State)
		}
	}
}
