package hba

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Methods a rule may name.
const (
	MethodTrust  = "trust"
	MethodReject = "reject"
	MethodMD5    = "md5"
	MethodSCRAM  = "scram-sha-256"
	// MethodPeer: the operating system user of the process at the other
	// end of the unix socket must be the user the client logs in as.
	MethodPeer = "peer"
	// MethodCert: the client's TLS certificate, verified against the
	// client CAs, must name the user as its common name.
	MethodCert = "cert"
)

// ClientCert options: a verified client certificate is needed besides
// the method (verify-ca), and it must name the user (verify-full).
const (
	ClientCertCA   = "verify-ca"
	ClientCertFull = "verify-full"
)

// ConnType is a rule's first field.
type ConnType int

const (
	Local     ConnType = iota // unix socket
	Host                      // TCP, with or without TLS
	HostSSL                   // TCP with TLS
	HostNoSSL                 // TCP without TLS
	HostGSS                   // TCP with GSSAPI encryption, which a client of the proxy never has
)

var connTypes = map[string]ConnType{
	"local": Local, "host": Host, "hostssl": HostSSL, "hostnossl": HostNoSSL,
	// A proxy that answers GSSENCRequest with 'N' has no GSS-encrypted
	// clients: hostnogssenc is every TCP client, hostgssenc none.
	"hostnogssenc": Host, "hostgssenc": HostGSS,
}

// Rule is one line of the file.
type Rule struct {
	Line int
	Type ConnType
	// TypeName is the type as written (hostnogssenc is a Host).
	TypeName string
	// Databases and Users list names; nil means all.
	Databases []string
	Users     []string
	// SameUser: the database named as the user (sameuser).
	SameUser bool
	// replication: the list named replication connections too, which
	// the proxy refuses before authentication (kept for DatabaseText).
	replication bool
	// Net holds the client addresses; the zero Prefix means all (and local
	// rules have none).
	Net    netip.Prefix
	Method string
	// ClientCert is the clientcert option ("" when none); the cert method
	// implies verify-full.
	ClientCert string
}

// Rules are a file's lines in order.
type Rules struct {
	Name  string
	Rules []Rule
}

// Client is what a rule is matched against.
type Client struct {
	Local    bool // on the unix socket
	TLS      bool
	Addr     netip.Addr // TCP clients
	Database string
	User     string
}

