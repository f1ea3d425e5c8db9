package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// Run takes one backup and returns its manifest. On any failure (pg_dump
// exiting non-zero or killed, a full disk, a cancelled context) the partial
// data object is discarded and nothing is listed; older backups are never
// touched here (retention is separate and runs only after success).
func (s *Service) Run(ctx context.Context) (*Manifest, error) {
	if err := s.needKey(); err != nil {
		return nil, err
	}
	started := s.now().UTC()
	lockConn, err := pgtool.Connect(ctx, s.Primary)
	if err != nil {
		return nil, fmt.Errorf("backup lock: %w", err)
	}
	defer lockConn.Close(context.WithoutCancel(ctx))
	ok, err := pgtool.TryLock(ctx, lockConn, jobLock)
	if err != nil {
		return nil, fmt.Errorf("backup lock: %w", err)
	}
	if !ok {
		return nil, ErrBusy
	}
	defer pgtool.Unlock(lockConn, jobLock)
	if pr, ok := s.Store.(storage.PartialRemover); ok {
		if n, err := pr.RemovePartials(ctx); n > 0 || err != nil {
			s.log().Info("removed partial uploads of an interrupted job", "count", n, "err", err)
		}
	}

	sources := s.Sources
	for {
		m, rest, err := s.runFrom(ctx, started, sources)
		var se *sourceError
		if err == nil || !errors.As(err, &se) || len(rest) == 0 || ctx.Err() != nil {
			return m, err
		}
		// A replica may end a long read that conflicts with replay
		// ("terminating connection due to conflict with recovery"), or
		// go away mid-dump; the next source (in the end the primary)
		// still makes tonight's backup.
		s.log().Warn("backup failed on its source, trying the next", "role", se.src.Role,
			"target", se.src.Target.String(), "err", se.err)
		sources = rest
	}
}

// sourceError is a backup failure on the source's side: its snapshot,
// pg_dump or the table checksums, not the store or the context.
type sourceError struct {
	src Source
	err error
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// runFrom backs up from the first of sources that accepts a connection,
// and returns the sources after it.
func (s *Service) runFrom(ctx context.Context, started time.Time, sources []Source) (_ *Manifest, rest []Source, _ error) {
	i, conn, err := s.connectSource(ctx, sources)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	src, rest := sources[i], sources[i+1:]
	failed := func(err error) (*Manifest, []Source, error) {
		return nil, rest, &sourceError{src: src, err: err}
	}
	m := &Manifest{
		Format: formatV1, StartedAt: started, Database: src.Target.Database, Compression: "zstd",
		ChecksumAlgorithm: pgtool.ChecksumAlgorithm,
		Source:            SourceInfo{Role: src.Role, Host: src.Target.Host, Port: src.Target.Port},
		Encryption: EncryptionInfo{Cipher: "AES-256-GCM chunked (HKDF-SHA256 per-file key)", KeyID: s.Key.ID(),
			ChunkSize: s.chunkSize()},
	}
	// The snapshot is exported by our own transaction and handed to
	// pg_dump, so the table sums below see exactly the dumped rows.
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return failed(err)
	}
	var snapshot string
	err = conn.QueryRow(ctx, `SELECT pg_export_snapshot(), current_setting('server_version'), pg_is_in_recovery(),
		(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`).
		Scan(&snapshot, &m.Source.ServerVersion, &m.Source.InRecovery, &m.LSN)
	if err != nil {
		return failed(fmt.Errorf("export snapshot on %s: %w", src.Target, err))
	}

	pgDump, err := s.Tools.Path("pg_dump", pgtool.ServerMajor(conn))
	if err != nil {
		return nil, nil, err
	}
	if m.PgDump.Version, err = pgtool.Version(ctx, pgDump); err != nil {
		return nil, nil, err
	}
	m.PgDump.Path = pgDump
	// -Z0: zstd below compresses better and several times faster than
	// pg_dump's gzip, which would otherwise be the bottleneck.
	m.PgDump.Args = []string{"--format=custom", "--compress=0", "--snapshot=" + snapshot}

	if m.ID, err = s.newID(ctx, started); err != nil {
		return nil, nil, err
	}
	m.File.Name = dir(m.ID) + dataFile
	log := s.log().With("backup", m.ID, "source", src.Target.String(), "role", src.Role)
	log.Info("backup started", "lsn", m.LSN, "pg_dump", m.PgDump.Version)

	// Table sums run on our snapshot connection while pg_dump streams.
	sumCtx, cancelSums := context.WithCancel(ctx)
	defer cancelSums()
	type sumsResult struct {
		sums []pgtool.TableSum
		err  error
	}
	sumsCh := make(chan sumsResult, 1)
	go func() {
		sums, err := pgtool.TableSums(sumCtx, conn)
		sumsCh <- sumsResult{sums, err}
	}()
	waitSums := func() sumsResult { cancelSums(); return <-sumsCh }

	if err := s.dump(ctx, m, pgDump, src.Target); err != nil {
		waitSums()
		var de *dumpError
		if errors.As(err, &de) {
			return failed(err)
		}
		return nil, nil, err
	}
	res := <-sumsCh
	if res.err != nil {
		s.Store.Delete(context.WithoutCancel(ctx), m.File.Name)
		return failed(fmt.Errorf("table checksums: %w", res.err))
	}
	m.Tables = res.sums
	// Ends the read-only snapshot transaction; nothing to commit.
	conn.Exec(ctx, "COMMIT")
	m.FinishedAt = s.now().UTC()
	if err := writeManifest(ctx, s.Store, s.Key, m); err != nil {
		s.Store.Delete(context.WithoutCancel(ctx), m.File.Name)
		return nil, nil, fmt.Errorf("write manifest: %w", err)
	}
	log.Info("backup finished", "bytes", m.File.Size, "dump_bytes", m.DumpBytes, "tables", len(m.Tables),
		"rows", m.Rows(), "seconds", m.FinishedAt.Sub(m.StartedAt).Seconds())
	return m, nil, nil
}

