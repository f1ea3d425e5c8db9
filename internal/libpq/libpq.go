package libpq

import "strings"

// Quote writes s as a libpq connection string value: in single quotes,
// with backslashes and quotes escaped.
func Quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// SSLFiles are the files a server login's TLS uses, each empty when unset:
// the certificate authorities that verify the server (sslrootcert, for
// sslmode verify-ca and verify-full), and a client certificate and its key
// for servers that ask for one (sslcert, sslkey).
type SSLFiles struct {
	RootCert, Cert, Key string
}

// Params is the connection string fragment for the files set, each
// preceded by a space; "" when none is.
func (f SSLFiles) Params() string {
	var b strings.Builder
	for _, p := range [...]struct{ key, file string }{{"sslrootcert", f.RootCert}, {"sslcert", f.Cert}, {"sslkey", f.Key}} {
		if p.file != "" {
			b.WriteString(" " + p.key + "=" + Quote(p.file))
		}
	}
	return b.String()
}
