package pitr

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// BaseManifest describes one base backup.
type BaseManifest struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	StartLSN   string    `json:"start_lsn"`
	EndLSN     string    `json:"end_lsn"`
	Timeline   int       `json:"timeline"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	KeyID      string    `json:"key_id"`
	PgVersion  string    `json:"pg_basebackup"`
}

// StartSegment is the WAL segment the base backup needs first (16 MB
// segments, the default).
func (m *BaseManifest) StartSegment() (string, error) {
	hi, lo, ok := strings.Cut(m.StartLSN, "/")
	if !ok {
		return "", fmt.Errorf("bad start LSN %q", m.StartLSN)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("bad start LSN %q", m.StartLSN)
	}
	return fmt.Sprintf("%08X%08X%08X", m.Timeline, h, l/(16<<20)), nil
}

var (
	startRE = regexp.MustCompile(`write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)`)
	endRE   = regexp.MustCompile(`write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)`)
)

// TakeBase runs pg_basebackup (tar to stdout, with the WAL it needs) into
// the store, sealed. source must be a replication user's target.
func TakeBase(ctx context.Context, store storage.Storage, key *sealed.Key, tools pgtool.Tools, source pgtool.Target, major int, now time.Time) (*BaseManifest, error) {
	path, err := tools.Path("pg_basebackup", major)
	if err != nil {
		return nil, err
	}
	m := &BaseManifest{ID: now.UTC().Format("20060102T150405Z"), StartedAt: now.UTC(), KeyID: key.ID()}
	if m.PgVersion, err = pgtool.Version(ctx, path); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, "--pgdata=-", "--format=tar", "--wal-method=fetch",
		"--checkpoint=fast", "--verbose", "--no-manifest", "--dbname="+source.ConnInfo())
	cmd.Env = source.ToolEnv(os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	name := basePrefix + m.ID + "/base.tar" + sealedExt
	size, sum, sealErr := sealTo(ctx, store, key, name, out)
	if sealErr != nil {
		cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if sealErr != nil || waitErr != nil {
		store.Delete(context.WithoutCancel(ctx), name)
		if sealErr != nil {
			return nil, fmt.Errorf("store base backup: %w", sealErr)
		}
		return nil, fmt.Errorf("pg_basebackup: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	s := stderr.String()
	if mm := startRE.FindStringSubmatch(s); mm != nil {
		m.StartLSN = mm[1]
		m.Timeline, _ = strconv.Atoi(mm[2])
	}
	if mm := endRE.FindStringSubmatch(s); mm != nil {
		m.EndLSN = mm[1]
	}
	if m.StartLSN == "" {
		store.Delete(context.WithoutCancel(ctx), name)
		return nil, fmt.Errorf("pg_basebackup did not report its start point: %s", s)
	}
	m.Size, m.SHA256, m.FinishedAt = size, sum, time.Now().UTC()
	if err := putJSON(ctx, store, basePrefix+m.ID+"/manifest.json", m); err != nil {
		store.Delete(context.WithoutCancel(ctx), name)
		return nil, err
	}
	return m, nil
}

// ListBases returns base backups, oldest first.
func ListBases(ctx context.Context, store storage.Storage) ([]*BaseManifest, error) {
	objs, err := store.List(ctx, basePrefix)
	if err != nil {
		return nil, err
	}
	var out []*BaseManifest
	for _, o := range objs {
		if !strings.HasSuffix(o.Name, "/manifest.json") {
			continue
		}
		r, err := store.Open(ctx, o.Name)
		if err != nil {
			return nil, err
		}
		var m BaseManifest
		err = json.NewDecoder(r).Decode(&m)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		out = append(out, &m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FinishedAt.Before(out[j].FinishedAt) })
	return out, nil
}