func (s *Service) chunkSize() int {
	if s.ChunkSize > 0 {
		return s.ChunkSize
	}
	return sealed.DefaultChunkSize
}

// dump streams pg_dump → zstd → seal → (sha256, store). The data object
// is committed only when pg_dump exited 0 and every layer flushed.
func (s *Service) dump(ctx context.Context, m *Manifest, pgDump string, src pgtool.Target) error {
	up, err := s.Store.Create(ctx, m.File.Name)
	if err != nil {
		return err
	}
	defer up.Abort()

	args := append(append([]string{}, m.PgDump.Args...), "--dbname="+src.ConnInfo())
	cmd := exec.CommandContext(ctx, pgDump, args...)
	cmd.Env = src.ToolEnv(os.Environ())
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_dump: %w", err)
	}

	h := sha256.New()
	size := &countWriter{}
	sw, err := sealed.NewWriter(io.MultiWriter(up, h, size), s.Key, s.ChunkSize)
	if err == nil {
		var zw *zstd.Encoder
		if zw, err = zstd.NewWriter(sw, zstd.WithEncoderLevel(s.level())); err == nil {
			in := &progressReader{r: stdout, stage: "dump", fn: s.Progress}
			_, err = io.CopyBuffer(zw, in, make([]byte, 1<<20))
			m.DumpBytes = in.n
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = sw.Close()
		}
	}
	if err != nil {
		// pg_dump would block on a pipe nobody reads.
		cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("backup cancelled: %w", ctx.Err())
	case err != nil: // ours first: pg_dump was only killed because of it
		return fmt.Errorf("write %s: %w", m.File.Name, err)
	case waitErr != nil:
		return &dumpError{fmt.Errorf("pg_dump failed (%v): %s", waitErr, stderr)}
	}
	if err := up.Commit(); err != nil {
		return fmt.Errorf("commit %s: %w", m.File.Name, err)
	}
	m.File.Size, m.File.SHA256 = size.n, hex.EncodeToString(h.Sum(nil))
	return nil
}

func (s *Service) level() zstd.EncoderLevel {
	if s.Level == 0 {
		return zstd.SpeedDefault
	}
	return s.Level
}

// dumpError is pg_dump's own failure, as opposed to the store's.
type dumpError struct{ error }

func (e *dumpError) Unwrap() error { return e.error }

// connectSource returns the index of the first of sources that accepts a
// connection.
func (s *Service) connectSource(ctx context.Context, sources []Source) (int, *pgx.Conn, error) {
	var errs []error
	for i, src := range sources {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgtool.Connect(cctx, src.Target)
		cancel()
		if err == nil {
			return i, conn, nil
		}
		s.log().Warn("backup source unavailable, trying the next", "role", src.Role, "target", src.Target.String(), "err", err)
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return 0, nil, errors.New("no backup source configured")
	}
	return 0, nil, fmt.Errorf("no backup source reachable: %w", errors.Join(errs...))
}

// newID names a backup by its UTC start time, adding a suffix in the
// unlikely case of two backups in one second: Commit would otherwise
// replace an existing backup's objects.
func (s *Service) newID(ctx context.Context, t time.Time) (string, error) {
	base := t.UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		id := base
		if i > 0 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		objs, err := s.Store.List(ctx, dir(id))
		if err != nil {
			return "", err
		}
		if len(objs) == 0 {
			return id, nil
		}
	}
	return "", fmt.Errorf("no free backup id for %s", base)
}
