package libpq

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `'plain'`,
		"it's":       `'it\'s'`,
		`back\slash`: `'back\\slash'`,
		"":           `''`,
		"with space": `'with space'`,
		`\'both`:     `'\\\'both'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSSLFilesParams(t *testing.T) {
	for _, tt := range []struct {
		f    SSLFiles
		want string
	}{
		{SSLFiles{}, ""},
		{SSLFiles{RootCert: "/etc/ca.pem"}, ` sslrootcert='/etc/ca.pem'`},
		{SSLFiles{RootCert: "ca.pem", Cert: "c.pem", Key: "k's.pem"}, ` sslrootcert='ca.pem' sslcert='c.pem' sslkey='k\'s.pem'`},
	} {
		if got := tt.f.Params(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.f, got, tt.want)
		}
	}
}
