package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
)

func TestBackupVerifyRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	source := sums(t, f.db)
	m := f.backup(t)

	if m.Source.Role != "replica" || !m.Source.InRecovery || m.LSN == "" || !strings.Contains(m.PgDump.Version, "pg_dump") {
		t.Fatalf("manifest source: %+v lsn %q pg_dump %q", m.Source, m.LSN, m.PgDump.Version)
	}
	// The manifest's sums were taken in pg_dump's snapshot on the replica
	// and must equal the primary's.
	if mis := pgtool.Compare(source, m.Tables); len(mis) != 0 {
		t.Fatalf("manifest differs from source: %v", mis)
	}
	if m.File.Size >= m.DumpBytes {
		t.Errorf("no compression: %d stored for %d dumped", m.File.Size, m.DumpBytes)
	}

	rec, err := f.svc.Verify(ctx, m.ID)
	if err != nil || rec.Status != StatusVerified {
		t.Fatalf("verify: %+v %v", rec, err)
	}
	list, err := f.svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].Status() != StatusVerified {
		t.Fatalf("list: %+v %v", list, err)
	}
	// The scratch database is gone.
	var scratch int
	pgtest.Connect(t, f.db).QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgninja_verify_%'").Scan(&scratch)
	if scratch != 0 {
		t.Fatalf("%d scratch databases left", scratch)
	}

	target := f.bed.NewDB(t)
	if _, err := f.svc.Restore(ctx, m.ID, target, false); err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored := sums(t, target)
	if mis := pgtool.Compare(source, restored); len(mis) != 0 {
		t.Fatalf("restored database differs: %v", mis)
	}
	var rows int64
	for _, s := range restored {
		rows += s.Rows
	}
	if rows < 3000 {
		t.Fatalf("only %d rows restored", rows)
	}
}

func TestTamperedBackupFailsVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		name   string
		damage func(t *testing.T, m *Manifest, path string)
		check  string
	}{
		{"flipped byte", func(t *testing.T, m *Manifest, path string) { flipByte(t, path, m.File.Size/2) }, "sha256"},
		{"truncated", func(t *testing.T, m *Manifest, path string) { os.Truncate(path, m.File.Size-100) }, "size"},
		{"flipped byte, manifest re-signed to match", func(t *testing.T, m *Manifest, path string) {
			// Only someone with the key could do this; the chunk
			// authentication still catches it, naming the chunk.
			flipByte(t, path, m.File.Size/2)
			m.File.SHA256 = sha256File(t, path)
			if err := writeManifest(ctx, f.store, f.svc.Key, m); err != nil {
				t.Fatal(err)
			}
		}, "decrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := f.backup(t)
			path := filepath.Join(f.store.Dir, m.File.Name)
			tt.damage(t, m, path)
			rec, err := f.svc.Verify(ctx, m.ID)
			if !isIntegrity(err, tt.check) || !strings.Contains(err.Error(), m.File.Name) {
				t.Fatalf("want a %s failure naming %s, got %v", tt.check, m.File.Name, err)
			}
			if rec.Status != StatusFailed {
				t.Fatalf("recorded %q", rec.Status)
			}
			list, _ := f.svc.List(ctx)
			for _, e := range list {
				if e.Manifest.ID == m.ID && e.Status() != StatusFailed {
					t.Fatalf("listed as %s", e.Status())
				}
			}
			// A damaged backup is never restored over anything.
			if _, err := f.svc.Restore(ctx, m.ID, f.bed.NewDB(t), false); err == nil {
				t.Fatal("restore of a damaged backup succeeded")
			}
		})
	}

	t.Run("edited manifest", func(t *testing.T) {
		m := f.backup(t)
		path := filepath.Join(f.store.Dir, dir(m.ID)+manifestFile)
		b, _ := os.ReadFile(path)
		os.WriteFile(path, []byte(strings.Replace(string(b), `\"rows\":`, `\"rows\":1`, 1)), 0o600)
		b2, _ := os.ReadFile(path)
		if string(b) == string(b2) {
			// Manifest is stored as raw JSON inside JSON: edit a digit.
			os.WriteFile(path, []byte(strings.Replace(string(b), `"rows": `, `"rows": 1`, 1)), 0o600)
		}
		if _, err := f.svc.Verify(ctx, m.ID); !errors.Is(err, ErrManifest) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestWrongKeyRejectedNothingOverwritten(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m := f.backup(t)
	target := f.bed.NewDB(t)
	if _, err := f.svc.Restore(ctx, m.ID, target, false); err != nil {
		t.Fatal(err)
	}
	pgtest.Connect(t, target).Exec(ctx, "INSERT INTO users (phone_number, name) VALUES ('+10000000000', 'after restore')")
	before := sums(t, target)

	wrong := *f.svc
	wrong.Key = newKey(t)
	_, err := wrong.Restore(ctx, m.ID, target, true)
	var wk *sealed.ErrWrongKey
	if !errors.As(err, &wk) || wk.FileKeyID != f.svc.Key.ID() {
		t.Fatalf("restore with the wrong key: %v", err)
	}
	if mis := pgtool.Compare(before, sums(t, target)); len(mis) != 0 {
		t.Fatalf("target changed: %v", mis)
	}
	if _, err := wrong.Verify(ctx, m.ID); !errors.As(err, &wk) {
		t.Fatalf("verify with the wrong key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.store.Dir, dir(m.ID)+verifyFile)); !os.IsNotExist(err) {
		t.Fatal("a wrong key must not record a verification")
	}
}

func TestRestoreIntoNonEmptyNeedsClean(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m := f.backup(t)
	target := f.bed.NewDB(t)
	pgtest.Connect(t, target).Exec(ctx, "CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (42)")
	before := sums(t, target)
	_, err := f.svc.Restore(ctx, m.ID, target, false)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "public.keep_me") || !strings.Contains(err.Error(), "--clean") {
		t.Fatalf("got %v", err)
	}
	if mis := pgtool.Compare(before, sums(t, target)); len(mis) != 0 {
		t.Fatalf("refused restore changed the target: %v", mis)
	}
	if _, err := f.svc.Restore(ctx, m.ID, target, true); err != nil {
		t.Fatalf("restore --clean: %v", err)
	}
	// Twice, over its own objects: --clean replaces them.
	if _, err := f.svc.Restore(ctx, m.ID, target, true); err != nil {
		t.Fatalf("second restore --clean: %v", err)
	}
}

func TestFailedJobsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good := f.backup(t)
	goodFiles := files(t, f.store.Dir)

	t.Run("pg_dump killed mid-run", func(t *testing.T) {
		svc := *f.svc
		svc.Tools = killingPgDump(t, "")
		_, err := svc.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "pg_dump failed") || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("disk full", func(t *testing.T) {
		svc := *f.svc
		svc.Store = &fullDisk{Storage: f.store, limit: 10 << 10}
		_, err := svc.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("got %v", err)
		}
	})
	list, err := f.svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].Manifest.ID != good.ID {
		t.Fatalf("listed after failures: %+v %v", list, err)
	}
	if got := files(t, f.store.Dir); !slices.Equal(got, goodFiles) {
		t.Fatalf("files after failures: %v, want %v", got, goodFiles)
	}
	if rec, err := f.svc.Verify(ctx, good.ID); err != nil || rec.Status != StatusVerified {
		t.Fatalf("older backup hurt: %v", err)
	}
}

