package proxy_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestClientLeavingMidCopyDataFreesItsServer: a client that dies halfway
// through a CopyData message, in a COPY or a stray one, leaves its server
// with part of a message, waiting for the rest for good. That connection
// must be closed, not cleaned for reuse (the reset would wait on it) nor
// kept lent: with one server connection, the next client is served.
func TestClientLeavingMidCopyDataFreesItsServer(t *testing.T) {
	for _, tc := range []struct {
		mode string
		copy bool
	}{{"session", true}, {"session", false}, {"transaction", true}} {
		t.Run(fmt.Sprintf("%s,copy=%v", tc.mode, tc.copy), func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n  max_size: 1\n  acquire_timeout: 2s\n", tc.mode))
			ctx := ctxT(t, 30*time.Second)
			table := "copy_leave_" + tc.mode
			setup := h.ninja(t)
			if _, err := setup.Exec(ctx, "drop table if exists "+table+"; create table "+table+" (v text)"); err != nil {
				t.Fatal(err)
			}
			_ = setup.Close(ctx) // in session mode it holds the one connection

			// Timing decides which way the old bug showed, so a few rounds.
			for range 5 {
				nc, fe := rawLogin(t, h, 10*time.Second)
				if tc.copy {
					fe.Send(&pgproto3.Query{String: "copy " + table + " from stdin"})
					if err := fe.Flush(); err != nil {
						t.Fatal(err)
					}
					receiveUntil[*pgproto3.CopyInResponse](t, fe, "waiting for CopyInResponse")
				}
				// A CopyData header that promises 1 MB, a few bytes of it, and
				// the client is gone.
				if _, err := nc.Write([]byte{'d', 0, 0x10, 0, 4, 'a', 'b', 'c'}); err != nil {
					t.Fatal(err)
				}
				// Half closed, as a client that has sent all it will and
				// still reads; the proxy answers and closes.
				_ = nc.(*net.TCPConn).CloseWrite()
				for {
					if _, err := fe.Receive(); err != nil {
						break
					}
				}
				nc.Close()

				next := h.ninja(t)
				var one int
				if err := next.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
					t.Fatalf("the next client, with the only server connection: %v, %v", one, err)
				}
				_ = next.Close(ctx)
			}
		})
	}
}
