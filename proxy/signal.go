package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/jackc/pgx/v5/pgproto3"
)

// pg_terminate_backend and pg_cancel_backend of a process ID the proxy
// gave a client (outside session mode there is no one backend to name) are
// carried out by the proxy, as PostgreSQL would carry them out for a
// backend: terminate ends the client with 57P01, abandoning a query it has
// running, and cancel cancels its request. Drivers and pools kill stuck
// connections so, and test that they notice. The IDs lie above Linux's
// highest process ID (clientPIDFloor), so none can name a real backend and
// be taken from the server.
//
// Only a statement that does nothing else is answered here (see
// parser.ParseSignal), as a simple query or as one extended-protocol
// batch outside session mode; the rest goes to the server as before.

// clientPIDFloor is PID_MAX_LIMIT on 64-bit Linux: no process ID reaches
// it. The process IDs the proxy invents lie above.
const clientPIDFloor = 1 << 22

// signalRequest is a collected request that only signals clients.
type signalRequest struct {
	sig      *parser.Signal
	query    string
	parse    []byte // the unnamed Parse's body, when the batch has one
	types    []byte // the statement's declared parameter types, raw
	describe []byte // 'S' or 'P' per Describe, in order with the rest
	bind     *pgproto3.Bind
	simple   bool
}