// A dump that fails on the replica (a recovery conflict ends its
// snapshot, say) is taken again from the primary.
func TestReplicaFailureFallsBackToPrimary(t *testing.T) {
	f := newFixture(t)
	replica := f.svc.Sources[0].Target
	svc := *f.svc
	svc.Tools = killingPgDump(t, fmt.Sprintf("port=%d ", replica.Port))
	m, err := svc.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.Source.Role != "primary" || m.Source.InRecovery {
		t.Fatalf("backup taken from %+v, want the primary", m.Source)
	}
	if rec, err := f.svc.Verify(context.Background(), m.ID); err != nil || rec.Status != StatusVerified {
		t.Fatalf("verify: %+v %v", rec, err)
	}
	list, err := f.svc.List(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("listed: %+v %v", list, err)
	}
}

func TestOneBackupAtATimeAndRetention(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = f.svc.Run(ctx) }()
	}
	wg.Wait()
	ok, busy := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrBusy):
			busy++
		default:
			t.Fatal(err)
		}
	}
	if ok < 1 || ok+busy != 2 {
		t.Fatalf("ok %d busy %d", ok, busy)
	}
	for len(mustList(t, f)) < 3 {
		f.backup(t)
	}
	f.svc.Retention = Retention{Last: 1}
	all := mustList(t, f)
	deleted, err := f.svc.ApplyRetention(ctx)
	if err != nil || len(deleted) != len(all)-1 {
		t.Fatalf("deleted %v, %v", deleted, err)
	}
	left := mustList(t, f)
	if len(left) != 1 || left[0].Manifest.ID != all[0].Manifest.ID {
		t.Fatalf("kept %v, want the newest %s", left, all[0].Manifest.ID)
	}
}

func mustList(t *testing.T, f *fixture) []Entry {
	t.Helper()
	l, err := f.svc.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}
