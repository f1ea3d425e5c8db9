package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// Lock keys. A backup job holds jobLock (one backup at a time across
// instances); verifications hold readLock shared and retention takes it
// exclusively, so a backup is never deleted while it is being read.
var (
	jobLock  = pgtool.LockKey("pgninja/backup")
	readLock = pgtool.LockKey("pgninja/backup-read")
)

// ErrBusy means another backup job holds the lock.
var ErrBusy = errors.New("another backup job is running (advisory lock held on the primary)")

// Source is a server pg_dump may read from.
type Source struct {
	Role   string // "replica" or "primary"
	Target pgtool.Target
}

// Service runs backup jobs against one store.
type Service struct {
	Store storage.Storage
	// Key seals and opens backups; List works without one.
	Key *sealed.Key
	// Sources are tried in order; the first that accepts a connection is
	// dumped. The default is the replicas, then the primary as fallback.
	Sources []Source
	// Primary is where the job lock is taken and scratch databases for
	// verification are created (its database is the one connected to for
	// that; the user needs CREATEDB).
	Primary pgtool.Target
	Tools   pgtool.Tools
	// Level is the zstd level.
	Level zstd.EncoderLevel
	// ChunkSize of the sealed stream; 0 means sealed.DefaultChunkSize.
	ChunkSize int
	Retention Retention
	Logger    *slog.Logger
	// Now is the clock (IDs, manifest times); nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called with the cumulative bytes streamed
	// (dump bytes for a backup, stored bytes for verify and restore).
	Progress func(stage string, n int64)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Service) needKey() error {
	if s.Key == nil {
		return sealed.ErrNoKey
	}
	return nil
}

// Entry is one listed backup.
type Entry struct {
	Manifest *Manifest
	Verify   *VerifyRecord // nil when never verified
}

// Status is the verification state for display and retention.
func (e Entry) Status() string {
	if e.Verify == nil {
		return "unverified"
	}
	return e.Verify.Status
}

// List returns complete backups (those with a manifest), newest first.
func (s *Service) List(ctx context.Context) ([]Entry, error) {
	objs, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, o := range objs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Name, prefix), "/"+manifestFile)
		if !ok || strings.Contains(id, "/") {
			continue
		}
		m, err := readManifest(ctx, s.Store, nil, id)
		if err != nil {
			s.log().Warn("unreadable backup manifest", "id", id, "err", err)
			continue
		}
		e := Entry{Manifest: m}
		if v, err := readVerify(ctx, s.Store, id); err == nil {
			e.Verify = v
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Manifest.StartedAt.After(out[j].Manifest.StartedAt) })
	return out, nil
}

// Manifest loads and authenticates one backup's manifest.
func (s *Service) Manifest(ctx context.Context, id string) (*Manifest, error) {
	if err := s.needKey(); err != nil {
		return nil, err
	}
	return readManifest(ctx, s.Store, s.Key, id)
}

// Delete removes a backup, manifest first: once it is gone the backup is
// no longer listed, so a crash half-way leaves only unlisted leftovers.
func (s *Service) Delete(ctx context.Context, id string) error {
	for _, f := range []string{manifestFile, verifyFile, dataFile} {
		if err := s.Store.Delete(ctx, dir(id)+f); err != nil {
			return fmt.Errorf("delete backup %s: %w", id, err)
		}
	}
	return nil
}

// progressReader reports cumulative bytes read.
type progressReader struct {
	r     io.Reader
	n     int64
	stage string
	fn    func(string, int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.stage, p.n)
	}
	return n, err
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// tailBuffer keeps the last bytes of a tool's stderr for error messages.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
