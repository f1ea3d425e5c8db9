package proxy

import (
	"encoding/binary"
	"errors"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A lone BEGIN in transaction mode is answered by the proxy and sent later,
// in front of the client's next request (see build), for three reasons:
//   - the client holds no server connection while it thinks between its
//     BEGIN and its first statement;
//   - the transaction costs one round trip to the server fewer;
//   - with routing, the transaction is placed knowing its first statement:
//     BEGIN READ ONLY followed by SET TRANSACTION ISOLATION LEVEL
//     SERIALIZABLE (which a hot standby refuses) or by an advisory lock
//     (which a replica would grant while it excludes no one on the
//     primary) goes to the primary.
//
// The server starts the transaction when the next request reaches it, so
// now() and transaction_timestamp() give that time rather than the
// BEGIN's, and the server's idle_in_transaction_session_timeout counts
// from there (the proxy's idle_transaction_timeout counts from the BEGIN).
// The snapshot is the same: PostgreSQL takes it at the first statement in
// any case.
//
// Should that request be refused before any server sees it (no server
// connection within query_wait_timeout, no primary), the client's
// transaction has failed as it would have in PostgreSQL: the proxy then
// also holds back a statement that fails, so that the server the client
// reaches next finds the transaction failed too and answers what follows
// (ROLLBACK, or 25P02) itself.

// deferBegin answers the collected request itself if it is a lone BEGIN it
// may hold back. It reports whether it did.
func (s *Session) deferBegin() (bool, error) {
	if s.l.mode != config.PoolTransaction || len(s.req) < 6 || s.req[0] != 'Q' ||
		int(binary.BigEndian.Uint32(s.req[1:5]))+1 != len(s.req) {
		return false, nil
	}
	cls := s.classifyQuery(s.req[5:])
	if cls.Kind != parser.TxnBegin || cls.MultiStatement || cls.ParseError != nil ||
		cls.Hint != parser.HintNone || cls.HintErr != nil {
		return false, nil
	}
	// A hot standby refuses these at BEGIN, which a hint may send there;
	// a BEGIN held back must not fail, or the statements sent behind it
	// would run outside any transaction.
	if cls.TxnIsolation == "serializable" || cls.TxnReadOnly == parser.ReadWrite {
		return false, nil
	}
	tag := "BEGIN"
	if cls.TxnStart {
		tag = "START TRANSACTION"
	}
	s.mu.Lock()
	if s.lease != nil || s.txStatus != 'I' || len(s.pending) > 0 || s.openBatch || s.draining || s.begin != nil {
		s.mu.Unlock()
		return false, nil
	}
	s.begin, s.begins = append(s.begin, s.req...), 1
	s.txStatus = 'T'
	if s.routed() {
		s.rs.BeginDeferred(cls)
	}
	s.mu.Unlock()
	s.srv.metrics.beginsDeferred.Inc()
	s.idleDeadline('T')
	return true, s.c.SendAll(&pgproto3.CommandComplete{CommandTag: []byte(tag)}, &pgproto3.ReadyForQuery{TxStatus: 'T'})
}

// endEmpty answers a lone COMMIT or ROLLBACK that follows a held-back
// BEGIN at once: the transaction holds nothing, so no server need see
// either. It reports whether it did.
func (s *Session) endEmpty() (bool, error) {
	// s.begin and s.begins are written only on the session goroutine, this
	// one, so the common case (nothing held) costs no lock.
	if s.begins != 1 || len(s.req) < 6 || s.req[0] != 'Q' || int(binary.BigEndian.Uint32(s.req[1:5]))+1 != len(s.req) {
		return false, nil
	}
	cls := s.classifyQuery(s.req[5:])
	if (cls.Kind != parser.TxnCommit && cls.Kind != parser.TxnRollback) || cls.TxnChain || cls.MultiStatement ||
		cls.ParseError != nil || cls.Hint != parser.HintNone || cls.HintErr != nil {
		return false, nil
	}
	tag := "COMMIT"
	if cls.Kind == parser.TxnRollback {
		tag = "ROLLBACK"
	}
	s.mu.Lock()
	// begins > 1: the transaction failed (failBegin); a server answers
	// what follows, as for any failed transaction.
	if s.begins != 1 || s.txStatus != 'T' || s.lease != nil || len(s.pending) > 0 || s.openBatch {
		s.mu.Unlock()
		return false, nil
	}
	s.begin, s.begins = nil, 0
	s.txStatus = 'I'
	if s.routed() {
		s.rs.DeferredEnded()
	}
	draining := s.draining
	s.mu.Unlock()
	s.idleDeadline('I')
	err := s.c.SendAll(&pgproto3.CommandComplete{CommandTag: []byte(tag)}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if draining {
		// The safe point a shutdown or a reload waited for.
		s.kill(s.drainReason())
	}
	return true, err
}

// errBeginRefused is why a server connection is given up whose server
// refused a held-back BEGIN.
var errBeginRefused = errors.New("the server refused a BEGIN the proxy held back")

// takeBegin hands over a held-back BEGIN (and the failing statement behind
// it, if any) and how many queries it holds, for the request being built.
// s.mu is held.
func (s *Session) takeBegin() ([]byte, int) {
	begin, n := s.begin, s.begins
	s.begin, s.begins = nil, 0
	return begin, n
}

// failBegin records that the request meant to open a held-back transaction
// was refused before any server saw it. s.mu is held.
func (s *Session) failBegin() {
	if s.begin == nil || s.txStatus != 'T' {
		return
	}
	s.begin = appendQuery(s.begin, refusedQuery)
	s.begins++
	s.txStatus = 'E'
}