// Load reads the file at path.
func Load(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads rules from r; name is used in error messages.
func Parse(r io.Reader, name string) (*Rules, error) {
	rs := &Rules{Name: name}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		fields, err := splitFields(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if len(fields) == 0 {
			continue
		}
		rule, err := parseRule(fields)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		rule.Line = n
		rs.Rules = append(rs.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return rs, nil
}

// Match returns the first rule for c; none matching is as a reject (and
// PostgreSQL words it apart: see the callers).
func (rs *Rules) Match(c Client) (Rule, bool) {
	for _, r := range rs.Rules {
		if r.matches(c) {
			return r, true
		}
	}
	return Rule{}, false
}

func (r Rule) matches(c Client) bool {
	switch r.Type {
	case Local:
		if !c.Local {
			return false
		}
	case Host:
		if c.Local {
			return false
		}
	case HostSSL:
		if c.Local || !c.TLS {
			return false
		}
	case HostNoSSL:
		if c.Local || c.TLS {
			return false
		}
	default:
		return false
	}
	if r.Type != Local && r.Net.IsValid() && !r.Net.Contains(c.Addr.Unmap()) {
		return false
	}
	switch {
	case r.SameUser:
		if c.Database != c.User {
			return false
		}
	case r.Databases != nil && !slices.Contains(r.Databases, c.Database):
		return false
	}
	return r.Users == nil || slices.Contains(r.Users, c.User)
}

// token is one name of a field's comma-separated list; quoted names are
// never keywords.
type token struct {
	text   string
	quoted bool
}

func (t token) keyword(k string) bool { return !t.quoted && t.text == k }

// blank is PostgreSQL's pg_isblank: a carriage return separates fields
// too, so a file saved with CRLF line ends reads the same.
func blank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// splitFields cuts a line into its fields, each a list of tokens: fields
// are separated by blanks, a list's names by commas (blanks may follow a
// comma), '#' outside quotes starts a comment.
func splitFields(line string) ([][]token, error) {
	var fields [][]token
	var cur []token
	i := 0
	for {
		for i < len(line) && blank(line[i]) {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			break
		}
		var b strings.Builder
		quoted := false
		for i < len(line) {
			ch := line[i]
			if ch == '"' {
				end := strings.IndexByte(line[i+1:], '"')
				if end < 0 {
					return nil, fmt.Errorf("unterminated quoted name")
				}
				b.WriteString(line[i+1 : i+1+end])
				quoted = true
				i += end + 2
				continue
			}
			if blank(ch) || ch == ',' || ch == '#' {
				break
			}
			b.WriteByte(ch)
			i++
		}
		cur = append(cur, token{b.String(), quoted})
		if i < len(line) && line[i] == ',' {
			i++
			continue // the list goes on, after any blanks
		}
		fields = append(fields, cur)
		cur = nil
	}
	if cur != nil {
		return nil, fmt.Errorf("a list ends with a comma")
	}
	return fields, nil
}

func parseRule(fields [][]token) (Rule, error) {
	var r Rule
	one := func(f []token, what string) (token, error) {
		if len(f) != 1 {
			return token{}, fmt.Errorf("%s takes one value, not a list", what)
		}
		return f[0], nil
	}
	t, err := one(fields[0], "the connection type")
	if err != nil {
		return r, err
	}
	ct, ok := connTypes[t.text]
	if !ok || t.quoted {
		return r, fmt.Errorf("unknown connection type %q (local, host, hostssl, hostnossl, hostgssenc, hostnogssenc)", t.text)
	}
	r.Type, r.TypeName = ct, t.text
	want := 5 // type, database, user, address, method
	if ct == Local {
		want = 4
	}
	if len(fields) < want {
		return r, fmt.Errorf("too few fields: want type, database, user,%s method", map[bool]string{true: "", false: " address,"}[ct == Local])
	}
	if err := r.parseDatabases(fields[1]); err != nil {
		return r, err
	}
	if err := r.parseUsers(fields[2]); err != nil {
		return r, err
	}
	rest := fields[3:]
	if ct != Local {
		n, err := parseAddress(rest)
		if err != nil {
			return r, err
		}
		r.Net = n.prefix
		rest = rest[n.fields:]
		if len(rest) == 0 {
			return r, fmt.Errorf("no method")
		}
	}
	m, err := one(rest[0], "the method")
	if err != nil {
		return r, err
	}
	switch m.text {
	case MethodTrust, MethodReject, MethodMD5, MethodSCRAM:
		r.Method = m.text
	case MethodPeer:
		if ct != Local {
			return r, fmt.Errorf("peer authentication is only supported on local sockets")
		}
		r.Method = m.text
	case MethodCert:
		if ct != HostSSL {
			return r, fmt.Errorf("cert authentication is only supported on hostssl connections")
		}
		r.Method, r.ClientCert = m.text, ClientCertFull
	default:
		return r, fmt.Errorf("method %q is not supported here (trust, reject, md5, scram-sha-256, peer, cert)", m.text)
	}
	for _, f := range rest[1:] {
		if err := r.parseOption(f); err != nil {
			return r, err
		}
	}
	return r, nil
}

// parseOption reads one name=value after the method; clientcert is the
// only option taken.
func (r *Rule) parseOption(f []token) error {
	if len(f) != 1 {
		return fmt.Errorf("an option takes one value, not a list")
	}
	name, value, ok := strings.Cut(f[0].text, "=")
	if !ok || name != "clientcert" {
		return fmt.Errorf("option %q is not supported here (clientcert=verify-ca|verify-full)", f[0].text)
	}
	switch {
	case r.Type != HostSSL:
		return fmt.Errorf("clientcert can only be configured for hostssl rows")
	case value != ClientCertCA && value != ClientCertFull:
		return fmt.Errorf("clientcert takes verify-ca or verify-full, not %q", value)
	case r.Method == MethodCert && value != ClientCertFull:
		return fmt.Errorf("clientcert only accepts verify-full when using cert authentication")
	}
	r.ClientCert = value
	return nil
}

func (r *Rule) parseDatabases(f []token) error {
	for _, t := range f {
		switch {
		case t.keyword("all"):
			if len(f) > 1 {
				return fmt.Errorf("database all in a list")
			}
			return nil
		case t.keyword("sameuser"):
			if len(f) > 1 {
				return fmt.Errorf("database sameuser in a list")
			}
			r.SameUser = true
			return nil
		case t.keyword("replication"):
			// Replication connections are refused before authentication,
			// so the keyword matches none here.
			r.replication = true
		case t.keyword("samerole"), t.keyword("samegroup"):
			return fmt.Errorf("database %s needs role membership, which the proxy does not know", t.text)
		case !t.quoted && strings.HasPrefix(t.text, "@"):
			return fmt.Errorf("database lists from files (%s) are not supported", t.text)
		default:
			r.Databases = append(r.Databases, t.text)
		}
	}
	if r.Databases == nil {
		r.Databases = []string{} // replication alone: no database of a client here
	}
	return nil
}

func (r *Rule) parseUsers(f []token) error {
	for _, t := range f {
		switch {
		case t.keyword("all"):
			if len(f) > 1 {
				return fmt.Errorf("user all in a list")
			}
			return nil
		case !t.quoted && strings.HasPrefix(t.text, "+"):
			return fmt.Errorf("user %s is a group, whose members the proxy does not know", t.text)
		case !t.quoted && strings.HasPrefix(t.text, "@"):
			return fmt.Errorf("user lists from files (%s) are not supported", t.text)
		case !t.quoted && strings.HasPrefix(t.text, "/"):
			return fmt.Errorf("user patterns (%s) are not supported", t.text)
		default:
			r.Users = append(r.Users, t.text)
		}
	}
	return nil
}

type address struct {
	prefix netip.Prefix // zero: all
	fields int          // how many fields it took
}

// parseAddress reads all, a CIDR, or an address with its mask in the next
// field.
func parseAddress(fields [][]token) (address, error) {
	if len(fields[0]) != 1 {
		return address{}, fmt.Errorf("the address takes one value, not a list")
	}
	t := fields[0][0]
	switch {
	case t.keyword("all"):
		return address{fields: 1}, nil
	case t.keyword("samehost"), t.keyword("samenet"):
		return address{}, fmt.Errorf("address %s is not supported: write the network", t.text)
	}
	if p, err := netip.ParsePrefix(t.text); err == nil {
		if p.Masked() != p {
			return address{}, fmt.Errorf("address %s has bits set beyond its mask (%s?)", t.text, p.Masked())
		}
		return address{prefix: p, fields: 1}, nil
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil {
		return address{}, fmt.Errorf("address %q is neither all, an address nor a CIDR (host names are not supported)", t.text)
	}
	if len(fields) < 2 || len(fields[1]) != 1 {
		return address{}, fmt.Errorf("address %s needs a /length or a mask after it", t.text)
	}
	mask, err := netip.ParseAddr(fields[1][0].text)
	if err != nil || mask.Is4() != a.Is4() {
		return address{}, fmt.Errorf("mask %q does not fit address %s", fields[1][0].text, t.text)
	}
	bits, ok := maskBits(mask)
	if !ok {
		return address{}, fmt.Errorf("mask %s is not contiguous", mask)
	}
	p := netip.PrefixFrom(a, bits)
	if p.Masked() != p {
		return address{}, fmt.Errorf("address %s has bits set beyond mask %s", a, mask)
	}
	return address{prefix: p, fields: 2}, nil
}

// maskBits is the prefix length of a mask such as 255.255.255.0.
func maskBits(m netip.Addr) (int, bool) {
	bits, ones := 0, true
	for _, b := range m.AsSlice() {
		for i := 7; i >= 0; i-- {
			set := b&(1<<i) != 0
			switch {
			case set && !ones:
				return 0, false
			case set:
				bits++
			default:
				ones = false
			}
		}
	}
	return bits, true
}

// DatabaseText, UserText and AddressText show a rule's fields as the
// file's keywords and lists would (for SHOW HBA).
func (r Rule) DatabaseText() string {
	switch {
	case r.SameUser:
		return "sameuser"
	case r.Databases == nil:
		return "all"
	}
	names := names(r.Databases)
	if r.replication {
		names = append([]string{"replication"}, names...)
	}
	return strings.Join(names, ",")
}

func (r Rule) UserText() string {
	if r.Users == nil {
		return "all"
	}
	return strings.Join(names(r.Users), ",")
}

// names quotes the names that a keyword or the file's syntax would
// otherwise take for something else.
func names(list []string) []string {
	out := make([]string, len(list))
	for i, n := range list {
		switch {
		case n == "all", n == "sameuser", n == "samerole", n == "samegroup", n == "replication",
			n == "", strings.ContainsAny(n, " \t,#+@/"):
			out[i] = `"` + n + `"`
		default:
			out[i] = n
		}
	}
	return out
}

func (r Rule) AddressText() string {
	switch {
	case r.Type == Local:
		return ""
	case !r.Net.IsValid():
		return "all"
	}
	return r.Net.String()
}

// OptionsText shows the rule's options (for SHOW HBA).
func (r Rule) OptionsText() string {
	if r.ClientCert == "" {
		return ""
	}
	return "clientcert=" + r.ClientCert
}
