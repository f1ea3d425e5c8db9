package demodata

import (
	"context"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/migrations"
	"github.com/ai-ninja/pgninja/sidecar/partition"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
)

func TestLoadIsRepeatable(t *testing.T) {
	ctx := context.Background()
	bed := pgtest.Require(t)
	db := bed.NewDB(t)
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, db)
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	pm := &partition.Manager{Now: func() time.Time { return now }, Specs: []partition.Spec{
		// Schema-qualified, as the demo's config names it.
		{Table: "public.call_records", Interval: partition.Month, Premake: 4, Retention: 3, RetentionAction: "drop"},
		{Table: "conversations", Interval: partition.Month, Premake: 4},
	}}
	opts := Options{Rows: 6000, Months: 12, Now: now, Partitions: pm}
	sum, err := Load(ctx, conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Inserted != 6000 || sum.Tables["call_records"] != 6000 || sum.Tables["users"] != 100 || sum.Tables["conversations"] < 3000 {
		t.Fatalf("summary %+v", sum)
	}
	// Rows went into monthly partitions, not DEFAULT, and the short
	// retention did not drop the history being loaded.
	var inDefault int64
	conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM call_records_default) + (SELECT count(*) FROM conversations_default)").Scan(&inDefault)
	if inDefault != 0 {
		t.Fatalf("%d rows in DEFAULT partitions", inDefault)
	}
	st, err := pm.Status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Future != 4 || len(s.Partitions) != 12+1+4 {
			t.Fatalf("%s: %d partitions, %d future", s.Spec.Table, len(s.Partitions), s.Future)
		}
	}
	var days int
	conn.QueryRow(ctx, "SELECT count(*) FROM mv_daily_call_stats").Scan(&days)
	if days < 360 {
		t.Fatalf("dashboard view has %d days", days)
	}

	again, err := Load(ctx, conn, opts)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if again.Inserted != 0 || again.Tables["call_records"] != 6000 || again.Tables["users"] != 100 {
		t.Fatalf("second run changed counts: %+v", again)
	}
	opts.Rows = 7000
	more, err := Load(ctx, conn, opts)
	if err != nil || more.Inserted != 1000 || more.Tables["call_records"] != 7000 {
		t.Fatalf("top-up: %+v %v", more, err)
	}
}
