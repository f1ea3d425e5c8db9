package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/pool"
)

// TestReloadChangesTheServersRoutedTo: with routing on, a reload adds,
// renames, moves and removes replicas without a restart and without a
// client noticing, and refuses only what must wait for one.
func TestReloadChangesTheServersRoutedTo(t *testing.T) {
	env := testbed.Require(t)
	eventual := "  consistency: eventual\n"
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, eventual))
	c := h.ninja(t)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	reload := func(yaml string) error {
		t.Helper()
		cfg, err := config.Parse([]byte("users:\n  - {name: ninja, password: ninja}\n"+yaml), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h.srv.Reload(cfg)
	}
	// reads runs n reads and counts them by the port of the server that
	// ran them; any error fails the test.
	reads := func(n int) map[int]int {
		got := map[int]int{}
		for range n {
			got[serverPort(t, c, "select inet_server_port()")]++
		}
		return got
	}
	waitFor(t, 10*time.Second, "the replica in rotation", func() bool { return reads(1)[replica] == 1 })

	// Renamed: the new name is checked and takes the reads; the old
	// name's pool closes its connections and opens none again.
	if err := reload(routedConfig(t, env.Primary, 0, map[string]string{"replica2": env.Replica}, 1, eventual)); err != nil {
		t.Fatalf("reload renaming the replica: %v", err)
	}
	waitFor(t, 10*time.Second, "the renamed replica in rotation", func() bool { return reads(1)[replica] == 1 })
	waitFor(t, 10*time.Second, "the old name's connections closed", func() bool {
		open := 0
		h.pools.Each(func(k pool.Key, p *pool.Pool) {
			if k.Backend == "replica" {
				open += p.Stats().Total
			}
		})
		return open == 0
	})
	if got := reads(50); got[replica] != 50 {
		t.Fatalf("after the rename: %v, want every read on the replica (port %d)", got, replica)
	}

	// Added: a replica that is down takes nothing; the live one still
	// takes every read, and no client sees an error.
	dead := "127.0.0.1:1"
	two := map[string]string{"replica2": env.Replica, "replica3": dead}
	if err := reload(routedConfig(t, env.Primary, 0, two, 1, eventual+"  max_replica_lag_bytes: 1000000000\n")); err != nil {
		t.Fatalf("reload adding a replica and a lag limit: %v", err)
	}
	if got := reads(100); got[replica] != 100 {
		t.Fatalf("with a dead replica added: %v, want every read on the live one", got)
	}

	// Moved: replica2 now names the primary's server, which is not in
	// recovery, so it takes no reads: they go to the primary.
	moved := map[string]string{"replica2": env.Primary, "replica3": dead}
	if err := reload(routedConfig(t, env.Primary, 0, moved, 1, eventual)); err != nil {
		t.Fatalf("reload moving a replica: %v", err)
	}
	waitFor(t, 10*time.Second, "reads on the primary", func() bool { return reads(1)[primary] == 1 })
	if got := reads(50); got[primary] != 50 {
		t.Fatalf("with the replica moved to the primary's server: %v, want every read on the primary", got)
	}

	// Refused: what only a restart applies.
	for _, tt := range []struct{ what, yaml, want string }{
		{"the last replica removed", routedConfig(t, env.Primary, 0, nil, 1, eventual), "a replica must stay"},
		{"another consistency", routedConfig(t, env.Primary, 0, moved, 1, "  consistency: table\n"), "routing.consistency"},
		{"routing off", strings.Replace(routedConfig(t, env.Primary, 0, moved, 1, eventual), "enabled: true", "enabled: false", 1), "routing"},
	} {
		if err := reload(tt.yaml); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "restart") {
			t.Errorf("reload with %s: %v, want a refusal naming %q and the restart", tt.what, err, tt.want)
		}
	}

	// And back: the replica takes the reads again.
	if err := reload(routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, eventual)); err != nil {
		t.Fatalf("reload restoring the replica: %v", err)
	}
	waitFor(t, 10*time.Second, "the replica back in rotation", func() bool { return reads(1)[replica] == 1 })
}
