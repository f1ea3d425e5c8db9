package proxy_test

import (
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
)

// SERIALIZABLE transactions run on the primary: a hot standby refuses
// them, read-only ones included, and refuses every statement of a client
// whose default_transaction_isolation is serializable.
func TestRoutingSerializableStaysOnPrimary(t *testing.T) {
	env := testbed.Require(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: eventual\n"))
	ctx := ctxT(t, 60*time.Second)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	waitServesReads(t, h, replica)
	for _, tc := range []struct {
		name  string
		steps []string
		want  int
	}{
		{"BEGIN SERIALIZABLE READ ONLY", []string{"begin isolation level serializable read only"}, primary},
		{"under default_transaction_read_only", []string{"set default_transaction_read_only = on", "begin isolation level serializable"}, primary},
		{"default_transaction_isolation", []string{"set default_transaction_isolation = 'serializable'"}, primary},
		{"SESSION CHARACTERISTICS", []string{"set session characteristics as transaction isolation level serializable"}, primary},
		{"another level", []string{"set default_transaction_isolation = 'serializable'", "begin isolation level repeatable read read only"}, replica},
		{"RESET", []string{"set default_transaction_isolation = 'serializable'", "reset default_transaction_isolation"}, replica},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.ninja(t)
			for _, sql := range tc.steps {
				if _, err := c.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			if got := serverPort(t, c, "select inet_server_port()"); got != tc.want {
				t.Fatalf("a read ran on %d, want %d", got, tc.want)
			}
		})
	}
}
