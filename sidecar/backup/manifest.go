package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

const (
	prefix       = "dumps/"
	dataFile     = "data.dump.zst.enc"
	manifestFile = "manifest.json"
	verifyFile   = "verify.json"
	formatV1     = 1
)

// Manifest describes one complete backup.
type Manifest struct {
	Format     int        `json:"format"`
	ID         string     `json:"id"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt time.Time  `json:"finished_at"`
	Database   string     `json:"database"`
	Source     SourceInfo `json:"source"`
	// LSN is the source's WAL position when the snapshot was taken (replay
	// position on a replica).
	LSN         string         `json:"lsn"`
	PgDump      ToolInfo       `json:"pg_dump"`
	Compression string         `json:"compression"`
	Encryption  EncryptionInfo `json:"encryption"`
	File        FileInfo       `json:"file"`
	DumpBytes   int64          `json:"dump_bytes"` // pg_dump output before compression
	// ChecksumAlgorithm is how each table's Checksum was computed.
	ChecksumAlgorithm string            `json:"checksum_algorithm"`
	Tables            []pgtool.TableSum `json:"tables"`
}

// SourceInfo is the server the dump was read from.
type SourceInfo struct {
	Role          string `json:"role"` // replica or primary
	Host          string `json:"host"`
	Port          int    `json:"port"`
	ServerVersion string `json:"server_version"`
	InRecovery    bool   `json:"in_recovery"`
}

// ToolInfo records the program that wrote the dump.
type ToolInfo struct {
	Path    string   `json:"path"`
	Version string   `json:"version"`
	Args    []string `json:"args"`
}

// EncryptionInfo records how the data file is sealed.
type EncryptionInfo struct {
	Cipher    string `json:"cipher"`
	KeyID     string `json:"key_id"`
	ChunkSize int    `json:"chunk_size"`
}

// FileInfo is the data object as stored.
type FileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Rows is the total row count.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// signedManifest is the stored form: the MAC covers the exact manifest
// bytes, so it survives later additions to the Manifest type.
type signedManifest struct {
	Manifest json.RawMessage `json:"manifest"`
	KeyID    string          `json:"key_id"`
	MAC      string          `json:"mac"`
}

func dir(id string) string { return prefix + id + "/" }

func writeManifest(ctx context.Context, store storage.Storage, key *sealed.Key, m *Manifest) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(signedManifest{Manifest: body, KeyID: key.ID(), MAC: key.MAC(body)}, "", "  ")
	if err != nil {
		return err
	}
	return putBytes(ctx, store, dir(m.ID)+manifestFile, append(b, '\n'))
}

// ErrManifest is a manifest that fails its signature check.
var ErrManifest = errors.New("manifest signature check failed")

// readManifest loads a manifest. With a key it also checks the key id and
// the MAC; without one (listing) it only parses.
func readManifest(ctx context.Context, store storage.Storage, key *sealed.Key, id string) (*Manifest, error) {
	name := dir(id) + manifestFile
	r, err := store.Open(ctx, name)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("backup %s not found in %s", id, store)
		}
		return nil, err
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, err
	}
	var sm signedManifest
	if err := json.Unmarshal(raw, &sm); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if key != nil {
		if sm.KeyID != key.ID() {
			return nil, fmt.Errorf("backup %s: %w", id, &sealed.ErrWrongKey{FileKeyID: sm.KeyID, KeyID: key.ID()})
		}
		// The MAC covers the compact JSON, so the indentation of the
		// stored file (json re-indents the embedded manifest) is irrelevant.
		if !key.CheckMAC(compact(sm.Manifest), sm.MAC) {
			return nil, fmt.Errorf("%s: %w (edited, or written with another key)", name, ErrManifest)
		}
	}
	var m Manifest
	if err := json.Unmarshal(sm.Manifest, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if m.Format != formatV1 {
		return nil, fmt.Errorf("%s: unknown format %d", name, m.Format)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%s: %w (it names backup %q)", name, ErrManifest, m.ID)
	}
	return &m, nil
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

func putBytes(ctx context.Context, store storage.Storage, name string, b []byte) error {
	up, err := store.Create(ctx, name)
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := up.Write(b); err != nil {
		return err
	}
	return up.Commit()
}

// VerifyRecord is the outcome of the latest verification of a backup.
type VerifyRecord struct {
	ID         string    `json:"id"`
	VerifiedAt time.Time `json:"verified_at"`
	// Status is verified, failed (the backup is bad) or error (the check
	// itself could not run, e.g. no scratch database; says nothing about
	// the backup).
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	Duration   float64       `json:"duration_seconds"`
	Tables     []TableResult `json:"tables,omitempty"`
	Mismatches []string      `json:"mismatches,omitempty"`
}

// TableResult is one table's row count after the test restore.
type TableResult struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Verification statuses.
const (
	StatusVerified = "verified"
	StatusFailed   = "failed"
	StatusError    = "error"
)

func writeVerify(ctx context.Context, store storage.Storage, rec *VerifyRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return putBytes(ctx, store, dir(rec.ID)+verifyFile, append(b, '\n'))
}

func readVerify(ctx context.Context, store storage.Storage, id string) (*VerifyRecord, error) {
	r, err := store.Open(ctx, dir(id)+verifyFile)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var rec VerifyRecord
	if err := json.NewDecoder(r).Decode(&rec); err != nil {
		return nil, err
	}
	return &rec, nil
}
