package pitr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// Archiver streams WAL from the primary and archives it into the store.
type Archiver struct {
	Store storage.Storage
	Key   *sealed.Key
	Tools pgtool.Tools
	// Source is the primary as a user with the REPLICATION attribute.
	Source pgtool.Target
	// Slot is the physical replication slot pg_receivewal uses.
	Slot string
	// Dir is where pg_receivewal writes; completed segments are sealed
	// into the store and removed from here.
	Dir    string
	Logger *slog.Logger
	// ServerMajor picks the pg_receivewal matching the server.
	ServerMajor int
	// Interval between sealing passes; 0 means 5s.
	Interval time.Duration
	// OnPass, when set, hears about every sealing pass that archived
	// something or failed (for metrics).
	OnPass func(archived int, err error)
}

var segmentRE = regexp.MustCompile(`^[0-9A-F]{24}$|^[0-9A-F]{8}\.history$`)

func (a *Archiver) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (a *Archiver) tool(ctx context.Context, args ...string) *exec.Cmd {
	path, err := a.Tools.Path("pg_receivewal", a.ServerMajor)
	if err != nil {
		path = "pg_receivewal"
	}
	cmd := exec.CommandContext(ctx, path, append(args, "--dbname="+a.Source.ConnInfo())...)
	cmd.Env = a.Source.ToolEnv(os.Environ())
	return cmd
}

// EnsureSlot creates the replication slot if it does not exist.
func (a *Archiver) EnsureSlot(ctx context.Context) error {
	out, err := a.tool(ctx, "--slot="+a.Slot, "--create-slot", "--if-not-exists").CombinedOutput()
	if err != nil {
		return fmt.Errorf("create replication slot %s: %v: %s", a.Slot, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Run supervises pg_receivewal and seals completed segments until ctx is
// done. pg_receivewal is restarted (after a pause) whenever it exits.
func (a *Archiver) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return err
	}
	if err := a.EnsureSlot(ctx); err != nil {
		return err
	}
	interval := a.Interval
	if interval == 0 {
		interval = 5 * time.Second
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := a.tool(ctx, "--directory="+a.Dir, "--slot="+a.Slot, "--no-loop", "--synchronous")
			tail := &strings.Builder{}
			cmd.Stderr = tail
			a.log().Info("pg_receivewal started", "dir", a.Dir, "slot", a.Slot, "source", a.Source.String())
			err := cmd.Run()
			if ctx.Err() != nil {
				return
			}
			a.log().Error("pg_receivewal exited; restarting in 5s", "err", err, "stderr", strings.TrimSpace(tail.String()))
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := a.SealCompleted(ctx)
		if err != nil && ctx.Err() == nil {
			a.log().Error("archiving WAL failed", "err", err)
		}
		if a.OnPass != nil && (n > 0 || (err != nil && ctx.Err() == nil)) {
			a.OnPass(n, err)
		}
		select {
		case <-ctx.Done():
			<-done
			// A last pass for segments finished while we were stopping.
			a.SealCompleted(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		}
	}
}

// SealCompleted archives every completed segment and history file in Dir
// (pg_receivewal renames a segment from .partial once it is complete) and
// deletes the local copies. It returns how many it archived.
func (a *Archiver) SealCompleted(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(a.Dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !segmentRE.MatchString(e.Name()) {
			continue
		}
		path := filepath.Join(a.Dir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			return n, err
		}
		_, _, err = sealTo(ctx, a.Store, a.Key, walPrefix+e.Name()+sealedExt, f)
		f.Close()
		if err != nil {
			return n, fmt.Errorf("archive %s: %w", e.Name(), err)
		}
		if err := os.Remove(path); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		a.log().Debug("WAL archived", "segments", n)
	}
	return n, nil
}

const (
	walPrefix  = "wal/"
	basePrefix = "base/"
	sealedExt  = ".zst.enc"
)

// ArchivedWAL lists archived segment and history names, sorted.
func ArchivedWAL(ctx context.Context, store storage.Storage) ([]string, error) {
	objs, err := store.List(ctx, walPrefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(o.Name, walPrefix), sealedExt); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrNoBase means no base backup finished before the target time.
var ErrNoBase = errors.New("no base backup finished before the target time")
