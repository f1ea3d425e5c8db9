package auth

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// scramClient plays a client's side of a SASL exchange against Check:
// it answers each server message with the next client message.
type scramClient struct {
	t       *testing.T
	mech    string
	conv    *scram.ClientConversation
	offered []string
	next    []byte // the server's last SASL data
	sent    int
}

func (c *scramClient) Send(msg wire.Encoder) error {
	switch m := msg.(type) {
	case *pgproto3.AuthenticationSASL:
		c.offered = m.AuthMechanisms
	case *pgproto3.AuthenticationSASLContinue:
		c.next = m.Data
	case *pgproto3.AuthenticationSASLFinal:
		if _, err := c.conv.Step(string(m.Data)); err != nil {
			c.t.Errorf("the client does not accept the server's final message: %v", err)
		}
	}
	return nil
}

func (c *scramClient) Receive() (byte, []byte, error) {
	c.sent++
	var step string
	if c.sent == 2 {
		step = string(c.next)
	}
	resp, err := c.conv.Step(step)
	if err != nil {
		return 0, nil, err
	}
	var msg wire.Encoder = &pgproto3.SASLResponse{Data: []byte(resp)}
	if c.sent == 1 {
		msg = &pgproto3.SASLInitialResponse{AuthMechanism: c.mech, Data: []byte(resp)}
	}
	b, err := msg.Encode(nil)
	return b[0], b[5:], err
}

// TestSCRAMChannelBinding: on TLS, SCRAM-SHA-256-PLUS is offered beside
// SCRAM-SHA-256 and binds the exchange to the proxy's certificate: a
// client that saw another certificate (a man in the middle) fails, and
// a mechanism contradicting its channel binding flag, or -PLUS off TLS,
// is a protocol violation.
func TestSCRAMChannelBinding(t *testing.T) {
	cert, _ := testcert.New(t)
	endPoint, err := TLSServerEndPoint(cert)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, _ := testcert.New(t)
	other, err := TLSServerEndPoint(otherCert)
	if err != nil {
		t.Fatal(err)
	}
	// boundTo starts a client conversation bound to data.
	boundTo := func(data []byte) func(*scram.Client) *scram.ClientConversation {
		return func(c *scram.Client) *scram.ClientConversation {
			return c.NewConversationWithChannelBinding(
				scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: data})
		}
	}
	secret := Secret{Plain: "right"}
	for _, tt := range []struct {
		name     string
		endPoint []byte // the server's; nil: not on TLS
		mech     string
		password string
		conv     func(*scram.Client) *scram.ClientConversation
		want     string // SQLSTATE, "" for success
		offered  int
	}{
		{"no TLS", nil, mechSCRAM, "right", (*scram.Client).NewConversation, "", 1},
		{"no TLS, wrong password", nil, mechSCRAM, "wrong", (*scram.Client).NewConversation, pgerr.InvalidPassword, 1},
		{"TLS, bound", endPoint, mechSCRAMPlus, "right", boundTo(endPoint), "", 2},
		{"TLS, a client that does not bind", endPoint, mechSCRAM, "right", (*scram.Client).NewConversation, "", 2},
		{"TLS, bound to another certificate", endPoint, mechSCRAMPlus, "right", boundTo(other),
			pgerr.InvalidPassword, 2},
		{"TLS, binding under the plain mechanism", endPoint, mechSCRAM, "right", boundTo(endPoint),
			pgerr.ProtocolViolation, 2},
		{"-PLUS off TLS", nil, mechSCRAMPlus, "right", boundTo(endPoint),
			pgerr.ProtocolViolation, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, err := scram.SHA256.NewClient("ninja", tt.password, "")
			if err != nil {
				t.Fatal(err)
			}
			c := &scramClient{t: t, mech: tt.mech, conv: tt.conv(client)}
			_, err = NewAuthenticator().Check(c, MethodSCRAM, "ninja", secret, tt.endPoint)
			var pe *pgerr.Error
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v, want success", err)
			case tt.want != "" && (!errors.As(err, &pe) || pe.Code != tt.want):
				t.Errorf("Check: %v, want SQLSTATE %s", err, tt.want)
			}
			if len(c.offered) != tt.offered {
				t.Errorf("offered %v, want %d mechanisms", c.offered, tt.offered)
			}
		})
	}
}

// md5Client answers an md5 challenge with password, as libpq and pgx do.
type md5Client struct {
	user, password string
	salt           [4]byte
	asked          bool
}

func (c *md5Client) Send(msg wire.Encoder) error {
	if m, ok := msg.(*pgproto3.AuthenticationMD5Password); ok {
		c.salt, c.asked = m.Salt, true
	}
	return nil
}

func (c *md5Client) Receive() (byte, []byte, error) {
	sum := md5.Sum(append([]byte(MD5Hash(c.user, c.password)[3:]), c.salt[:]...))
	b, err := (&pgproto3.PasswordMessage{Password: "md5" + hex.EncodeToString(sum[:])}).Encode(nil)
	return b[0], b[5:], err
}

// TestNoPasswordLetsNoOneIn: a user with no password at all (none in the
// config, none in the users file) is refused by every password method,
// without a challenge the md5 of the empty password would answer; trust
// still lets it in.
func TestNoPasswordLetsNoOneIn(t *testing.T) {
	for _, method := range []string{MethodSCRAM, MethodMD5} {
		c := &md5Client{user: "bob"}
		_, err := NewAuthenticator().Check(c, method, "bob", Secret{}, nil)
		var pe *pgerr.Error
		if !errors.As(err, &pe) || pe.Code != pgerr.InvalidPassword {
			t.Errorf("%s, no password: %v, want 28P01", method, err)
		}
		if c.asked {
			t.Errorf("%s, no password: the client was challenged", method)
		}
	}
	if _, err := NewAuthenticator().Check(&md5Client{user: "bob"}, MethodTrust, "bob", Secret{}, nil); err != nil {
		t.Errorf("trust, no password: %v", err)
	}
	// With a password, the same client gets in only with it.
	if _, err := NewAuthenticator().Check(&md5Client{user: "bob", password: "pw"}, MethodMD5, "bob", Secret{Plain: "pw"}, nil); err != nil {
		t.Errorf("md5 with the right password: %v", err)
	}
}
