package partition

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// ArchiveMeta describes one archived partition. It is stored next to the
// data as <base>.json; the data is <base>.copy.zst, the partition's rows
// in COPY text format, zstd-compressed.
type ArchiveMeta struct {
	Format    string    `json:"format"` // "copy-text+zstd"
	Schema    string    `json:"schema"`
	Parent    string    `json:"parent"`
	Partition string    `json:"partition"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Columns   []string  `json:"columns"`
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"` // of the .copy.zst file
	CreatedAt time.Time `json:"created_at"`
}

const archivePrefix = "archives/"

func archiveBase(t *table, partition string) string {
	return archivePrefix + t.schema + "." + t.name + "/" + partition
}

// archiveDrop copies the partition out, verifies the copy, and drops the
// partition in the same transaction. The partition is SHARE-locked from
// the count to the drop so no row can be added after it was archived; if
// anything fails the transaction rolls back and the partition stays.
func (m *Manager) archiveDrop(ctx context.Context, conn *pgx.Conn, t *table, a Action) (Action, error) {
	if m.Store == nil {
		return a, errors.New("archive_before_drop needs a backup store (sidecar.backup.dir)")
	}
	name := pgx.Identifier{t.schema, a.Partition}.Sanitize()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return a, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "LOCK TABLE "+name+" IN SHARE MODE"); err != nil {
		return a, err
	}
	meta := ArchiveMeta{
		Format: "copy-text+zstd", Schema: t.schema, Parent: t.name, Partition: a.Partition,
		From: a.From, To: a.To, Columns: t.columns, CreatedAt: m.now().UTC(),
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&meta.Rows); err != nil {
		return a, err
	}
	dataName, metaName := a.Archive+".copy.zst", a.Archive+".json"
	if err := m.writeArchive(ctx, conn, name, t.columnList(), dataName, &meta); err != nil {
		return a, err
	}
	committed := false
	defer func() {
		if !committed { // the partition stays, so the archive is not needed
			m.Store.Delete(context.WithoutCancel(ctx), dataName)
			m.Store.Delete(context.WithoutCancel(ctx), metaName)
		}
	}()
	if err := putJSON(ctx, m.Store, metaName, meta); err != nil {
		return a, err
	}
	if err := VerifyArchive(ctx, m.Store, a.Archive); err != nil {
		return a, err
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+name); err != nil {
		return a, err
	}
	if err := tx.Commit(ctx); err != nil {
		return a, err
	}
	committed = true
	a.Rows = meta.Rows
	return a, nil
}

func (m *Manager) writeArchive(ctx context.Context, conn *pgx.Conn, name, cols, dataName string, meta *ArchiveMeta) error {
	up, err := m.Store.Create(ctx, dataName)
	if err != nil {
		return err
	}
	defer up.Abort()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(up, h)}
	zw, err := zstd.NewWriter(cw)
	if err != nil {
		return err
	}
	if _, err := conn.PgConn().CopyTo(ctx, zw, fmt.Sprintf("COPY %s (%s) TO STDOUT", name, cols)); err != nil {
		zw.Close()
		return fmt.Errorf("copy out: %w", err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := up.Commit(); err != nil {
		return err
	}
	meta.Bytes, meta.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// VerifyArchive re-reads an archive: the file's SHA-256 and size must
// match its metadata and it must decompress to exactly the recorded number
// of rows (COPY text has one line per row; newlines in values are escaped).
func VerifyArchive(ctx context.Context, store storage.Storage, base string) error {
	meta, err := ReadArchiveMeta(ctx, store, base)
	if err != nil {
		return err
	}
	dataName := base + ".copy.zst"
	r, err := store.Open(ctx, dataName)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	cr := &countWriter{w: h}
	zr, err := zstd.NewReader(io.TeeReader(r, cr))
	if err != nil {
		return err
	}
	defer zr.Close()
	var lines int64
	br := bufio.NewReaderSize(zr, 1<<20)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			lines++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s: zstd: %w", dataName, err)
		}
	}
	if cr.n != meta.Bytes {
		return fmt.Errorf("%s: size %d, metadata says %d", dataName, cr.n, meta.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.SHA256 {
		return fmt.Errorf("%s: sha256 %s, metadata says %s", dataName, got, meta.SHA256)
	}
	if lines != meta.Rows {
		return fmt.Errorf("%s: %d rows, metadata says %d", dataName, lines, meta.Rows)
	}
	return nil
}

// ReadArchiveMeta loads <base>.json.
func ReadArchiveMeta(ctx context.Context, store storage.Storage, base string) (*ArchiveMeta, error) {
	r, err := store.Open(ctx, base+".json")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var meta ArchiveMeta
	if err := json.NewDecoder(r).Decode(&meta); err != nil {
		return nil, fmt.Errorf("%s.json: %w", base, err)
	}
	return &meta, nil
}

// ListArchives returns the base names of all archives in the store.
func ListArchives(ctx context.Context, store storage.Storage) ([]string, error) {
	objs, err := store.List(ctx, archivePrefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		if base, ok := strings.CutSuffix(o.Name, ".json"); ok {
			out = append(out, base)
		}
	}
	return out, nil
}

// RestoreArchive verifies an archive and loads its rows into table into,
// creating it like the archived partition's parent when it does not exist.
// It returns the number of rows loaded, which must match the metadata.
func RestoreArchive(ctx context.Context, conn *pgx.Conn, store storage.Storage, base, into string) (int64, error) {
	if err := VerifyArchive(ctx, store, base); err != nil {
		return 0, err
	}
	meta, err := ReadArchiveMeta(ctx, store, base)
	if err != nil {
		return 0, err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", into).Scan(&exists); err != nil {
		return 0, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	target := quoteQualified(into)
	if !exists {
		parent := pgx.Identifier{meta.Schema, meta.Parent}.Sanitize()
		if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", target, parent)); err != nil {
			return 0, fmt.Errorf("create %s like %s: %w", into, parent, err)
		}
	}
	r, err := store.Open(ctx, base+".copy.zst")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	zr, err := zstd.NewReader(r)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	cols := make([]string, len(meta.Columns))
	for i, c := range meta.Columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, zr, fmt.Sprintf("COPY %s (%s) FROM STDIN", target, strings.Join(cols, ", ")))
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", into, err)
	}
	if tag.RowsAffected() != meta.Rows {
		return 0, fmt.Errorf("loaded %d rows, archive says %d", tag.RowsAffected(), meta.Rows)
	}
	return tag.RowsAffected(), tx.Commit(ctx)
}

func quoteQualified(name string) string {
	if schema, rel, ok := strings.Cut(name, "."); ok {
		return pgx.Identifier{schema, rel}.Sanitize()
	}
	return pgx.Identifier{name}.Sanitize()
}

func putJSON(ctx context.Context, store storage.Storage, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	up, err := store.Create(ctx, name)
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := io.Copy(up, bytes.NewReader(append(b, '\n'))); err != nil {
		return err
	}
	return up.Commit()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
