package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"sync"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// Methods, as in pg_hba.conf.
const (
	MethodSCRAM = "scram-sha-256"
	MethodMD5   = "md5"
	MethodTrust = "trust"
)

// Conn is the client side of the wire during authentication.
type Conn interface {
	// Send writes and flushes one message.
	Send(msg wire.Encoder) error
	// Receive returns the next message's type and body.
	Receive() (typ byte, body []byte, err error)
}

// Authenticator runs password exchanges. It caches SCRAM keys derived
// from plain passwords, because PBKDF2 at 4096 rounds per login would
// dominate connect-per-transaction workloads.
type Authenticator struct {
	mu      sync.Mutex
	derived map[string]*scram.StoredCredentials
}

// NewAuthenticator returns an Authenticator with an empty key cache.
func NewAuthenticator() *Authenticator {
	return &Authenticator{derived: map[string]*scram.StoredCredentials{}}
}

// Check authenticates user with method against secret. It does not send
// AuthenticationOk: the caller does, once the rest of startup is settled.
// endPoint is the proxy certificate's TLS channel binding data
// (TLSServerEndPoint) when the client is on TLS, else nil. A SCRAM login
// against a stored verifier returns the keys it gave away (see
// passthrough.go); others return none.
func (a *Authenticator) Check(c Conn, method, user string, s Secret, endPoint []byte) (Keys, error) {
	switch {
	case method == MethodTrust:
		return Keys{}, nil
	case s.SCRAM == nil && s.MD5 == "" && s.Plain == "":
		// No password: PostgreSQL lets no one in with a password method
		// then. Going on would check against the md5 of the empty
		// password, which any client can send.
		return Keys{}, failed(user)
	}
	if method == MethodMD5 && (s.MD5 != "" || s.Plain != "") || s.SCRAM == nil && s.Plain == "" {
		// md5 asked for, or only an md5 hash known: PostgreSQL, too,
		// falls back to md5 then.
		if err := checkMD5(c, user, s); err != nil {
			return Keys{}, err
		}
		if s.Plain == "" {
			return Keys{MD5: s.MD5}, nil // the hash logs in to md5 servers too
		}
		return Keys{}, nil
	}
	creds, err := a.scramCreds(user, s)
	if err != nil {
		return Keys{}, err
	}
	// With the password known the keys add nothing: they are recovered
	// for a stored verifier only.
	return checkSCRAM(c, user, creds, endPoint, s.SCRAM != nil)
}

func (a *Authenticator) scramCreds(user string, s Secret) (*scram.StoredCredentials, error) {
	if s.SCRAM != nil {
		return s.SCRAM, nil
	}
	if s.Plain == "" {
		return nil, nil
	}
	key := user + "\x00" + s.Plain
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.derived[key]; ok {
		return c, nil
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	c, err := scramCredentials(user, s.Plain, scram.KeyFactors{Salt: string(salt), Iters: 4096})
	if err != nil {
		return nil, err
	}
	a.derived[key] = c
	return c, nil
}

func failed(user string) error {
	return pgerr.Fatal(pgerr.InvalidPassword, "password authentication failed for user %q", user)
}

func receivePassword(c Conn) ([]byte, error) {
	typ, body, err := c.Receive()
	if err != nil {
		return nil, err
	}
	if typ != 'p' {
		return nil, pgerr.Fatal(pgerr.ProtocolViolation, "expected password response, got message type %q", typ)
	}
	return body, nil
}

func checkSCRAM(c Conn, user string, creds *scram.StoredCredentials, endPoint []byte, wantKeys bool) (Keys, error) {
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *creds, nil })
	if err != nil {
		return Keys{}, err
	}
	conv := scramConversation(srv, endPoint)
	if err := c.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: scramMechanisms(endPoint)}); err != nil {
		return Keys{}, err
	}
	body, err := receivePassword(c)
	if err != nil {
		return Keys{}, err
	}
	var first pgproto3.SASLInitialResponse
	if err := first.Decode(body); err != nil {
		return Keys{}, pgerr.Fatal(pgerr.ProtocolViolation, "malformed SASL initial response")
	}
	if !checkMechanism(first.AuthMechanism, first.Data, endPoint) {
		return Keys{}, pgerr.Fatal(pgerr.ProtocolViolation,
			"SASL mechanism %q not offered, or its channel binding flag does not match it", first.AuthMechanism)
	}
	clientFirst := string(first.Data)
	serverFirst, err := conv.Step(clientFirst)
	if err != nil {
		return Keys{}, pgerr.Fatal(pgerr.ProtocolViolation, "malformed SCRAM client-first message: %v", err)
	}
	if err := c.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}); err != nil {
		return Keys{}, err
	}
	if body, err = receivePassword(c); err != nil {
		return Keys{}, err
	}
	var final pgproto3.SASLResponse
	if err := final.Decode(body); err != nil {
		return Keys{}, pgerr.Fatal(pgerr.ProtocolViolation, "malformed SASL response")
	}
	serverFinal, err := conv.Step(string(final.Data))
	if err != nil || !conv.Valid() {
		return Keys{}, failed(user)
	}
	var keys Keys
	if wantKeys {
		keys, _ = recoverKeys(creds, clientFirst, serverFirst, string(final.Data))
	}
	return keys, c.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
}

func checkMD5(c Conn, user string, s Secret) error {
	var salt [4]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return err
	}
	if err := c.Send(&pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
		return err
	}
	body, err := receivePassword(c)
	if err != nil {
		return err
	}
	var pm pgproto3.PasswordMessage
	if err := pm.Decode(body); err != nil {
		return pgerr.Fatal(pgerr.ProtocolViolation, "malformed password message")
	}
	stored := s.MD5
	if stored == "" {
		stored = MD5Hash(user, s.Plain)
	}
	want := Keys{MD5: stored}.MD5Response(salt)
	if subtle.ConstantTimeCompare([]byte(want), []byte(pm.Password)) != 1 {
		return failed(user)
	}
	return nil
}
