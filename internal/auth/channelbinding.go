package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"hash"
	"strings"

	"github.com/xdg-go/scram"
)

// SCRAM's mechanism names. With the client on TLS, PostgreSQL offers the
// -PLUS variant too, which binds the exchange to the TLS channel
// (tls-server-end-point): a man in the middle holding another
// certificate cannot relay it. libpq and pgx use it when offered, and
// refuse a server without it under channel_binding=require.
const (
	mechSCRAM     = "SCRAM-SHA-256"
	mechSCRAMPlus = "SCRAM-SHA-256-PLUS"
)

// TLSServerEndPoint is cert's tls-server-end-point channel binding data
// (RFC 5929): its hash by the hash function of its signature algorithm,
// SHA-256 for MD5 and SHA-1. Certificates whose signature names no hash
// (Ed25519) have none; their clients are offered SCRAM without -PLUS
// (PostgreSQL offers it and then fails the exchange).
func TLSServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	var h hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default:
		return nil, fmt.Errorf("no channel binding for a certificate signed with %v", cert.SignatureAlgorithm)
	}
	h.Write(cert.Raw)
	return h.Sum(nil), nil
}

// scramMechanisms are the mechanisms offered; endPoint is nil off TLS.
func scramMechanisms(endPoint []byte) []string {
	if endPoint == nil {
		return []string{mechSCRAM}
	}
	return []string{mechSCRAMPlus, mechSCRAM}
}

// checkMechanism refuses a mechanism that was not offered, and a
// client-first message whose channel binding flag contradicts the
// mechanism it came with ("p" only with -PLUS, as PostgreSQL insists).
func checkMechanism(mech string, clientFirst []byte, endPoint []byte) bool {
	binds := strings.HasPrefix(string(clientFirst), "p=")
	switch mech {
	case mechSCRAM:
		return !binds
	case mechSCRAMPlus:
		return endPoint != nil && binds
	}
	return false
}

func scramConversation(srv *scram.Server, endPoint []byte) *scram.ServerConversation {
	if endPoint == nil {
		return srv.NewConversation()
	}
	return srv.NewConversationWithChannelBinding(scram.ChannelBinding{
		Type: scram.ChannelBindingTLSServerEndpoint, Data: endPoint})
}
