package proxy

import (
	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

// A session's sequence values, which currval and lastval return, live on
// the server connection that ran its last nextval or setval. In
// transaction mode the client's next transaction may run on another
// connection, or on that one after another client's nextval: there
// currval and lastval would answer with another client's values.
//
// So each server connection carries a stamp that changes whenever a
// statement that may set sequence values runs there, for any client, and
// each session keeps the stamp its own last such statement left. A
// statement that reads values set before it runs only where the two
// stamps are equal: the same connection, untouched since. Stamps come
// from one clock per Server, so equal stamps mean the same connection.
// Both are 0 before anything was set, and then PostgreSQL answers as it
// would have answered the client alone.

// sequenceConn is the idle connection a new lease for cls should take,
// if any: the one holding the client's sequence values, when cls reads
// them and goes to that connection's pool. Other clients' reads there
// leave the values alone, so it often still has them. Without routing
// the request is classified here, only for a client that has set some.
func (s *Session) sequenceConn(cls *parser.Classification, p *pool.Pool) *pool.Conn {
	if s.seqConn == nil || s.seqConn.Pool() != p || s.l.mode == config.PoolSession {
		return nil
	}
	if cls == nil {
		cls = s.requestClass()
	}
	if cls.Sequences&parser.SeqReadsPrior == 0 {
		return nil
	}
	return s.seqConn
}

// sequencesHere checks a statement about to run on st, and stamps st and
// the session when the statement may set sequence values. It returns the
// error the client gets in place of running it.
func (s *Session) sequencesHere(st *serverState, class *parser.Classification) *pgerr.Error {
	if class == nil || class.Sequences == 0 || s.l.mode == config.PoolSession {
		return nil
	}
	if class.Sequences&parser.SeqReadsPrior != 0 && st.seqStamp != s.seqStamp {
		s.srv.metrics.seqRefused.Inc()
		s.srv.log.Debug("refused currval/lastval away from the client's sequence values", "user", s.l.user.Name)
		return pgerr.New(pgerr.ObjectNotInPrerequisiteState,
			"this session's sequence values are not on this server connection").
			WithDetail("In transaction pooling each transaction may run on another server connection, where currval and lastval would return another client's values.").
			WithHint("Call currval or lastval in the transaction that called nextval, use INSERT ... RETURNING, or use session pooling.")
	}
	if class.Sequences&parser.SeqMaySet != 0 {
		s.stampSequences(st)
	}
	return nil
}

// stampSequences records that what runs next on st may set sequence
// values: a FunctionCall, say, whose function (named by OID) may be
// nextval.
func (s *Session) stampSequences(st *serverState) {
	if s.l.mode == config.PoolSession {
		return
	}
	st.seqStamp = s.srv.seqClock.Add(1)
	s.seqStamp, s.seqConn = st.seqStamp, st.conn
}
