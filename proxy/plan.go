package proxy

// A plan follows one extended-protocol batch through the server's answer,
// message by message, when the proxy has changed the batch: it injected
// Parse or Close messages whose answers the client must not see, or it
// needs to learn which of the batch's Parses succeeded so it knows which
// prepared statements the server connection now holds. Batches the proxy
// did not touch have no plan and are forwarded until ReadyForQuery.

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
}

type plan struct {
	ops []op
	i   int
}

func (p *plan) add(o op) { p.ops = append(p.ops, o) }

// needed reports whether the batch must be followed message by message.
func (p *plan) needed() bool {
	for _, o := range p.ops {
		if o.swallow || o.stmt != "" {
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
// must not see it.
func (p *plan) response(typ byte) (swallow bool) {
	o := p.head()
	if o == nil {
		return false
	}
	if o.kind == opQuery || o.kind == opFunc {
		// A simple query or function call answers with any number of
		// messages up to its ReadyForQuery.
		return false
	}
	switch typ {
	case '1': // ParseComplete
		if o.kind == opParse {
			if o.stmt != "" {
				o.st.confirm(o.stmt)
			}
			p.i++
			return o.swallow
		}
	case '2': // BindComplete
		if o.kind == opBind {
			p.i++
		}
	case '3': // CloseComplete
		if o.kind == opClose {
			p.i++
			return o.swallow
		}
	case 'T', 'n': // RowDescription, NoData end a Describe
		if o.kind == opDescribe {
			p.i++
		}
	case 'C', 'I', 's': // CommandComplete, EmptyQuery, PortalSuspended
		if o.kind == opExecute {
			p.i++
		}
	case 'E':
		// The server skips everything up to the next Sync: Parses that
		// failed or never ran did not create their statements.
		for ; p.i < len(p.ops) && p.ops[p.i].kind != opSync; p.i++ {
			if s := p.ops[p.i]; s.stmt != "" {
				s.st.drop(s.stmt)
			}
		}
	case 'Z':
		p.i = len(p.ops)
	}
	return false
}