// signalLocally answers the collected request itself if it only signals
// clients of this proxy. It reports whether it did. Where PostgreSQL would
// fail the statement inside a transaction, the request goes to the server
// instead, which answers false: the proxy cannot fail the transaction the
// server holds.
func (s *Session) signalLocally() (bool, error) {
	r, ok := s.signalRequest()
	if !ok {
		return false, nil
	}
	pids, ok := r.pids()
	if !ok {
		return false, nil
	}
	for _, pid := range pids {
		if pid < clientPIDFloor || pid > 1<<31-1 {
			return false, nil // a server's process: the server answers
		}
	}
	s.mu.Lock()
	status := s.txStatus
	busy := len(s.pending) > 0 || s.openBatch
	s.mu.Unlock()
	if busy || status == 'E' {
		return false, nil
	}
	targets := make([][]*Session, len(pids))
	var self bool
	for i, pid := range pids {
		targets[i] = s.srv.keys.sessionsOf(uint32(pid))
		for _, t := range targets[i] {
			self = self || t == s
			if denied := s.signalDenied(t, r.sig.Terminate); denied != nil {
				if status != 'I' {
					// A refusal here would fail the client's
					// transaction, which the server holds open.
					return false, nil
				}
				s.adoptParse(r)
				return true, s.answerSignal(r, status, nil, nil, denied)
			}
		}
	}
	if self && !r.sig.Terminate && status != 'I' {
		return false, nil // as above: the cancel fails the transaction
	}
	found := make([]bool, len(pids))
	for i, list := range targets {
		for _, t := range list {
			found[i] = true
			switch {
			case t == s:
			case r.sig.Terminate:
				s.srv.log.Info("pg_terminate_backend: ending a client", "pid", pids[i], "by", s.l.user.Name)
				t.terminate(pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command"))
			default:
				t.cancel()
			}
		}
	}
	if self && r.sig.Terminate {
		// As in PostgreSQL, the statement dies with its backend.
		s.terminate(pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command"))
		return true, nil
	}
	s.adoptParse(r)
	if self {
		// And is cancelled with its backend's query, once its rows are
		// out.
		return true, s.answerSignal(r, status, pids, found, pgerr.New(pgerr.QueryCanceled, "canceling statement due to user request"))
	}
	return true, s.answerSignal(r, status, pids, found, nil)
}

// adoptParse makes the batch's Parse, answered here, the client's unnamed
// statement, as it is in PostgreSQL even when the statement then fails.
func (s *Session) adoptParse(r *signalRequest) {
	if r.parse != nil {
		name, query, types, _ := parseMsg(r.parse)
		s.unnamed = newClientStmt(name, query, types, s.epoch.Load(), s.params.parseHash.Load())
	}
}

// signalDenied applies PostgreSQL's rule, as far as the proxy can tell
// it, and words the refusal as the server would: only a superuser may
// signal a superuser's client, and others only the clients that log in to
// the server as their own role.
func (s *Session) signalDenied(t *Session, terminate bool) *pgerr.Error {
	t.mu.Lock()
	role, super := t.role, t.superuser
	t.mu.Unlock()
	if s.superuser || (!super && role == s.role) {
		return nil
	}
	verb, whose, plural := "cancel query", "whose query is being canceled", "cancel queries"
	if terminate {
		verb, whose, plural = "terminate process", "whose process is being terminated", "terminate processes"
	}
	if s.serverMajor < 16 {
		if super {
			return pgerr.New(pgerr.InsufficientPrivilege, "must be a superuser to %s", strings.Replace(verb, " ", " superuser ", 1))
		}
		return pgerr.New(pgerr.InsufficientPrivilege, "must be a member of the role %s or member of pg_signal_backend", whose)
	}
	err := pgerr.New(pgerr.InsufficientPrivilege, "permission denied to %s", verb)
	if super {
		return err.WithDetail(fmt.Sprintf("Only roles with the SUPERUSER attribute may %s of roles with the SUPERUSER attribute.", plural))
	}
	return err.WithDetail(fmt.Sprintf("Only roles with privileges of the role %s or with privileges of the \"pg_signal_backend\" role may %s.",
		whose, strings.Replace(verb, " ", " this ", 1)))
}

// signalRequest recognizes the collected request: one Query, or (outside
// session mode, where the proxy tracks the client's unnamed and named
// statements) Parse "", Describe, Bind to portal "", Execute, Sync.
func (s *Session) signalRequest() (*signalRequest, bool) {
	req := s.req
	if len(req) < 6 || !s.mayNameSignal(req) {
		return nil, false
	}
	r := &signalRequest{}
	if req[0] == 'Q' {
		if int(binary.BigEndian.Uint32(req[1:5]))+1 != len(req) || req[len(req)-1] != 0 {
			return nil, false
		}
		r.simple, r.query = true, string(req[5:len(req)-1])
	} else if !s.extendedSignal(r, req) {
		return nil, false
	}
	sig, ok := parser.ParseSignal(r.query)
	r.sig = sig
	return r, ok
}

// mayNameSignal is the cheap look every request pays: does it mention a
// *_backend function, in the text of its Query or Parse, or in that of the
// statement its first message binds.
func (s *Session) mayNameSignal(req []byte) bool {
	if req[0] != 'B' {
		return mentionsBackend(req, bytes.IndexByte)
	}
	// Only outside session mode are statements tracked (extendedSignal).
	n := int(binary.BigEndian.Uint32(req[1:5])) + 1
	if s.l.mode == config.PoolSession || n > len(req) {
		return false
	}
	// The Bind's portal, then its statement: names read in place, so
	// that a prepared statement's Bind allocates nothing here.
	body := req[5:n]
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		return false
	}
	stmt := body[i+1:]
	j := bytes.IndexByte(stmt, 0)
	switch {
	case j < 0:
		return false
	case j == 0:
		return s.unnamed != nil && s.unnamed.signals
	}
	cs := s.stmts[string(stmt[:j])]
	return cs != nil && cs.signals
}

// signalMaxLen bounds the requests looked at: a statement that only
// signals is short, and the look should cost a large request nothing.
const signalMaxLen = 4096

// mentionsBackend looks for "_backend" in any case, in a text short
// enough to be a signal; index is bytes.IndexByte or strings.IndexByte,
// which skip to each underscore quickly. Every request pays this.
func mentionsBackend[T string | []byte](b T, index func(T, byte) int) bool {
	const word = "backend"
	if len(b) > signalMaxLen {
		return false
	}
	for {
		i := index(b, '_')
		if i < 0 || len(b)-i-1 < len(word) {
			return false
		}
		b = b[i+1:]
		match := true
		for k := range len(word) {
			// Or-ing 0x20 lower-cases a letter and makes no other byte
			// one.
			if b[k]|0x20 != word[k] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
}

func (s *Session) extendedSignal(r *signalRequest, req []byte) bool {
	if s.l.mode == config.PoolSession {
		return false
	}
	var executed, synced bool
	for typ, body := range wire.Bodies(req) {
		switch {
		case synced:
			return false
		case typ == 'P' && r.parse == nil && r.bind == nil && len(body) > 0 && body[0] == 0:
			_, query, types, ok := parseMsg(body)
			if !ok {
				return false
			}
			r.parse, r.query, r.types = body, query, types
		case typ == 'D' && len(body) == 2 && body[1] == 0 && (body[0] == 'S' || body[0] == 'P') && !executed:
			if (body[0] == 'S' && (r.parse == nil || r.bind != nil)) || (body[0] == 'P' && r.bind == nil) {
				return false
			}
			r.describe = append(r.describe, body[0])
		case typ == 'B' && r.bind == nil && len(body) > 1 && body[0] == 0:
			stmt, _, ok := nameField(body[1:])
			if !ok {
				return false
			}
			switch {
			case r.parse != nil && stmt == "":
			case r.parse != nil:
				return false
			case stmt == "" && s.unnamed != nil:
				r.query, r.types = s.unnamed.query, s.unnamed.types()
			case stmt != "" && s.stmt(stmt) != nil:
				r.query, r.types = s.stmt(stmt).query, s.stmt(stmt).types()
			default:
				return false
			}
			r.bind = new(pgproto3.Bind)
			if r.bind.Decode(body) != nil {
				return false
			}
		case typ == 'E' && r.bind != nil && !executed && bytes.Equal(body, []byte{0, 0, 0, 0, 0}):
			executed = true
		case typ == 'S' && executed:
			synced = true
		default:
			return false
		}
	}
	return synced
}

// pids returns the process IDs the request names, decoding the Bind's
// parameter where the statement takes them from one. A parameter that
// PostgreSQL would take differently (declared of another type, or binary
// of another size) is left to the server.
func (r *signalRequest) pids() ([]int64, bool) {
	if r.simple {
		// A parameter in a simple query is the server's error.
		return r.sig.PIDs, r.sig.Param == 0
	}
	if !r.bindFits() {
		return nil, false
	}
	if r.sig.Param == 0 {
		return r.sig.PIDs, true
	}
	i := r.sig.Param - 1
	if r.bind.Parameters[i] == nil {
		return nil, false
	}
	value, format := r.bind.Parameters[i], int16(0)
	switch codes := r.bind.ParameterFormatCodes; {
	case len(codes) == 1:
		format = codes[0]
	case len(codes) > i:
		format = codes[i]
	}
	oid := declaredType(r.types, i)
	if r.sig.Array {
		if oid != 0 && oid != int4ArrayOID && oid != int2ArrayOID {
			return nil, false
		}
		return intArray(value, format)
	}
	switch {
	case oid == 0 || oid == int4OID:
		oid = int4OID
	case oid != int2OID:
		return nil, false
	}
	v, ok := intValue(value, format, oid)
	return []int64{v}, ok
}

// bindFits: the Bind supplies what the statement takes, in formats
// PostgreSQL knows, for its one result column; otherwise the server
// answers with its own error.
func (r *signalRequest) bindFits() bool {
	b := r.bind
	n := len(paramOIDs(r))
	ok := func(codes []int16, want int) bool {
		for _, c := range codes {
			if c != 0 && c != 1 {
				return false
			}
		}
		return len(codes) <= 1 || len(codes) == want
	}
	return len(b.Parameters) == n && ok(b.ParameterFormatCodes, n) && ok(b.ResultFormatCodes, 1)
}

const (
	int2OID      = 21
	int4OID      = 23
	int2ArrayOID = 1005
	int4ArrayOID = 1007
	boolOID      = 16
)

// declaredType is the type a Parse's raw parameter types give parameter
// i, 0 when it leaves it to the server.
func declaredType(types []byte, i int) uint32 {
	if len(types) < 2 || int(binary.BigEndian.Uint16(types)) <= i || len(types) < 6+4*i {
		return 0
	}
	return binary.BigEndian.Uint32(types[2+4*i:])
}

// intValue decodes an integer parameter of type oid (int2 or int4), text
// or binary.
func intValue(b []byte, format int16, oid uint32) (int64, bool) {
	if format == 0 {
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 32)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	switch {
	case oid == int2OID && len(b) == 2:
		return int64(int16(binary.BigEndian.Uint16(b))), true
	case oid == int4OID && len(b) == 4:
		return int64(int32(binary.BigEndian.Uint32(b))), true
	}
	return 0, false
}

// intArray decodes a one-dimensional int2 or int4 array without NULLs,
// text ({1,2,3}) or binary.
func intArray(b []byte, format int16) ([]int64, bool) {
	var out []int64
	if format == 0 {
		t := strings.TrimSpace(string(b))
		if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
			return nil, false
		}
		if t = strings.TrimSpace(t[1 : len(t)-1]); t == "" {
			return out, true
		}
		for _, e := range strings.Split(t, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(e), 10, 32)
			if err != nil {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	if len(b) < 12 {
		return nil, false
	}
	ndim, hasNull, elem := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	if ndim == 0 {
		return out, true
	}
	if ndim != 1 || hasNull != 0 || (elem != int4OID && elem != int2OID) || len(b) < 20 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	b = b[20:]
	for range n {
		if len(b) < 4 {
			return nil, false
		}
		size := int32(binary.BigEndian.Uint32(b))
		if size < 0 || int(size) > len(b)-4 {
			return nil, false
		}
		v, ok := intValue(b[4:4+size], 1, elem)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		b = b[4+size:]
	}
	if len(b) != 0 {
		return nil, false
	}
	return out, true
}

// answerSignal writes what PostgreSQL would: one boolean row per process
// ID, false with a warning for one that names no client, and then
// CommandComplete, or fail after those rows.
func (s *Session) answerSignal(r *signalRequest, status byte, pids []int64, found []bool, fail *pgerr.Error) error {
	var out []byte
	resultFormat := int16(0)
	if !r.simple {
		if codes := r.bind.ResultFormatCodes; len(codes) > 0 {
			resultFormat = codes[0]
		}
		if r.parse != nil {
			out = wire.Append(out, &pgproto3.ParseComplete{})
		}
	}
	rowDesc := func(format int16) *pgproto3.RowDescription {
		return &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{
			Name: []byte(r.sig.Column), DataTypeOID: boolOID, DataTypeSize: 1, TypeModifier: -1, Format: format}}}
	}
	for _, d := range r.describe {
		if d == 'S' {
			out = wire.Append(out, &pgproto3.ParameterDescription{ParameterOIDs: paramOIDs(r)})
			out = wire.Append(out, rowDesc(0))
		}
	}
	if r.simple {
		out = wire.Append(out, rowDesc(0))
	} else {
		out = wire.Append(out, &pgproto3.BindComplete{})
		for _, d := range r.describe {
			if d == 'P' {
				out = wire.Append(out, rowDesc(resultFormat))
			}
		}
	}
	for i, pid := range pids {
		if !found[i] {
			out = wire.Append(out, &pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING",
				Code: "01000", Message: fmt.Sprintf("PID %d is not a PostgreSQL backend process", pid)})
		}
		out = wire.Append(out, &pgproto3.DataRow{Values: [][]byte{boolValue(found[i], resultFormat)}})
	}
	if fail != nil {
		out = wire.Append(out, pgerr.Response(fail))
	} else {
		out = wire.Append(out, &pgproto3.CommandComplete{CommandTag: fmt.Appendf(nil, "SELECT %d", len(pids))})
	}
	out = wire.Append(out, &pgproto3.ReadyForQuery{TxStatus: status})
	s.idleDeadline(status)
	return s.c.SendRaw(out)
}

// paramOIDs are the statement's parameter types, as PostgreSQL infers
// them where the Parse leaves them open.
func paramOIDs(r *signalRequest) []uint32 {
	n := r.sig.Param
	if len(r.types) >= 2 {
		n = max(n, int(binary.BigEndian.Uint16(r.types)))
	}
	oids := make([]uint32, n)
	for i := range oids {
		oids[i] = declaredType(r.types, i)
		if oids[i] == 0 {
			oids[i] = int4OID
			if r.sig.Array && i == r.sig.Param-1 {
				oids[i] = int4ArrayOID
			}
		}
	}
	return oids
}

func boolValue(v bool, format int16) []byte {
	switch {
	case format == 1 && v:
		return []byte{1}
	case format == 1:
		return []byte{0}
	case v:
		return []byte("t")
	}
	return []byte("f")
}
