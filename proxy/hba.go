package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/hba"
	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// authMethod is how the client on nc, logging in as user to database db
// (as it named them), authenticates: by auth.hba_file's first matching
// rule when there is a file, else by the user's or auth.type's method. A
// rule that rejects, or no rule, refuses it in PostgreSQL's words and
// SQLSTATE, so that clients and scripts that know those recognise them.
func (st *settings) authMethod(nc net.Conn, db, user string, u config.User) (string, error) {
	if st.hba == nil {
		return st.method(u), nil
	}
	c := hba.Client{Database: db, User: user}
	host := "[local]"
	_, c.TLS = nc.(*tls.Conn)
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.Addr, _ = netip.AddrFromSlice(a.IP)
		c.Addr = c.Addr.Unmap()
		host = c.Addr.String()
	} else {
		c.Local = true
	}
	encryption := "no encryption"
	if c.TLS {
		encryption = "SSL encryption"
	}
	var refusal *pgerr.Error
	rule, ok := st.hba.Match(c)
	switch {
	case !ok:
		refusal = pgerr.Fatal(pgerr.InvalidAuthorization, "no pg_hba.conf entry for host %q, user %q, database %q, %s",
			host, user, db, encryption)
	case rule.Method == hba.MethodReject:
		refusal = pgerr.Fatal(pgerr.InvalidAuthorization, "pg_hba.conf rejects connection for host %q, user %q, database %q, %s",
			host, user, db, encryption)
	default:
		return rule.Method, nil
	}
	refusal.Cause = errHBARefused
	return "", refusal
}

// errHBARefused marks a login auth.hba_file refused, for the log and the
// logins metric.
var errHBARefused = errors.New("refused by auth.hba_file")
