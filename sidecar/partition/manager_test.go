package partition

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/storage"
)

func TestPremakeAndRetention(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		first  string // clock of the first run
		second string // clock of the second run
		// partitions after each run
		want1, want2 []string
	}{
		{
			name:   "month drop",
			spec:   Spec{Table: "events", Interval: Month, Premake: 4, Retention: 2, RetentionAction: "drop"},
			first:  "2025-03-15T12:00:00Z",
			second: "2025-06-01T00:00:00Z",
			want1:  []string{"events_p2025_03", "events_p2025_04", "events_p2025_05", "events_p2025_06", "events_p2025_07"},
			// Retention 2 at June keeps April and May: March is dropped.
			want2: []string{"events_p2025_04", "events_p2025_05", "events_p2025_06", "events_p2025_07", "events_p2025_08", "events_p2025_09", "events_p2025_10"},
		},
		{
			name:   "week detach",
			spec:   Spec{Table: "events", Interval: Week, Premake: 2, Retention: 1, RetentionAction: "detach"},
			first:  "2025-03-19T08:00:00Z", // a Wednesday
			second: "2025-04-02T08:00:00Z",
			want1:  []string{"events_p2025_03_17", "events_p2025_03_24", "events_p2025_03_31"},
			want2:  []string{"events_p2025_03_24", "events_p2025_03_31", "events_p2025_04_07", "events_p2025_04_14"},
		},
		{
			name:   "day keep all",
			spec:   Spec{Table: "events", Interval: Day, Premake: 1},
			first:  "2025-12-31T23:59:59Z",
			second: "2026-01-02T00:00:00Z",
			want1:  []string{"events_p2025_12_31", "events_p2026_01_01"},
			want2:  []string{"events_p2025_12_31", "events_p2026_01_01", "events_p2026_01_02", "events_p2026_01_03"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := connect(t, testDB(t))
			exec(t, c, eventsSchema)
			m := &Manager{Specs: []Spec{tt.spec}, Now: clock(tt.first), LockTimeout: time.Second}
			if _, err := m.Run(ctx, c, RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := partitions(t, c, "events"); !slices.Equal(got, tt.want1) {
				t.Fatalf("first run: %v", got)
			}
			st, _ := m.Status(ctx, c)
			if st[0].Future != tt.spec.Premake || len(st[0].Missing) != 0 {
				t.Fatalf("status after first run: future %d missing %v", st[0].Future, st[0].Missing)
			}
			m.Now = clock(tt.second)
			if _, err := m.Run(ctx, c, RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := partitions(t, c, "events"); !slices.Equal(got, tt.want2) {
				t.Fatalf("second run: %v", got)
			}
			// Idempotent: the same clock again plans nothing.
			res, err := m.Run(ctx, c, RunOptions{})
			if err != nil || len(res.Actions) != 0 {
				t.Fatalf("third run did %v, %v", res.Actions, err)
			}
			if tt.spec.RetentionAction == "detach" {
				var exists bool
				c.QueryRow(ctx, "SELECT to_regclass('events_p2025_03_17') IS NOT NULL").Scan(&exists)
				if !exists {
					t.Fatal("detached partition should still exist as a table")
				}
			}
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := connect(t, testDB(t))
	exec(t, c, eventsSchema)
	exec(t, c, "CREATE TABLE events_p2024_01 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')")
	exec(t, c, "INSERT INTO events (at, payload) VALUES ('2025-03-02', 'in default')")
	m := &Manager{Specs: []Spec{{Table: "events", Interval: Month, Premake: 4, Retention: 3, RetentionAction: "drop", MoveDefaultRows: true}},
		Now: clock("2025-03-15T00:00:00Z")}
	before := partitions(t, c, "events")
	_, digestBefore := rowsDigest(t, c, "events_default")
	res, err := m.Run(ctx, c, RunOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(res.Actions) != 6 { // 5 creates (one moving a row) + 1 drop
		t.Fatalf("plan: applied=%v %v", res.Applied, res.Actions)
	}
	if res.Actions[0].Kind != ActCreateMove || res.Actions[5].Kind != ActDrop {
		t.Fatalf("plan kinds: %v", res.Actions)
	}
	if after := partitions(t, c, "events"); !slices.Equal(before, after) {
		t.Fatalf("dry run changed partitions: %v -> %v", before, after)
	}
	if _, d := rowsDigest(t, c, "events_default"); d != digestBefore {
		t.Fatal("dry run moved rows")
	}
}

func TestConcurrentRunsDoNotCollide(t *testing.T) {
	ctx := context.Background()
	tg := testDB(t)
	c := connect(t, tg)
	exec(t, c, eventsSchema)
	specs := []Spec{{Table: "events", Interval: Day, Premake: 30}}
	const runners = 4
	var wg sync.WaitGroup
	results := make([]*Result, runners)
	errs := make([]error, runners)
	start := make(chan struct{})
	for i := range runners {
		conn := connect(t, tg)
		m := &Manager{Specs: specs, Now: clock("2025-03-15T00:00:00Z")}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = m.Run(ctx, conn, RunOptions{})
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range runners {
		if errs[i] != nil {
			t.Fatalf("runner %d: %v", i, errs[i])
		}
		created += len(results[i].Actions)
	}
	// Under the advisory lock the runs take turns: each partition is
	// created exactly once in total, and the later runs find nothing to do.
	if created != 31 {
		t.Fatalf("created %d partitions in total, want 31", created)
	}
	if got := len(partitions(t, c, "events")); got != 31 {
		t.Fatalf("%d partitions", got)
	}
}

func TestDefaultPartitionRowsReportedThenMoved(t *testing.T) {
	ctx := context.Background()
	c := connect(t, testDB(t))
	exec(t, c, eventsSchema)
	exec(t, c, `INSERT INTO events (at, payload)
		SELECT '2025-01-01'::timestamptz + g * interval '1 hour', 'row ' || g FROM generate_series(0, 24*90 - 1) g`) // Jan..Mar
	n, digest := rowsDigest(t, c, "events")
	m := &Manager{Specs: []Spec{{Table: "events", Interval: Month, Premake: 1}}, Now: clock("2025-03-10T00:00:00Z")}

	st, err := m.Status(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Default == nil || st[0].Default.Rows != n || !strings.Contains(strings.Join(st[0].Problems, ";"), "DEFAULT partition events_default holds") {
		t.Fatalf("status: %+v", st[0])
	}
	// Without moving, the current month cannot be created: reported, April is.
	res, err := m.Run(ctx, c, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Actions[0].Partition != "events_p2025_04" || len(res.Problems) != 1 {
		t.Fatalf("run without move: %v %v", res.Actions, res.Problems)
	}
	res, err = m.Run(ctx, c, RunOptions{MoveDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	moved := int64(0)
	for _, a := range res.Actions {
		moved += a.Rows
	}
	if moved != n {
		t.Fatalf("moved %d of %d rows: %v", moved, n, res.Actions)
	}
	if got := partitions(t, c, "events"); !slices.Equal(got, []string{"events_p2025_01", "events_p2025_02", "events_p2025_03", "events_p2025_04"}) {
		t.Fatalf("partitions %v", got)
	}
	if n2, d2 := rowsDigest(t, c, "events"); n2 != n || d2 != digest {
		t.Fatal("rows changed while moving")
	}
	if dn, _ := rowsDigest(t, c, "events_default"); dn != 0 {
		t.Fatalf("%d rows left in default", dn)
	}
}

func TestArchiveDropRestore(t *testing.T) {
	ctx := context.Background()
	c := connect(t, testDB(t))
	exec(t, c, eventsSchema)
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{
		Specs: []Spec{{Table: "events", Interval: Month, Premake: 1, Retention: 1, RetentionAction: "drop", ArchiveBeforeDrop: true}},
		Now:   clock("2025-01-20T00:00:00Z"), Store: store,
	}
	if _, err := m.Run(ctx, c, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// Awkward values on purpose: COPY escaping must round-trip them.
	exec(t, c, `INSERT INTO events (at, payload)
		SELECT '2025-01-01'::timestamptz + g * interval '17 minutes', 'line ' || g || E'\nnext\ttab \\ back ''q'' ü'
		FROM generate_series(0, 2000) g`)
	wantN, wantDigest := rowsDigest(t, c, "events_p2025_01")

	m.Now = clock("2025-03-05T00:00:00Z") // January is now past retention
	res, err := m.Run(ctx, c, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var arch *Action
	for i, a := range res.Actions {
		if a.Kind == ActArchiveDrop {
			arch = &res.Actions[i]
		}
	}
	if arch == nil || arch.Rows != wantN || arch.Partition != "events_p2025_01" {
		t.Fatalf("actions %v", res.Actions)
	}
	var exists bool
	c.QueryRow(ctx, "SELECT to_regclass('events_p2025_01') IS NOT NULL").Scan(&exists)
	if exists {
		t.Fatal("partition not dropped")
	}
	list, _ := ListArchives(ctx, store)
	if len(list) != 1 || list[0] != arch.Archive {
		t.Fatalf("archives %v", list)
	}
	n, err := RestoreArchive(ctx, c, store, arch.Archive, "restored_jan")
	if err != nil || n != wantN {
		t.Fatalf("restore: %d %v", n, err)
	}
	if gotN, d := rowsDigest(t, c, "restored_jan"); gotN != wantN || d != wantDigest {
		t.Fatalf("restored rows differ: %d vs %d", gotN, wantN)
	}

	// A changed byte in the archive is caught, naming the file and check.
	path := store.Dir + "/" + arch.Archive + ".copy.zst"
	flipByte(t, path, 100)
	err = VerifyArchive(ctx, store, arch.Archive)
	if err == nil || !strings.Contains(err.Error(), "events_p2025_01.copy.zst") {
		t.Fatalf("tamper not detected: %v", err)
	}
}
