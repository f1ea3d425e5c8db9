package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// SCRAM pass-through, as PgBouncer does it: a client that proves its
// password with SCRAM against a stored verifier (a users file's line,
// copied from pg_authid) gives away its ClientKey in the proof, which
// the proxy can recover and then use to log in to a server holding the
// same verifier, without ever knowing the password. Without it, a user
// known only by its verifier could log in to the proxy but not through
// it to PostgreSQL. A user known by its md5 hash is simpler: the hash
// answers a server's md5 challenge as the password would.

// Keys are what such a login leaves the proxy, comparable as values (the
// pool compares targets). ClientKey and ServerKey hold raw bytes. A login
// against a stored md5 hash leaves the hash, which answers a server's md5
// challenge as well as the password would.
type Keys struct {
	ClientKey, ServerKey string
	Salt                 string // raw bytes
	Iters                int
	MD5                  string // "md5" + md5(password + user)
}

// Known reports whether k holds keys.
func (k Keys) Known() bool { return k.ClientKey != "" || k.MD5 != "" }

// MD5Response answers a server's md5 challenge with the stored hash.
func (k Keys) MD5Response(salt [4]byte) string {
	sum := md5.Sum(append([]byte(k.MD5[3:]), salt[:]...))
	return "md5" + hex.EncodeToString(sum[:])
}

// RecoverKeys returns the Keys that a client's SCRAM exchange against
// s's verifier gave away, from its three messages (the client-first with
// its GS2 header); ok is false unless the proof is one s verifies.
func RecoverKeys(s Secret, clientFirst, serverFirst, clientFinal string) (Keys, bool) {
	if s.SCRAM == nil {
		return Keys{}, false
	}
	return recoverKeys(s.SCRAM, clientFirst, serverFirst, clientFinal)
}

// recoverKeys returns the Keys a verified client-final message gives away:
// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), checked
// against StoredKey = H(ClientKey).
func recoverKeys(creds *scram.StoredCredentials, clientFirst, serverFirst, clientFinal string) (Keys, bool) {
	bare, ok := clientFirstBare(clientFirst)
	if !ok {
		return Keys{}, false
	}
	i := strings.LastIndex(clientFinal, ",p=")
	if i < 0 {
		return Keys{}, false
	}
	proof, err := base64.StdEncoding.DecodeString(clientFinal[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return Keys{}, false
	}
	authMessage := bare + "," + serverFirst + "," + clientFinal[:i]
	key := xor(proof, hmacSHA256(creds.StoredKey, authMessage))
	stored := sha256.Sum256(key)
	if subtle.ConstantTimeCompare(stored[:], creds.StoredKey) != 1 {
		return Keys{}, false
	}
	return Keys{ClientKey: string(key), ServerKey: string(creds.ServerKey), Salt: creds.Salt, Iters: creds.Iters}, true
}

// clientFirstBare drops the GS2 header (channel binding flag and
// authzid) from a client-first message.
func clientFirstBare(first string) (string, bool) {
	i := strings.IndexByte(first, ',')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(first[i+1:], ',')
	if j < 0 {
		return "", false
	}
	return first[i+1+j+1:], true
}

// KeyClient is the client side of SCRAM-SHA-256 with Keys in place of a
// password, bound to the TLS channel when it can be, as libpq and pgx
// bind theirs by default.
type KeyClient struct {
	keys        Keys
	nonce, bare string
	// gs2 is the GS2 header: "n,," off TLS (or with a certificate that
	// gives no binding data, Ed25519's), "y,," on TLS with a server that
	// offers no -PLUS (so that one stripped of it by a man in the middle
	// refuses the login), "p=tls-server-end-point,," when bound.
	gs2, endPoint string
	authMessage   string
}

// NewKeyClient starts an exchange. endPoint is the server certificate's
// tls-server-end-point data (TLSServerEndPoint), nil off TLS; plus, that
// the server offered SCRAM-SHA-256-PLUS. Mechanism and First are what
// the client's SASLInitialResponse carries.
func NewKeyClient(k Keys, endPoint []byte, plus bool) (*KeyClient, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	nonce := base64.StdEncoding.EncodeToString(b[:])
	// PostgreSQL takes the user from the startup message, not from n=.
	c := &KeyClient{keys: k, nonce: nonce, bare: "n=,r=" + nonce, gs2: "n,,"}
	switch {
	case endPoint != nil && plus:
		c.gs2, c.endPoint = "p=tls-server-end-point,,", string(endPoint)
	case endPoint != nil:
		c.gs2 = "y,,"
	}
	return c, nil
}

// Mechanism is the SASL mechanism the exchange uses.
func (c *KeyClient) Mechanism() string {
	if c.endPoint != "" {
		return mechSCRAMPlus
	}
	return mechSCRAM
}

// First is the client-first message.
func (c *KeyClient) First() string { return c.gs2 + c.bare }

// Final answers the server-first message. It refuses a server whose salt
// or iteration count differs from the verifier the keys came from: its
// verifier is another, and the keys cannot prove anything to it.
func (c *KeyClient) Final(serverFirst string) (string, error) {
	attrs := map[byte]string{}
	for _, a := range strings.Split(serverFirst, ",") {
		if len(a) < 2 || a[1] != '=' {
			return "", fmt.Errorf("malformed SCRAM server-first message")
		}
		attrs[a[0]] = a[2:]
	}
	if !strings.HasPrefix(attrs['r'], c.nonce) || len(attrs['r']) == len(c.nonce) {
		return "", fmt.Errorf("SCRAM server nonce does not extend the client's")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	iters, err2 := strconv.Atoi(attrs['i'])
	if err != nil || err2 != nil {
		return "", fmt.Errorf("malformed SCRAM server-first message")
	}
	if string(salt) != c.keys.Salt || iters != c.keys.Iters {
		return "", fmt.Errorf("the server's SCRAM verifier is not the one the proxy checked the client against (salt or iterations differ)")
	}
	// c= carries the GS2 header and, when bound, the channel's data.
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2+c.endPoint)) + ",r=" + attrs['r']
	c.authMessage = c.bare + "," + serverFirst + "," + withoutProof
	stored := sha256.Sum256([]byte(c.keys.ClientKey))
	proof := xor([]byte(c.keys.ClientKey), hmacSHA256(stored[:], c.authMessage))
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// Verify checks the server-final message: the server knew the verifier.
func (c *KeyClient) Verify(serverFinal string) error {
	if e, ok := strings.CutPrefix(serverFinal, "e="); ok {
		return fmt.Errorf("SCRAM: the server refused: %s", e)
	}
	v, ok := strings.CutPrefix(serverFinal, "v=")
	if !ok {
		return fmt.Errorf("malformed SCRAM server-final message")
	}
	sig, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(sig, hmacSHA256([]byte(c.keys.ServerKey), c.authMessage)) {
		return fmt.Errorf("SCRAM: the server's signature does not match")
	}
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}
