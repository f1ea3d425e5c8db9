package pitr

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// RestorePlan is what PrepareRestore laid out.
type RestorePlan struct {
	Base       *BaseManifest
	Dir        string
	TargetTime time.Time
	Segments   int // WAL files copied for recovery
}

// PrepareRestore builds a data directory in dir (which must be empty or
// absent) that recovers to target when PostgreSQL starts on it: the newest
// base backup finished before target, every archived WAL file from the
// base's start on (decrypted into dir/pgninja_wal, read by a plain cp
// restore_command so recovery needs nothing from pgninja), and
// recovery.signal with recovery_target_time. partialDir, when set, is the
// archiver's receive directory: its newest .partial segment holds the most
// recent WAL and is included too.
func PrepareRestore(ctx context.Context, store storage.Storage, key *sealed.Key, target time.Time, dir, partialDir string) (*RestorePlan, error) {
	bases, err := ListBases(ctx, store)
	if err != nil {
		return nil, err
	}
	var base *BaseManifest
	for _, b := range bases {
		if b.FinishedAt.Before(target) {
			base = b
		}
	}
	if base == nil {
		return nil, ErrNoBase
	}
	if base.KeyID != key.ID() {
		return nil, &sealed.ErrWrongKey{FileKeyID: base.KeyID, KeyID: key.ID()}
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o700) // PostgreSQL refuses group- or world-readable data directories
	plan := &RestorePlan{Base: base, Dir: dir, TargetTime: target}

	r, closeR, err := openSealed(ctx, store, key, basePrefix+base.ID+"/base.tar"+sealedExt)
	if err != nil {
		return nil, err
	}
	err = untar(r, dir)
	closeR()
	if err != nil {
		return nil, fmt.Errorf("extract base backup %s: %w", base.ID, err)
	}

	walDir := filepath.Join(dir, "pgninja_wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, err
	}
	start, err := base.StartSegment()
	if err != nil {
		return nil, err
	}
	names, err := ArchivedWAL(ctx, store)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".history") && name < start {
			continue
		}
		r, closeR, err := openSealed(ctx, store, key, walPrefix+name+sealedExt)
		if err != nil {
			return nil, err
		}
		err = writeFile(filepath.Join(walDir, name), r)
		closeR()
		if err != nil {
			return nil, err
		}
		plan.Segments++
	}
	if partialDir != "" {
		if ents, err := os.ReadDir(partialDir); err == nil {
			for _, e := range ents {
				if seg, ok := strings.CutSuffix(e.Name(), ".partial"); ok && segmentRE.MatchString(seg) && seg >= start {
					f, err := os.Open(filepath.Join(partialDir, e.Name()))
					if err != nil {
						return nil, err
					}
					err = writeFile(filepath.Join(walDir, seg), f)
					f.Close()
					if err != nil {
						return nil, err
					}
					plan.Segments++
				}
			}
		}
	}

	conf := fmt.Sprintf("\n# Added by pgninja restore: recover to %s, then promote.\n"+
		"restore_command = 'cp \"%s/%%f\" \"%%p\"'\n"+
		"recovery_target_time = '%s'\n"+
		"recovery_target_action = 'promote'\n",
		target.UTC().Format(time.RFC3339), walDir, target.UTC().Format("2006-01-02 15:04:05.999999+00"))
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o600); err != nil {
		return nil, err
	}
	// A standby's base backup carries standby.signal; this is a recovery.
	os.Remove(filepath.Join(dir, "standby.signal"))
	return plan, nil
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// untar extracts pg_basebackup's single tar stream (with -D - and -X fetch
// the WAL it needs is inside, under pg_wal/) into dir, refusing paths that
// escape it.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if p != dir && !strings.HasPrefix(p, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("tar entry %q escapes the target directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			if err := writeFile(p, tr); err != nil {
				return err
			}
			os.Chmod(p, os.FileMode(h.Mode).Perm()&0o700)
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}
