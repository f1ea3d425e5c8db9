package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// partialMark is part of the name of a file being uploaded; such files are
// never listed and are removed by RemovePartials.
const partialMark = ".partial-"

// Local stores objects as files under Dir.
type Local struct {
	Dir string
}

// NewLocal creates dir if needed. Backups hold the whole database, so the
// directory is private to the user.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup store: %w", err)
	}
	return &Local{Dir: dir}, nil
}

func (l *Local) String() string { return l.Dir }

func (l *Local) path(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || clean != name || path.IsAbs(name) || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." || strings.Contains(name, partialMark) {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return filepath.Join(l.Dir, filepath.FromSlash(name)), nil
}

type localUpload struct {
	f         *os.File
	tmp, dest string
	done      bool
}

func (l *Local) Create(_ context.Context, name string) (Upload, error) {
	dest, err := l.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := dest + partialMark + hex.EncodeToString(rnd[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &localUpload{f: f, tmp: tmp, dest: dest}, nil
}

func (u *localUpload) Write(p []byte) (int, error) { return u.f.Write(p) }

// Commit syncs the data before the rename and the directory after it, so
// a crash leaves either the old state or the complete new object.
func (u *localUpload) Commit() error {
	if u.done {
		return errors.New("upload already finished")
	}
	u.done = true
	err := u.f.Sync()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(u.tmp, u.dest)
	}
	if err != nil {
		os.Remove(u.tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(u.dest)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (u *localUpload) Abort() error {
	if u.done {
		return nil
	}
	u.done = true
	u.f.Close()
	return os.Remove(u.tmp)
}

func (l *Local) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotExist)
	}
	return f, err
}

func (l *Local) Stat(_ context.Context, name string) (ObjectInfo, error) {
	p, err := l.path(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("%s: %w", name, ErrNotExist)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (l *Local) List(_ context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := filepath.WalkDir(l.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.Contains(d.Name(), partialMark) {
			return nil
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while we walked
		}
		out = append(out, ObjectInfo{Name: name, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Delete removes the object and then any directories it leaves empty, so
// deleted backups do not leave a trail of empty folders.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for dir := filepath.Dir(p); dir != filepath.Clean(l.Dir) && strings.HasPrefix(dir, filepath.Clean(l.Dir)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}

// RemovePartials deletes uploads left by a process that was killed. Callers
// hold the job's lock, so no upload of theirs is in flight.
func (l *Local) RemovePartials(_ context.Context) (int, error) {
	n := 0
	err := filepath.WalkDir(l.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() && strings.Contains(d.Name(), partialMark) {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}
