package proxy_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
)

// TestReadyFollowsThePrimary: /readyz's answer is ready while the
// primary takes connections, before any client and after, not ready with
// the reason when it does not, and not ready once the proxy shuts down.
func TestReadyFollowsThePrimary(t *testing.T) {
	env := testbed.Require(t)
	ctx := ctxT(t, 30*time.Second)

	h := startProxy(t, "")
	if r := h.srv.Ready(ctx); !r.Ready {
		t.Fatalf("before any client (a TCP look): %+v, want ready", r)
	}
	c := h.ninja(t)
	if r := h.srv.Ready(ctx); !r.Ready {
		t.Fatalf("with a pool (a login): %+v, want ready", r)
	}
	_ = c.Close(ctx)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if r := h.srv.Ready(ctx); r.Ready || r.Reason != "shutting down" {
		t.Fatalf("after shutdown: %+v, want not ready, shutting down", r)
	}

	// A primary nobody listens for.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().(*net.TCPAddr)
	ln.Close()
	dead := startWith(t, env, "backends:\n  - {name: primary, host: 127.0.0.1, port: "+itoa(uint32(gone.Port))+"}\n")
	if r := dead.srv.Ready(ctx); r.Ready || !strings.Contains(r.Reason, "primary primary") || !strings.Contains(r.Reason, "refused") {
		t.Fatalf("primary not listening: %+v, want not ready, naming it", r)
	}

	// With routing on, the health checks decide.
	routed := startWith(t, env, routedConfig(t, env.Primary, 1, map[string]string{"replica": env.Replica}, 1, ""))
	waitFor(t, 10*time.Second, "a ready routed proxy", func() bool { return routed.srv.Ready(ctx).Ready })
	deadRouted := startWith(t, env, routedConfig(t, gone.String(), 1, map[string]string{"replica": env.Replica}, 1, ""))
	time.Sleep(time.Second) // several health checks
	if r := deadRouted.srv.Ready(ctx); r.Ready || !strings.Contains(r.Reason, "no healthy primary") {
		t.Fatalf("routed, primary not listening: %+v, want not ready", r)
	}
}
