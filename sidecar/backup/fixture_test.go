package backup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ai-ninja/pgninja/migrations"
	"github.com/ai-ninja/pgninja/migrations/demodata"
	"github.com/ai-ninja/pgninja/sidecar/partition"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// fixture is a migrated database with a few thousand demo rows on the
// primary, replicated to the replica, and a service backing it up from the
// replica into a temporary store.
type fixture struct {
	bed   *pgtest.Bed
	db    pgtool.Target
	store *storage.Local
	svc   *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	bed := pgtest.Require(t)
	db := bed.NewDB(t)
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	pm := &partition.Manager{Specs: []partition.Spec{
		{Table: "call_records", Interval: partition.Month, Premake: 2},
		{Table: "conversations", Interval: partition.Month, Premake: 2},
	}}
	if _, err := demodata.Load(ctx, pgtest.Connect(t, db), demodata.Options{Rows: 3000, Months: 3, Partitions: pm}); err != nil {
		t.Fatal(err)
	}
	bed.WaitReplica(t)
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{bed: bed, db: db, store: store, svc: &Service{
		Store:     store,
		Key:       newKey(t),
		Sources:   []Source{{Role: "replica", Target: bed.AppReplica(db.Database)}, {Role: "primary", Target: db}},
		Primary:   db,
		Retention: Retention{Last: 10},
		ChunkSize: 64 << 10, // many chunks even for a small dump
	}}
}

func newKey(t *testing.T) *sealed.Key {
	t.Helper()
	raw := make([]byte, sealed.KeySize)
	rand.Read(raw)
	k, err := sealed.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *fixture) backup(t *testing.T) *Manifest {
	t.Helper()
	m, err := f.svc.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sums(t *testing.T, tg pgtool.Target) []pgtool.TableSum {
	t.Helper()
	s, err := pgtool.TableSums(context.Background(), pgtest.Connect(t, tg))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// files lists every file under the store, partial uploads included.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
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
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// fullDisk is a store whose uploads fail with ENOSPC after limit bytes.
type fullDisk struct {
	storage.Storage
	limit int64
}

type fullUpload struct {
	storage.Upload
	left int64
}

func (f *fullDisk) Create(ctx context.Context, name string) (storage.Upload, error) {
	u, err := f.Storage.Create(ctx, name)
	return &fullUpload{Upload: u, left: f.limit}, err
}

func (u *fullUpload) Write(p []byte) (int, error) {
	if int64(len(p)) > u.left {
		return 0, &fs.PathError{Op: "write", Path: "backup", Err: syscall.ENOSPC}
	}
	u.left -= int64(len(p))
	return u.Upload.Write(p)
}

func (f *fullDisk) RemovePartials(ctx context.Context) (int, error) {
	return f.Storage.(storage.PartialRemover).RemovePartials(ctx)
}

// killingPgDump is a pg_dump that dies by SIGKILL after writing part of
// its output, when its arguments contain only (always when only is "").
func killingPgDump(t *testing.T, only string) pgtool.Tools {
	t.Helper()
	real, err := pgtool.Tools{}.Path("pg_dump", 15)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = --version ]; then exec " + real + " --version; fi\n" +
		"case \"$*\" in *\"" + only + "\"*) ;; *) exec " + real + " \"$@\" ;; esac\n" +
		real + " \"$@\" | head -c 30000\n" +
		"kill -KILL $$\n"
	if err := os.WriteFile(filepath.Join(dir, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return pgtool.Tools{Dir: dir}
}

func isIntegrity(err error, check string) bool {
	var ie *IntegrityError
	return errors.As(err, &ie) && ie.Check == check
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
