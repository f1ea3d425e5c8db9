package auth

import (
	"testing"

	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/xdg-go/scram"
)

// TestPassThrough: a client's SCRAM login against a stored verifier gives
// the keys to log in to a server holding that verifier (played here by
// xdg-go/scram's server, as PostgreSQL checks it), also when the client
// bound its login to TLS; a server with another verifier for the same
// password is refused before any proof is sent, and a login against a
// plain password gives no keys.
func TestPassThrough(t *testing.T) {
	verifier, err := Verifier("ninja", "right", 4096)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ParseSecret(verifier)
	if err != nil {
		t.Fatal(err)
	}
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
		kc, err := NewKeyClient(keys)
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
	kc, _ := NewKeyClient(keys)
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
