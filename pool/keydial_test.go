package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/libpq"
	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// fakeServer accepts one connection and plays PostgreSQL's login: the
// startup message, then auth (which answers the authentication exchange
// and returns the error to send instead of AuthenticationOk, if any),
// then the login's messages up to ReadyForQuery.
func fakeServer(t *testing.T, auth func(be *pgproto3.Backend) *pgproto3.ErrorResponse) (host string, port int) {
	return fakeTLSServer(t, nil, auth)
}

// fakeTLSServer is fakeServer that answers SSLRequest with TLS on cert
// (or 'N' when nil).
func fakeTLSServer(t *testing.T, cert *tls.Certificate, auth func(be *pgproto3.Backend) *pgproto3.ErrorResponse) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		be := pgproto3.NewBackend(nc, nc)
		msg, err := be.ReceiveStartupMessage()
		if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
			if cert == nil {
				_, _ = nc.Write([]byte{'N'})
			} else {
				_, _ = nc.Write([]byte{'S'})
				tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{*cert}})
				if tc.Handshake() != nil {
					return // the client refused the certificate
				}
				nc = tc
				be = pgproto3.NewBackend(nc, nc)
			}
			msg, err = be.ReceiveStartupMessage()
		}
		if err != nil {
			t.Errorf("startup: %v", err)
			return
		}
		if sm, ok := msg.(*pgproto3.StartupMessage); !ok || sm.Parameters["user"] != "alice" || sm.Parameters["database"] != "app" {
			t.Errorf("startup message %#v", msg)
			return
		}
		if e := auth(be); e != nil {
			be.Send(e)
		} else {
			be.Send(&pgproto3.AuthenticationOk{})
			be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
			be.Send(&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{1, 2, 3, 4}})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		}
		_ = be.Flush()
		// Hold the connection until the client is done with it.
		var b [1]byte
		_, _ = nc.Read(b[:])
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// ask sends the server's authentication request msg (of type authType)
// and receives the client's answer, an M.
func ask[M pgproto3.FrontendMessage](t *testing.T, be *pgproto3.Backend, msg pgproto3.BackendMessage, authType uint32) M {
	t.Helper()
	be.Send(msg)
	_ = be.Flush()
	if err := be.SetAuthType(authType); err != nil {
		t.Error(err)
	}
	return receive[M](t, be)
}

// receive reads the client's next message, which must be an M; the zero
// M when the client hung up (as it does on a challenge it refuses).
func receive[M pgproto3.FrontendMessage](t *testing.T, be *pgproto3.Backend) M {
	t.Helper()
	var zero M
	msg, err := be.Receive()
	if err != nil {
		return zero
	}
	m, ok := msg.(M)
	if !ok {
		t.Errorf("got %T", msg)
	}
	return m
}

