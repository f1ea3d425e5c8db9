package proxy_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// testLog returns a logger for one test's proxy. Its lines are kept and
// printed only if the test fails, so a failure in CI shows what the proxy
// saw (health checks, pool errors) without flooding passing runs.
// PGNINJA_TEST_LOG=1 prints everything, at debug level, as it happens.
// The buffer it returns holds the lines either way, for a test about them.
func testLog(t testing.TB) (*slog.Logger, *lockedBuffer) {
	b := &lockedBuffer{}
	if os.Getenv("PGNINJA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, b), &slog.HandlerOptions{Level: slog.LevelDebug})), b
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// lockedBuffer is written by the proxy's goroutines, which may outlive
// the test by a moment, and read once at cleanup.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
