package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestLocalCommitAbort(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := l.Create(ctx, "b/1/data")
	u.Write([]byte("half"))
	if objs, _ := l.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("uncommitted upload listed: %v", objs)
	}
	if _, err := l.Open(ctx, "b/1/data"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("uncommitted upload opened: %v", err)
	}
	u.Abort()

	u, _ = l.Create(ctx, "b/1/data")
	u.Write([]byte("whole"))
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	u.Abort() // no-op after Commit
	r, err := l.Open(ctx, "b/1/data")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "whole" {
		t.Fatalf("got %q", b)
	}
	objs, _ := l.List(ctx, "b/")
	if len(objs) != 1 || objs[0].Name != "b/1/data" || objs[0].Size != 5 {
		t.Fatalf("list: %+v", objs)
	}
	if err := l.Delete(ctx, "b/1/data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folders left behind: %v", err)
	}
}

func TestLocalRemovePartials(t *testing.T) {
	ctx := context.Background()
	l, _ := NewLocal(t.TempDir())
	u, _ := l.Create(ctx, "x/data") // as if the process died here
	u.Write([]byte("abc"))
	n, err := l.RemovePartials(ctx)
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v", n, err)
	}
}

func TestLocalRejectsBadNames(t *testing.T) {
	l, _ := NewLocal(t.TempDir())
	for _, name := range []string{"", "/abs", "../up", "a/../../b", "a//b", "x.partial-1"} {
		if _, err := l.Create(context.Background(), name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}