// TestDialWithKeys: without a password, a pool logs in with what the
// client's login left: the md5 hash answers an md5 challenge, the SCRAM
// keys a SCRAM one, the server's signature checked; each refuses the
// other's challenge with a clear error, and the server's own refusal
// comes back as its error.
func TestDialWithKeys(t *testing.T) {
	const password = "s3cret"
	md5Hash := auth.MD5Hash("alice", password)
	verifier, err := auth.Verifier("alice", password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := auth.ParseSecret(verifier)
	if err != nil {
		t.Fatal(err)
	}
	scramKeys := keysFor(t, password, stored)

	md5Challenge := func(be *pgproto3.Backend) *pgproto3.ErrorResponse {
		salt := [4]byte{9, 8, 7, 6}
		pm := ask[*pgproto3.PasswordMessage](t, be, &pgproto3.AuthenticationMD5Password{Salt: salt}, pgproto3.AuthTypeMD5Password)
		if pm == nil || pm.Password != (auth.Keys{MD5: md5Hash}).MD5Response(salt) {
			return &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed for user \"alice\""}
		}
		return nil
	}
	scramChallenge := func(be *pgproto3.Backend) *pgproto3.ErrorResponse {
		srv, _ := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *stored.SCRAM, nil })
		conv := srv.NewConversation()
		first := ask[*pgproto3.SASLInitialResponse](t, be,
			&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}}, pgproto3.AuthTypeSASL)
		if first == nil {
			return nil
		}
		serverFirst, err := conv.Step(string(first.Data))
		if err != nil {
			t.Error(err)
		}
		final := ask[*pgproto3.SASLResponse](t, be,
			&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}, pgproto3.AuthTypeSASLContinue)
		if final == nil {
			return nil
		}
		serverFinal, err := conv.Step(string(final.Data))
		if err != nil || !conv.Valid() {
			return &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed for user \"alice\""}
		}
		be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
		return nil
	}

	for _, tt := range []struct {
		name      string
		keys      auth.Keys
		challenge func(*pgproto3.Backend) *pgproto3.ErrorResponse
		want      string // "" for success, else part of the error
	}{
		{"md5 hash, md5 server", auth.Keys{MD5: md5Hash}, md5Challenge, ""},
		{"wrong md5 hash", auth.Keys{MD5: auth.MD5Hash("alice", "other")}, md5Challenge, "28P01"},
		{"SCRAM keys, SCRAM server", scramKeys, scramChallenge, ""},
		{"md5 hash, SCRAM server", auth.Keys{MD5: md5Hash}, scramChallenge, "md5 hash only"},
		{"SCRAM keys, md5 server", scramKeys, md5Challenge, "SCRAM verifier only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, port := fakeServer(t, tt.challenge)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, Target{Host: host, Port: port, Database: "app", User: "alice", SSLMode: "disable", Keys: tt.keys})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if c.PID != 42 || c.Params["server_version"] != "15.0" || c.TxStatus != 'I' {
					t.Errorf("the login's messages: pid %d, params %v, status %c", c.PID, c.Params, c.TxStatus)
				}
				return
			}
			var pe *pgconn.PgError
			if err == nil || !(strings.Contains(err.Error(), tt.want) || errors.As(err, &pe) && pe.Code == tt.want) {
				t.Errorf("Dial: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// keysFor runs a client's SCRAM login against stored through the
// authenticator and returns the keys it leaves.
func keysFor(t *testing.T, password string, stored auth.Secret) auth.Keys {
	t.Helper()
	client, err := scram.SHA256.NewClient("alice", password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	first, _ := conv.Step("")
	srv, _ := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return *stored.SCRAM, nil })
	sconv := srv.NewConversation()
	serverFirst, _ := sconv.Step(first)
	final, _ := conv.Step(serverFirst)
	if _, err := sconv.Step(final); err != nil || !sconv.Valid() {
		t.Fatalf("the client's own login failed: %v", err)
	}
	keys, ok := auth.RecoverKeys(stored, first, serverFirst, final)
	if !ok {
		t.Fatal("no keys from the client's proof")
	}
	return keys
}

// TestServerLoginOverTLS: a server login, the proxy's own or pgconn's,
// asks for TLS as backend_sslmode says, verifies the server with
// backend_ca_file under verify-full, and refuses a server whose
// certificate that file does not vouch for.
func TestServerLoginOverTLS(t *testing.T) {
	certFile, keyFile := testcert.Files(t)
	otherCA, _ := testcert.Files(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	hash := auth.MD5Hash("alice", "pw")
	md5Login := func(be *pgproto3.Backend) *pgproto3.ErrorResponse {
		salt := [4]byte{1, 2, 3, 4}
		if pm := ask[*pgproto3.PasswordMessage](t, be, &pgproto3.AuthenticationMD5Password{Salt: salt}, pgproto3.AuthTypeMD5Password); pm == nil || pm.Password != (auth.Keys{MD5: hash}).MD5Response(salt) {
			return &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"}
		}
		return nil
	}
	for _, tt := range []struct {
		name, mode, ca string
		password       string // "": the keys' login, else pgconn's
		ok             bool
	}{
		{"verify-full with the server's CA", "verify-full", certFile, "", true},
		{"verify-full with another CA", "verify-full", otherCA, "", false},
		{"require, no CA", "require", "", "", true},
		{"pgconn's login, verify-full with the server's CA", "verify-full", certFile, "pw", true},
		{"pgconn's login, verify-full with another CA", "verify-full", otherCA, "pw", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, port := fakeTLSServer(t, &cert, md5Login)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, Target{Host: host, Port: port, Database: "app", User: "alice", Password: tt.password,
				SSLMode: tt.mode, SSLFiles: libpq.SSLFiles{RootCert: tt.ca}, Keys: auth.Keys{MD5: hash}})
			if err == nil {
				defer c.Close()
				if TLSDescription(c.Conn) == "" {
					t.Error("the server connection is not on TLS")
				}
			}
			if (err == nil) != tt.ok {
				t.Errorf("Dial: %v, want success %v", err, tt.ok)
			}
		})
	}
}

// TestConnStringTLSFiles: the pools' connection string carries the
// backend TLS files, which pgconn then loads.
func TestConnStringTLSFiles(t *testing.T) {
	certFile, keyFile := testcert.Files(t)
	tgt := Target{Host: "127.0.0.1", Port: 5432, Database: "app", User: "alice", Password: "pw", SSLMode: "verify-full",
		SSLFiles: libpq.SSLFiles{RootCert: certFile, Cert: certFile, Key: keyFile}}
	cfg, err := pgconn.ParseConfig(tgt.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSConfig == nil || cfg.TLSConfig.RootCAs == nil || len(cfg.TLSConfig.Certificates) != 1 || cfg.TLSConfig.ServerName != "127.0.0.1" {
		t.Errorf("pgconn's TLS config from %q: %+v", tgt.ConnString(), cfg.TLSConfig)
	}
}
