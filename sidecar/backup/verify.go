package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
)

// IntegrityError is a backup that is damaged: it names the object and the
// check that failed. Anything else returned by Verify means the check
// could not be carried out.
type IntegrityError struct {
	File  string // object name
	Check string // "size", "sha256", "decrypt", "restore", "row counts and checksums"
	Err   error
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: %s check failed: %v", e.File, e.Check, e.Err)
}

func (e *IntegrityError) Unwrap() error { return e.Err }

// ErrNotEmpty is returned by Restore for a target that already has
// relations and no clean flag.
var ErrNotEmpty = errors.New("target database is not empty")

// checkFile compares the stored data object's size and SHA-256 with the
// manifest, without the key: this is what catches a flipped bit first.
func (s *Service) checkFile(ctx context.Context, m *Manifest, stage string) error {
	r, err := s.Store.Open(ctx, m.File.Name)
	if err != nil {
		return &IntegrityError{File: m.File.Name, Check: "exists", Err: err}
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, &progressReader{r: r, stage: stage, fn: s.Progress}, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != m.File.Size {
		return &IntegrityError{File: m.File.Name, Check: "size", Err: fmt.Errorf("%d bytes, manifest says %d", n, m.File.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.File.SHA256 {
		return &IntegrityError{File: m.File.Name, Check: "sha256", Err: fmt.Errorf("file has %s, manifest says %s", got, m.File.SHA256)}
	}
	return nil
}

// openPlain opens the data object as the plain pg_dump archive stream.
func (s *Service) openPlain(ctx context.Context, m *Manifest, stage string) (io.Reader, func(), error) {
	f, err := s.Store.Open(ctx, m.File.Name)
	if err != nil {
		return nil, nil, err
	}
	sr, err := sealed.NewReader(&progressReader{r: f, stage: stage, fn: s.Progress}, s.Key)
	if err != nil {
		f.Close()
		var wk *sealed.ErrWrongKey
		if errors.As(err, &wk) {
			return nil, nil, err
		}
		return nil, nil, &IntegrityError{File: m.File.Name, Check: "decrypt", Err: err}
	}
	zr, err := zstd.NewReader(&decryptErrs{r: sr, name: m.File.Name})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return zr, func() { zr.Close(); f.Close() }, nil
}

// decryptErrs turns stream errors into IntegrityErrors naming the file.
type decryptErrs struct {
	r    io.Reader
	name string
}

func (d *decryptErrs) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &IntegrityError{File: d.name, Check: "decrypt", Err: err}
	}
	return n, err
}

var scratchUnsafe = regexp.MustCompile(`[^a-z0-9_]`)

// scratchName is unique per backup and per maintained database, so
// verifications of different databases on one server never meet.
func (s *Service) scratchName(id string) string {
	h := fnv.New32a()
	h.Write([]byte(s.Primary.Database))
	return fmt.Sprintf("pgninja_verify_%s_%08x", scratchUnsafe.ReplaceAllString(strings.ToLower(id), "_"), h.Sum32())
}

// Verify test-restores a backup into a scratch database on the primary's
// server, compares every table's row count and checksum with the manifest,
// drops the scratch database and records the outcome in verify.json.
func (s *Service) Verify(ctx context.Context, id string) (*VerifyRecord, error) {
	started := s.now()
	rec := &VerifyRecord{ID: id, VerifiedAt: started.UTC()}
	m, err := s.Manifest(ctx, id)
	if err != nil {
		return nil, err // a wrong key says nothing about the backup: record nothing
	}
	err = s.verify(ctx, m, rec)
	rec.Duration = s.now().Sub(started).Seconds()
	var ie *IntegrityError
	switch {
	case err == nil:
		rec.Status = StatusVerified
	case errors.As(err, &ie):
		rec.Status, rec.Error = StatusFailed, err.Error()
	default:
		rec.Status, rec.Error = StatusError, err.Error()
	}
	if werr := writeVerify(context.WithoutCancel(ctx), s.Store, rec); werr != nil && err == nil {
		err = fmt.Errorf("record verification: %w", werr)
	}
	log := s.log().With("backup", id, "status", rec.Status, "seconds", rec.Duration)
	if err != nil {
		log.Error("backup verification failed", "err", err)
		return rec, err
	}
	log.Info("backup verified", "tables", len(rec.Tables), "rows", m.Rows())
	return rec, nil
}

func (s *Service) verify(ctx context.Context, m *Manifest, rec *VerifyRecord) error {
	admin, err := pgtool.Connect(ctx, s.Primary)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", readLock); err != nil {
		return err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock_shared($1)", readLock)

	stage := time.Now()
	step := func(name string) {
		s.log().Debug("verify step done", "backup", m.ID, "step", name, "seconds", time.Since(stage).Seconds())
		stage = time.Now()
	}
	if err := s.checkFile(ctx, m, "verify sha256"); err != nil {
		return err
	}
	step("sha256")
	scratch := s.scratchName(m.ID)
	q := pgx.Identifier{scratch}.Sanitize()
	// A scratch database left by a crashed run has our prefix and this id.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+q+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return fmt.Errorf("create scratch database (the sidecar user needs CREATEDB): %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := admin.Exec(dctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
			s.log().Error("could not drop scratch database", "database", scratch, "err", err)
		}
	}()
	step("create scratch database")
	target := s.Primary.WithDatabase(scratch)
	if err := s.restoreInto(ctx, m, target, false, "verify restore"); err != nil {
		return err
	}
	step("restore")
	defer step("compare")
	return s.compare(ctx, m, target, rec, false)
}

