package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelKeys maps the BackendKeyData the proxy gave each client to its
// session, so a CancelRequest on a new connection finds the server
// connection that is running that client's query.
type cancelKeys struct {
	mu       sync.Mutex
	sessions map[uint32]*Session
}

func newCancelKeys() *cancelKeys { return &cancelKeys{sessions: map[uint32]*Session{}} }

// register assigns s a fresh, unique key.
func (k *cancelKeys) register(s *Session) {
	var b [8]byte
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		_, _ = rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if _, taken := k.sessions[pid]; pid == 0 || taken {
			continue
		}
		s.keyPID = pid
		s.keySecret = append([]byte(nil), b[4:]...)
		k.sessions[pid] = s
		return
	}
}

func (k *cancelKeys) unregister(s *Session) {
	k.mu.Lock()
	if k.sessions[s.keyPID] == s {
		delete(k.sessions, s.keyPID)
	}
	k.mu.Unlock()
}

func (k *cancelKeys) lookup(pid uint32, secret []byte) *Session {
	k.mu.Lock()
	s := k.sessions[pid]
	k.mu.Unlock()
	if s == nil || subtle.ConstantTimeCompare(s.keySecret, secret) != 1 {
		return nil
	}
	return s
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
