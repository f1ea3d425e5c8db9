package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned for a missing object.
var ErrNotExist = errors.New("object does not exist")

// ObjectInfo describes one committed object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Upload is an object being written. Commit publishes it atomically
// (replacing an object of the same name); Abort discards it. One of the two
// must be called; Abort after Commit is a no-op, so `defer u.Abort()` is the
// usual pattern.
type Upload interface {
	io.Writer
	Commit() error
	Abort() error
}

// Storage keeps named objects. Names are slash-separated relative paths.
type Storage interface {
	Create(ctx context.Context, name string) (Upload, error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// List returns committed objects whose names start with prefix, sorted
	// by name.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes one object; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// String names the store in messages.
	String() string
}

// PartialRemover is implemented by stores that can leave abandoned uploads
// behind when a process is killed; jobs call it while they hold their lock.
type PartialRemover interface {
	RemovePartials(ctx context.Context) (int, error)
}
