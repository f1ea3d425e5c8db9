package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	osuser "os/user"
	"strconv"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/hba"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/rawconn"
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
	_, c.TLS = nc.(*tls.Conn)
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.Addr, _ = netip.AddrFromSlice(a.IP)
		c.Addr = c.Addr.Unmap()
	} else {
		c.Local = true
	}
	rule, ok := st.hba.Match(c)
	switch {
	case !ok:
		return "", hbaRefusal("no pg_hba.conf entry for", c)
	case rule.Method == hba.MethodReject:
		return "", hbaRefusal("pg_hba.conf rejects connection for", c)
	case rule.Method == hba.MethodPeer:
		if err := checkPeer(nc, user); err != nil {
			return "", err
		}
		// The kernel vouched for the client: no password exchange.
		return auth.MethodTrust, nil
	default:
		if rule.ClientCert != "" {
			if err := checkClientCert(nc, user, rule); err != nil {
				return "", err
			}
		}
		if rule.Method == hba.MethodCert {
			return auth.MethodTrust, nil // the certificate was the proof
		}
		return rule.Method, nil
	}
}

// hbaRefusal refuses c in PostgreSQL's words: what, then the host, user,
// database and encryption.
func hbaRefusal(what string, c hba.Client) error {
	host, encryption := "[local]", "no encryption"
	if !c.Local {
		host = c.Addr.String()
	}
	if c.TLS {
		encryption = "SSL encryption"
	}
	return pgerr.Wrap(errHBARefused, pgerr.SeverityFatal, pgerr.InvalidAuthorization,
		"%s host %q, user %q, database %q, %s", what, host, c.User, c.Database, encryption)
}

// checkPeer is peer authentication: the operating system user running the
// client's end of the unix socket must have the name the client logs in
// as (no ident map), as PostgreSQL's peer method checks.
func checkPeer(nc net.Conn, user string) error {
	failed := func(detail string) error {
		return pgerr.Wrap(errPeerFailed, pgerr.SeverityFatal, pgerr.InvalidAuthorization,
			"Peer authentication failed for user %q", user).WithDetail(detail)
	}
	uid, ok := rawconn.PeerUID(nc)
	if !ok {
		return failed("The kernel did not give the client's credentials.")
	}
	u, err := osuser.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return failed(fmt.Sprintf("Could not look up local user ID %d: %v.", uid, err))
	}
	if u.Username != user {
		return failed(fmt.Sprintf("Provided user name (%s) and authenticated user name (%s) do not match.", user, u.Username))
	}
	return nil
}

// checkClientCert is the cert method and the clientcert option: the
// client presented a certificate, which the TLS handshake verified
// against tls.client_ca_file, and under verify-full its common name is
// the user it logs in as (no ident map), as PostgreSQL checks them.
func checkClientCert(nc net.Conn, user string, rule hba.Rule) error {
	fail := func(format string, args ...any) *pgerr.Error {
		return pgerr.Wrap(errCertFailed, pgerr.SeverityFatal, pgerr.InvalidAuthorization, format, args...)
	}
	var certs []*x509.Certificate
	if tc, ok := nc.(*tls.Conn); ok {
		certs = tc.ConnectionState().PeerCertificates
	}
	if len(certs) == 0 {
		return fail("connection requires a valid client certificate")
	}
	if rule.ClientCert != hba.ClientCertFull {
		return nil
	}
	if cn := certs[0].Subject.CommonName; cn != user {
		what := "certificate validation (clientcert=verify-full)"
		if rule.Method == hba.MethodCert {
			what = "certificate authentication"
		}
		return fail("%s failed for user %q", what, user).
			WithDetail(fmt.Sprintf("Provided user name (%s) and authenticated user name (%s) do not match.", user, cn))
	}
	return nil
}

// errHBARefused marks a login auth.hba_file refused, for the log and the
// logins metric.
var errHBARefused = errors.New("refused by auth.hba_file")

// errPeerFailed and errCertFailed mark a failed peer or certificate
// authentication, likewise.
var (
	errPeerFailed = errors.New("peer authentication failed")
	errCertFailed = errors.New("certificate authentication failed")
)

// showHBA lists the rules in force, as PostgreSQL's pg_hba_file_rules
// view does: none without auth.hba_file.
func showHBA(s *Session) *consoleTable {
	t := newTable([]string{"line_number"}, "line_number", "type", "database", "user_name", "address", "auth_method", "options")
	if rules := s.srv.settings.Load().hba; rules != nil {
		for _, r := range rules.Rules {
			t.add(r.Line, r.TypeName, r.DatabaseText(), r.UserText(), r.AddressText(), r.Method, r.OptionsText())
		}
	}
	return t
}
