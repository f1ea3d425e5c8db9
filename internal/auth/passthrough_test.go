package auth

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"testing"

	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/xdg-go/scram"
)

// storedVerifier is a SCRAM verifier of the password "right", as a users
// file or pg_authid holds it.
func storedVerifier(t *testing.T) Secret {
	t.Helper()
	verifier, err := Verifier("ninja", "right", 4096)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ParseSecret(verifier)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// TestPassThrough: a client's SCRAM login against a stored verifier gives
// the keys to log in to a server holding that verifier (played here by
// xdg-go/scram's server, as PostgreSQL checks it), also when the client
// bound its login to TLS; a server with another verifier for the same
// password is refused before any proof is sent, and a login against a
// plain password gives no keys.
func TestPassThrough(t *testing.T) {
	stored := storedVerifier(t)
	otherVerifier, _ := Verifier("ninja", "right", 4096) // another salt
	other, _ := ParseSecret(otherVerifier)
	cert, _ := testcert.New(t)
	endPoint, err := TLSServerEndPoint(cert)
	if err != nil {
		t.Fatal(err)
	}

	login := func(secret Secret, endPoint []byte, mech string, bound bool) Keys {
		t.Helper()
		client, err := scram.SHA256.NewClient("ninja", "right", "")
		if err != nil {
			t.Fatal(err)
		}
		conv := client.NewConversation()
		if bound {
			conv = client.NewConversationWithChannelBinding(
				scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: endPoint})
		}
		keys, err := NewAuthenticator().Check(&scramClient{t: t, mech: mech, conv: conv}, MethodSCRAM, "ninja", secret, endPoint)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return keys
	}
	// toServer runs the keys' client against a server holding secret's
	// verifier.
	toServer := func(keys Keys, secret Secret) error {
		t.Helper()
		srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *secret.SCRAM, nil })
		if err != nil {
			t.Fatal(err)
		}
		conv := srv.NewConversation()
		kc, err := NewKeyClient(keys, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		serverFirst, err := conv.Step(kc.First())
		if err != nil {
			t.Fatal(err)
		}
		final, err := kc.Final(serverFirst)
		if err != nil {
			return err
		}
		serverFinal, err := conv.Step(final)
		if err != nil || !conv.Valid() {
			t.Fatalf("the server did not accept the proof: %v", err)
		}
		return kc.Verify(serverFinal)
	}

	for _, tt := range []struct {
		name     string
		endPoint []byte
		mech     string
		bound    bool
	}{
		{"plain TCP", nil, mechSCRAM, false},
		{"TLS, bound", endPoint, mechSCRAMPlus, true},
		{"TLS, not bound", endPoint, mechSCRAM, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys := login(stored, tt.endPoint, tt.mech, tt.bound)
			if !keys.Known() {
				t.Fatal("no keys from a login against a stored verifier")
			}
			if err := toServer(keys, stored); err != nil {
				t.Errorf("to a server with the same verifier: %v", err)
			}
			if err := toServer(keys, other); err == nil {
				t.Error("to a server with another verifier: no error before the proof")
			}
		})
	}
	if keys := login(Secret{Plain: "right"}, nil, mechSCRAM, false); keys.Known() {
		t.Error("a login against a plain password gave keys")
	}
	// A server signature made without the verifier is refused.
	keys := login(stored, nil, mechSCRAM, false)
	kc, _ := NewKeyClient(keys, nil, false)
	srv, _ := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *stored.SCRAM, nil })
	conv := srv.NewConversation()
	serverFirst, _ := conv.Step(kc.First())
	if _, err := kc.Final(serverFirst); err != nil {
		t.Fatal(err)
	}
	if err := kc.Verify("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); err == nil {
		t.Error("a forged server signature was accepted")
	}
}

// TestKeyClientChannelBinding: on TLS the keys' login binds itself to the
// channel when the server offers SCRAM-SHA-256-PLUS (xdg-go/scram's
// server checking the binding data as PostgreSQL does), so a server
// behind another certificate (a man in the middle) refuses it; offered
// no -PLUS on TLS, it says it could have bound ("y"), so a server that
// supports binding, whose offer was stripped, refuses it too.
func TestKeyClientChannelBinding(t *testing.T) {
	stored := storedVerifier(t)
	// The keys a client's login with the password gives (TestPassThrough).
	salted, err := pbkdf2.Key(sha256.New, "right", []byte(stored.SCRAM.Salt), stored.SCRAM.Iters, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{ClientKey: string(hmacSHA256(salted, "Client Key")), ServerKey: string(stored.SCRAM.ServerKey),
		Salt: stored.SCRAM.Salt, Iters: stored.SCRAM.Iters}
	cert, _ := testcert.New(t)
	endPoint, _ := TLSServerEndPoint(cert)
	otherCert, _ := testcert.New(t)
	otherEndPoint, _ := TLSServerEndPoint(otherCert)
	for _, tt := range []struct {
		name     string
		endPoint []byte // the client's view of the channel
		plus     bool   // offered SCRAM-SHA-256-PLUS
		// serverEndPoint is the server's own view of the channel; nil: it
		// cannot bind.
		serverEndPoint []byte
		wantMechanism  string
		wantRefused    bool
	}{
		{"plain TCP", nil, false, nil, mechSCRAM, false},
		{"TLS, bound", endPoint, true, endPoint, mechSCRAMPlus, false},
		{"TLS, another certificate", endPoint, true, otherEndPoint, mechSCRAMPlus, true},
		{"TLS, no -PLUS offered, server cannot bind", endPoint, false, nil, mechSCRAM, false},
		{"TLS, -PLUS stripped from the offer", endPoint, false, endPoint, mechSCRAM, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *stored.SCRAM, nil })
			if err != nil {
				t.Fatal(err)
			}
			conv := srv.NewConversation()
			if tt.serverEndPoint != nil {
				conv = srv.NewConversationWithChannelBinding(
					scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: tt.serverEndPoint})
			}
			kc, err := NewKeyClient(keys, tt.endPoint, tt.plus)
			if err != nil {
				t.Fatal(err)
			}
			if kc.Mechanism() != tt.wantMechanism {
				t.Errorf("mechanism %s, want %s", kc.Mechanism(), tt.wantMechanism)
			}
			serverFirst, err := conv.Step(kc.First())
			if err == nil {
				var final string
				if final, err = kc.Final(serverFirst); err != nil {
					t.Fatal(err)
				}
				var serverFinal string
				if serverFinal, err = conv.Step(final); err == nil && conv.Valid() {
					err = kc.Verify(serverFinal)
				}
			}
			if refused := err != nil; refused != tt.wantRefused {
				t.Errorf("refused: %v (%v), want %v", refused, err, tt.wantRefused)
			} else if refused {
				t.Logf("refused: %v", err)
			}
		})
	}
}
