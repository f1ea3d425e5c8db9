package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// selfSigned writes a fresh self-signed certificate and its key for
// 127.0.0.1, and returns their files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestTLSClientsAndChannelBinding: with a certificate configured, clients
// that ask for TLS get it and log in with SCRAM, bound to the TLS channel
// (SCRAM-SHA-256-PLUS) when they require it, as PostgreSQL offers; clients
// that do not ask keep plain TCP.
func TestTLSClientsAndChannelBinding(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	h := startProxy(t, fmt.Sprintf("admin_users: [ninja]\ntls:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile))
	ctx := ctxT(t, 30*time.Second)
	for _, tt := range []struct {
		app, params string
		tls         bool
	}{
		{"bound", "sslmode=require&channel_binding=require", true},
		{"unbound", "sslmode=require&channel_binding=disable", true},
		{"plain", "sslmode=disable", false},
	} {
		dsn := fmt.Sprintf("postgres://ninja:ninja@%s/ai_ninja?%s&application_name=%s", h.addr, tt.params, tt.app)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("%s: %v", tt.app, err)
			continue
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "select 41 + 1").Scan(&n); err != nil || n != 42 {
			t.Errorf("%s: select: %d, %v", tt.app, n, err)
		}
		if got := c.PgConn().Conn() != nil && isTLS(c); got != tt.tls {
			t.Errorf("%s: TLS %v, want %v", tt.app, got, tt.tls)
		}
	}
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rowsWhere(consoleRows(t, con, "SHOW CLIENTS"), "database", "ai_ninja") {
		if onTLS := r["tls"] != ""; onTLS != (r["application_name"] != "plain") {
			t.Errorf("SHOW CLIENTS %s: tls %q", r["application_name"], r["tls"])
		}
	}
}

func isTLS(c *pgx.Conn) bool {
	_, ok := c.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState })
	return ok
}
