package proxy

import (
	"bytes"
	"strings"

	"github.com/ai-ninja/pgninja/parser"
)

// reportedSettings are the settings PostgreSQL reports with
// ParameterStatus whenever they change, that a client may change. Their
// reports catch a change the parser cannot see: set_config inside a
// function, a function's own SET clause left in place by an error, and
// the like. Role and authorization changes pin instead.
var reportedSettings = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true,
	"intervalstyle": true, "timezone": true, "standard_conforming_strings": true,
	"default_transaction_read_only": true, "search_path": true,
}

// observeParam notes a ParameterStatus the server sent in answer to the
// client's request. The reported value is what the setting now is, however
// it changed, so it goes with the request's SETs, after them, and counts
// under the same rule: kept once committed, dropped with a rollback (which
// reports the old value again anyway).
func (s *Session) observeParam(body []byte) {
	name, rest, ok := bytes.Cut(body, []byte{0})
	if !ok {
		return
	}
	value, _, ok := bytes.Cut(rest, []byte{0})
	if !ok {
		return
	}
	lname := strings.ToLower(string(name))
	if !reportedSettings[lname] {
		return
	}
	s.mu.Lock()
	s.observed = append(s.observed, parser.SetParam{Name: lname, Stmt: startupSQL(lname, string(value))})
	s.mu.Unlock()
}