// compare checks the restored tables against the manifest.
// With allowExtra, tables the manifest does not know (a restore target's
// own) are not differences.
func (s *Service) compare(ctx context.Context, m *Manifest, target pgtool.Target, rec *VerifyRecord, allowExtra bool) error {
	conn, err := pgtool.Connect(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	got, err := pgtool.TableSums(ctx, conn)
	if err != nil {
		return err
	}
	rec.Tables = rec.Tables[:0]
	for _, t := range got {
		rec.Tables = append(rec.Tables, TableResult{Table: t.Key(), Rows: t.Rows})
	}
	if m.ChecksumAlgorithm != pgtool.ChecksumAlgorithm {
		return fmt.Errorf("backup %s has %q checksums; this pgninja computes %q", m.ID, m.ChecksumAlgorithm, pgtool.ChecksumAlgorithm)
	}
	var mis []pgtool.Mismatch
	for _, x := range pgtool.Compare(m.Tables, got) {
		if !(allowExtra && x.What == "unexpected") {
			mis = append(mis, x)
		}
	}
	if len(mis) == 0 {
		return nil
	}
	for _, x := range mis {
		rec.Mismatches = append(rec.Mismatches, x.String())
	}
	return &IntegrityError{File: m.File.Name, Check: "row counts and checksums",
		Err: fmt.Errorf("%d tables differ: %s", len(mis), strings.Join(rec.Mismatches, "; "))}
}

// restoreInto streams the backup through pg_restore, which turns it into
// SQL, into psql running it as one transaction: a restore either completes
// or changes nothing. With clean, the schemas the backup's tables live in
// are dropped and recreated at the start of that same transaction.
// (pg_restore --clean cannot be used: it tries to drop partition
// constraints before their parents and fails on partitioned tables.)
// Decryption errors are reported in preference to the complaints about
// cut-off input they cause downstream.
func (s *Service) restoreInto(ctx context.Context, m *Manifest, target pgtool.Target, clean bool, stage string) error {
	conn, err := pgtool.Connect(ctx, target)
	if err != nil {
		return err
	}
	major := pgtool.ServerMajor(conn)
	conn.Close(ctx)
	pgRestore, err := s.Tools.Path("pg_restore", major)
	if err != nil {
		return err
	}
	psql, err := s.Tools.Path("psql", major)
	if err != nil {
		return err
	}
	plain, closePlain, err := s.openPlain(ctx, m, stage)
	if err != nil {
		return err
	}
	defer closePlain()

	var prelude strings.Builder
	if clean {
		for _, schema := range schemasOf(m) {
			q := pgx.Identifier{schema}.Sanitize()
			fmt.Fprintf(&prelude, "DROP SCHEMA IF EXISTS %s CASCADE;\nCREATE SCHEMA %s;\n", q, q)
		}
	}

	// Objects are created as the connecting user: ownership and grants of
	// the source cannot be reproduced by a non-superuser anyway.
	restore := exec.CommandContext(ctx, pgRestore, "--no-owner", "--no-privileges", "--file=-")
	restoreErr := &tailBuffer{max: 4096}
	restore.Stderr = restoreErr
	restoreIn, err := restore.StdinPipe()
	if err != nil {
		return err
	}
	restoreOut, err := restore.StdoutPipe()
	if err != nil {
		return err
	}
	apply := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
		"--single-transaction", "--dbname="+target.ConnInfo(), "--file=-")
	apply.Env = target.ToolEnv(os.Environ())
	apply.Stdin = io.MultiReader(strings.NewReader(prelude.String()), restoreOut)
	apply.Stdout = io.Discard
	applyErr := &tailBuffer{max: 4096}
	apply.Stderr = applyErr
	if err := restore.Start(); err != nil {
		return fmt.Errorf("start pg_restore: %w", err)
	}
	if err := apply.Start(); err != nil {
		restore.Process.Kill()
		restore.Wait()
		return fmt.Errorf("start psql: %w", err)
	}
	fed := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(restoreIn, plain, make([]byte, 1<<20))
		restoreIn.Close()
		fed <- err
	}()
	// psql first: it reads pg_restore's output, which must be drained
	// before pg_restore is waited for.
	applyWait := apply.Wait()
	if applyWait != nil {
		restore.Process.Kill()
	}
	restoreWait := restore.Wait()
	copyErr := <-fed
	var ie *IntegrityError
	switch {
	case errors.As(copyErr, &ie):
		return copyErr
	case ctx.Err() != nil:
		return ctx.Err()
	case restoreWait != nil && applyWait == nil:
		return &IntegrityError{File: m.File.Name, Check: "restore", Err: fmt.Errorf("pg_restore: %v: %s", restoreWait, restoreErr)}
	case applyWait != nil:
		msg := applyErr.String()
		if r := restoreErr.String(); r != "" {
			msg += " (pg_restore: " + r + ")"
		}
		return &IntegrityError{File: m.File.Name, Check: "restore", Err: fmt.Errorf("psql: %v: %s", applyWait, msg)}
	case copyErr != nil:
		return fmt.Errorf("feed pg_restore: %w", copyErr)
	}
	return nil
}

