package proxy

// A plan follows one extended-protocol batch through the server's answer,
// message by message, when the proxy has changed the batch: it injected
// Parse or Close messages whose answers the client must not see, or it
// needs to learn which of the batch's Parses succeeded so it knows which
// prepared statements the server connection now holds. Batches the proxy
// did not touch have no plan and are forwarded until ReadyForQuery.
//
// A batch the client sends in parts, each ended by Flush, keeps one plan
// from its first part to its Sync: the server answers the parts as one
// stream, and an error in one part skips messages of the next.

import "sync"

type opKind uint8

const (
	opParse opKind = iota
	opBind
	opDescribe
	opExecute
	opClose
	opSync
	opQuery
	opFunc
)

// op is one message of the batch, in the order sent.
type op struct {
	kind opKind
	// swallow: the proxy injected this message; its completion message
	// is not forwarded.
	swallow bool
	// stmt is the server-side statement a Parse creates, confirmed in st
	// when its ParseComplete arrives and dropped if it fails or is
	// skipped.
	stmt string
	st   *serverState
	// cs is the client's named statement a Parse makes; it is marked
	// failed when the Parse fails or is skipped, since PostgreSQL then has
	// no statement of that name.
	cs *clientStmt
	// refusal, on a Parse or Query the proxy made to fail, is the
	// ErrorResponse body the client gets instead of the server's.
	refusal []byte
	// prep is the client's SQL PREPARE a Query makes, under prepName on
	// st; if the Query fails, PostgreSQL has no statement of that name.
	prep     *sqlStmt
	prepName string
	// shapeOf, on a Describe of a client's named statement, is that
	// statement: the answer is the result shape the client is shown.
	shapeOf *clientStmt
}

type plan struct {
	// mu guards the plan once published: the relay follows it while the
	// session goroutine extends it with the batch's next part.
	mu  sync.Mutex
	ops []op
	i   int
	// skipping: an error was answered and the Sync the server skips to
	// is still to come.
	skipping bool
	// first backs ops for a typical batch, so that building one takes no
	// allocation beyond the plan's own.
	first [typicalOps]op
}

// typicalOps is how many ops a plan holds without growing: a driver's
// Parse, Bind, Describe, Execute and Sync.
const typicalOps = 5

// reuse readies a plan for another request. Only a plan nothing refers
// to any more may be reused: one queue found unneeded (see
// Session.sparePlan).
func (p *plan) reuse() *plan {
	clear(p.first[:])
	p.ops, p.i, p.skipping = p.first[:0], 0, false
	return p
}

// add appends an op to a plan still being built.
func (p *plan) add(o op) { p.ops = append(p.ops, o) }

// extend appends the next part of the batch to a published plan.
func (p *plan) extend(more *plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops = append(p.ops, more.ops...)
	if p.skipping {
		p.skip()
	}
}

// skip passes over the ops the server skips after an error, up to the
// next Sync: Parses that never ran did not create their statements.
func (p *plan) skip() {
	for ; p.i < len(p.ops) && p.ops[p.i].kind != opSync; p.i++ {
		s := p.ops[p.i]
		if s.stmt != "" {
			s.st.drop(s.stmt)
		}
		if s.cs != nil {
			s.cs.failed.Store(true)
		}
		if s.prep != nil {
			// A PREPARE that failed or never ran made no statement.
			s.prep.failed.Store(true)
			s.st.sqlFailed(s.prepName, s.prep.hash)
		}
	}
	p.skipping = p.i == len(p.ops)
}

// needed reports whether the batch must be followed message by message.
func (p *plan) needed() bool {
	for _, o := range p.ops {
		if o.swallow || o.stmt != "" || o.refusal != nil || o.cs != nil || o.prep != nil || o.shapeOf != nil {
			return true
		}
	}
	return false
}

func (p *plan) head() *op {
	if p.i < len(p.ops) {
		return &p.ops[p.i]
	}
	return nil
}

// response accounts for one server message and says whether the client
// must not see it, or must see refusal in its place; for the answer to a
// Describe of a client's statement, it names that statement (shapeOf).
func (p *plan) response(typ byte) (swallow bool, refusal []byte, shapeOf *clientStmt) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.head()
	if o == nil {
		return false, nil, nil
	}
	if o.kind == opQuery || o.kind == opFunc {
		// A simple query or function call answers with any number of
		// messages up to its ReadyForQuery; a query the proxy refused
		// answers with its one error.
		if typ == 'E' {
			if o.prep != nil {
				o.prep.failed.Store(true)
				o.st.sqlFailed(o.prepName, o.prep.hash)
			}
			return false, o.refusal, nil
		}
		return false, nil, nil
	}
	switch typ {
	case '1': // ParseComplete
		if o.kind == opParse {
			if o.stmt != "" {
				o.st.confirm(o.stmt)
			}
			p.i++
			return o.swallow, nil, nil
		}
	case '2': // BindComplete
		if o.kind == opBind {
			p.i++
		}
	case '3': // CloseComplete
		if o.kind == opClose {
			p.i++
			return o.swallow, nil, nil
		}
	case 'T', 'n': // RowDescription, NoData end a Describe
		if o.kind == opDescribe {
			shapeOf = o.shapeOf
			p.i++
		}
	case 'C', 'I', 's': // CommandComplete, EmptyQuery, PortalSuspended
		if o.kind == opExecute {
			p.i++
		}
	case 'E':
		refusal = o.refusal
		p.skip()
	case 'Z':
		p.i = len(p.ops)
		p.skipping = false
	}
	return false, refusal, shapeOf
}

// executes reports whether the batch runs a statement.
func (p *plan) executes() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.ops {
		if o.kind == opExecute {
			return true
		}
	}
	return false
}

// executedSinceSync reports whether the plan being built runs a statement
// after its last Sync: one more before the next Sync then runs in the
// same implicit transaction block.
func (p *plan) executedSinceSync() bool {
	for i := len(p.ops) - 1; i >= 0 && p.ops[i].kind != opSync; i-- {
		if p.ops[i].kind == opExecute {
			return true
		}
	}
	return false
}
