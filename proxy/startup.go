package proxy

import (
	"encoding/binary"
	"io"
	"strings"

	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// Request codes that stand where a startup packet's protocol version does.
const (
	codeCancel   = 80877102
	codeSSL      = 80877103
	codeGSSENC   = 80877104
	maxStartup   = 10000
	protoMajor   = 3
	startupFatal = pgerr.ProtocolViolation
)

// startupPacket is the first packet of a connection, decoded.
type startupPacket struct {
	code   uint32 // protocol version or one of the request codes
	params map[string]string
	// order keeps the client's parameter order for NegotiateProtocolVersion.
	order     []string
	cancelPID uint32
	cancelKey []byte
}

func (p *startupPacket) minor() uint32 { return p.code & 0xffff }

// readStartupPacket reads one length-prefixed startup-phase packet. It
// reads from r byte-exactly (no read-ahead), because after SSLRequest the
// stream switches to TLS.
func readStartupPacket(r io.Reader) (*startupPacket, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 8 || n > maxStartup {
		return nil, pgerr.Fatal(startupFatal, "invalid length of startup packet: %d", n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, pgerr.Fatal(startupFatal, "incomplete startup packet")
	}
	p := &startupPacket{code: binary.BigEndian.Uint32(body[:4])}
	rest := body[4:]
	switch p.code {
	case codeSSL, codeGSSENC:
		if len(rest) != 0 {
			return nil, pgerr.Fatal(startupFatal, "invalid length of SSL/GSS request")
		}
		return p, nil
	case codeCancel:
		if len(rest) < 8 || len(rest) > 4+256 {
			return nil, pgerr.Fatal(startupFatal, "invalid length of cancel request")
		}
		p.cancelPID = binary.BigEndian.Uint32(rest[:4])
		p.cancelKey = append([]byte(nil), rest[4:]...)
		return p, nil
	}
	if p.code>>16 != protoMajor {
		return nil, pgerr.Fatal(pgerr.FeatureNotSupported,
			"unsupported frontend protocol %d.%d: server supports 3.0", p.code>>16, p.code&0xffff)
	}
	p.params = make(map[string]string, 8)
	p.order = make([]string, 0, 8)
	// One string for the packet; names and values are slices of it.
	srest := string(rest)
	for len(srest) > 0 && srest[0] != 0 {
		k, after, ok := cstring(srest)
		if !ok {
			return nil, pgerr.Fatal(startupFatal, "invalid startup packet layout: expected terminator as last byte")
		}
		v, after2, ok := cstring(after)
		if !ok {
			return nil, pgerr.Fatal(startupFatal, "invalid startup packet layout: missing value for %q", k)
		}
		p.params[k] = v
		p.order = append(p.order, k)
		srest = after2
	}
	rest = rest[len(rest)-len(srest):]
	if len(rest) != 1 {
		return nil, pgerr.Fatal(startupFatal, "invalid startup packet layout: expected terminator as last byte")
	}
	if p.params["user"] == "" {
		return nil, pgerr.Fatal(pgerr.InvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	return p, nil
}

func cstring(b string) (string, string, bool) {
	i := strings.IndexByte(b, 0)
	if i < 0 {
		return "", "", false
	}
	return b[:i], b[i+1:], true
}

// protocolOptions lists the client's "_pq_." options, which pgninja does
// not implement and must report in NegotiateProtocolVersion.
func (p *startupPacket) protocolOptions() []string {
	var out []string
	for _, k := range p.order {
		if strings.HasPrefix(k, "_pq_.") {
			out = append(out, k)
		}
	}
	return out
}

// sessionParams extracts the settings the client asked for at startup,
// including `-c name=value` entries in options, which the proxy must apply
// on whatever server connection the client is given.
//
// As in PostgreSQL, a parameter named both in options and on its own
// takes the latter's value: the server applies options first.
func (p *startupPacket) sessionParams() map[string]string {
	out := parseOptions(p.params["options"])
	for k, v := range p.params {
		switch {
		case k == "user", k == "database", k == "options", k == "replication":
		case strings.HasPrefix(k, "_pq_."):
		default:
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// parseOptions reads `-c name=value` and `--name=value` switches, with
// backslash-escaped spaces, as the server does.
func parseOptions(s string) map[string]string {
	var words []string
	var cur strings.Builder
	esc := false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			w = words[i]
		case strings.HasPrefix(w, "--"):
			w = strings.TrimPrefix(w, "--")
		case strings.HasPrefix(w, "-c"):
			w = strings.TrimPrefix(w, "-c")
		default:
			continue
		}
		if k, v, ok := strings.Cut(w, "="); ok {
			out[strings.ToLower(strings.ReplaceAll(k, "-", "_"))] = v
		}
	}
	return out
}