// schemasOf lists the schemas of the backup's tables, public always
// included (the functions and views of a typical schema live there too).
func schemasOf(m *Manifest) []string {
	seen := map[string]bool{"public": true}
	out := []string{"public"}
	for _, t := range m.Tables {
		if !seen[t.Schema] {
			seen[t.Schema] = true
			out = append(out, t.Schema)
		}
	}
	return out
}

// Restore loads a backup into the database at to. Nothing is written
// before the whole file has passed its SHA-256 and every chunk its
// authentication, and a database that already has relations is refused
// unless clean is set (then the schemas the backup's tables are in are
// dropped and recreated first). The restore is one transaction, so a
// failure changes nothing.
func (s *Service) Restore(ctx context.Context, id string, to pgtool.Target, clean bool) (*VerifyRecord, error) {
	m, err := s.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkFile(ctx, m, "check sha256"); err != nil {
		return nil, err
	}
	plain, closePlain, err := s.openPlain(ctx, m, "check decrypt")
	if err != nil {
		return nil, err
	}
	_, err = io.CopyBuffer(io.Discard, plain, make([]byte, 1<<20))
	closePlain()
	if err != nil {
		return nil, err
	}

	conn, err := pgtool.Connect(ctx, to)
	if err != nil {
		return nil, err
	}
	rels, err := pgtool.UserRelations(ctx, conn, 5)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	if len(rels) > 0 && !clean {
		return nil, fmt.Errorf("%w: %s has %s...; restore with --clean to replace the backup's objects", ErrNotEmpty, to, strings.Join(rels, ", "))
	}
	s.log().Info("restore started", "backup", id, "target", to.String(), "clean", clean)
	if err := s.restoreInto(ctx, m, to, clean, "restore"); err != nil {
		return nil, err
	}
	rec := &VerifyRecord{ID: id, VerifiedAt: s.now().UTC()}
	if err := s.compare(ctx, m, to, rec, true); err != nil {
		return rec, err
	}
	rec.Status = StatusVerified
	return rec, nil
}
