package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelKeys maps the BackendKeyData the proxy gave each client to its
// session, so a CancelRequest on a new connection finds the server
// connection that is running that client's query.
//
// Sessions are filed by process ID, which several may share: a
// session-mode client is given its server's real process ID, and servers
// on different hosts may use the same one. The secret tells them apart.
type cancelKeys struct {
	mu    sync.Mutex
	byPID map[uint32][]*Session
}

func newCancelKeys() *cancelKeys { return &cancelKeys{byPID: map[uint32][]*Session{}} }

// register gives s process ID pid, or when pid is 0 a random unused one
// above clientPIDFloor, and a random secret no other session with that
// process ID has.
func (k *cancelKeys) register(s *Session, pid uint32) {
	var b [8]byte
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		_, _ = rand.Read(b[:])
		id := pid
		if id == 0 {
			id = clientPIDFloor + binary.BigEndian.Uint32(b[:4])%(1<<31-clientPIDFloor)
			if len(k.byPID[id]) > 0 {
				continue
			}
		}
		if k.find(id, b[4:]) != nil {
			continue
		}
		s.keyPID = id
		s.keySecret = append([]byte(nil), b[4:]...)
		k.byPID[id] = append(k.byPID[id], s)
		return
	}
}

func (k *cancelKeys) unregister(s *Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	list := k.byPID[s.keyPID]
	for i, other := range list {
		if other == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(k.byPID, s.keyPID)
	} else {
		k.byPID[s.keyPID] = list
	}
}

// sessionsOf returns the sessions given process ID pid.
func (k *cancelKeys) sessionsOf(pid uint32) []*Session {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.byPID[pid])
}

func (k *cancelKeys) lookup(pid uint32, secret []byte) *Session {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.find(pid, secret)
}

// find compares secrets in constant time; k.mu is held.
func (k *cancelKeys) find(pid uint32, secret []byte) *Session {
	var found *Session
	for _, s := range k.byPID[pid] {
		if subtle.ConstantTimeCompare(s.keySecret, secret) == 1 {
			found = s
		}
	}
	return found
}

// abandon closes c, whose request nobody will wait for, and cancels that
// request on the server: PostgreSQL notices a closed socket only when it
// next writes, so a long statement would otherwise run on, holding its
// locks, for nobody. The caller holds s.mu, under which the relay releases
// a lease at its safe point, so c is still this session's and no other
// client's; closed and marked broken it is never lent again, so the cancel
// can reach no other query. The cancel goes out on a goroutine of its own:
// the sweep and a session's end must not wait on a server slow to take it.
func (s *Session) abandon(c *pool.Conn, why string) {
	c.MarkBroken()
	_ = c.Conn.Close()
	go func() {
		if err := sendCancel(c.Addr, c.PID, c.Secret); err != nil {
			s.srv.log.Warn("cancel request to server failed", "why", why, "server", c.Addr, "err", err)
		}
	}()
}

// sendCancel delivers a CancelRequest for a server connection.
func sendCancel(addr string, pid uint32, secret []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(wire.Append(nil, &pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret})); err != nil {
		return err
	}
	// The server closes without answering; wait for that so the cancel
	// has arrived before we return.
	var b [1]byte
	_, _ = c.Read(b[:])
	return nil
}
