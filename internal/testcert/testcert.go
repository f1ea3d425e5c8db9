package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// New returns a fresh self-signed ECDSA P-256 certificate for 127.0.0.1,
// valid for an hour either side of now, and its key.
func New(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return NewFor(t, "127.0.0.1")
}

// NewFor is New with commonName as the subject's common name, as a
// client certificate names its user.
func NewFor(t testing.TB, commonName string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The address as a SAN too: Go verifies host names against SANs only.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// Files writes a New certificate and its key as PEM files in a directory
// of the test's, and returns their paths.
func Files(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return FilesFor(t, "127.0.0.1")
}

// FilesFor is Files with NewFor's common name.
func FilesFor(t testing.TB, commonName string) (certFile, keyFile string) {
	t.Helper()
	cert, key := NewFor(t, commonName)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: cert.Raw},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}
