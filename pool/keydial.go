package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// dialWithKeys logs in with what a client's login left (see auth.Keys:
// SCRAM keys, or a stored md5 hash) instead of a password. pgconn
// answers challenges from a password only, so this login is the proxy's
// own: the same hosts, TLS settings and fallbacks as pgconn would try
// (from pgconn's parsed config), the startup message, SCRAM-SHA-256
// (bound to the TLS channel as pgconn binds its own) or md5, and the
// messages up to ReadyForQuery; the result is handed over as a hijacked
// pgconn connection is.
func dialWithKeys(ctx context.Context, t Target) (*Conn, error) {
	hj, err := hijackedWithKeys(ctx, t, "")
	if err != nil {
		return nil, err
	}
	return newConn(hj, t.Addr()), nil
}

// Connect opens a pgconn connection to t for the proxy's own queries,
// named appName, with t's password or, without one, its keys.
func Connect(ctx context.Context, t Target, appName string) (*pgconn.PgConn, error) {
	if !t.usesKeys() {
		return pgconn.Connect(ctx, t.ConnString()+" application_name="+appName)
	}
	hj, err := hijackedWithKeys(ctx, t, appName)
	if err != nil {
		return nil, err
	}
	pc, err := pgconn.Construct(hj)
	if err != nil {
		hj.Conn.Close()
	}
	return pc, err
}

func hijackedWithKeys(ctx context.Context, t Target, appName string) (*pgconn.HijackedConn, error) {
	cfg, err := pgconn.ParseConfig(t.ConnString())
	if err != nil {
		return nil, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure, "pgninja: bad server settings")
	}
	if appName != "" {
		cfg.RuntimeParams["application_name"] = appName
	}
	if t.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.ConnectTimeout)
		defer cancel()
	}
	tries := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	var failed error
	for _, try := range tries {
		hj, err := loginWithKeys(ctx, cfg, try, t.Keys)
		if err == nil {
			return hj, nil
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, pe // the server's own refusal: no other try changes it
		}
		// A refused TLS says less than what the plain try then found.
		if failed == nil || errors.Is(failed, errNoTLS) {
			failed = err
		}
	}
	return nil, pgerr.Wrap(failed, pgerr.SeverityError, pgerr.ConnectionFailure,
		"pgninja: could not connect to server %s", t.Addr()).WithDetail(failed.Error())
}

// errNoTLS: the server answered SSLRequest with 'N' where TLS was asked;
// the next fallback (sslmode prefer's plain one) may go on without.
var errNoTLS = errors.New("server refused TLS")

func loginWithKeys(ctx context.Context, cfg *pgconn.Config, try *pgconn.FallbackConfig, keys auth.Keys) (*pgconn.HijackedConn, error) {
	nc, err := cfg.DialFunc(ctx, "tcp", net.JoinHostPort(try.Host, strconv.Itoa(int(try.Port))))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			nc.Close()
		}
	}()
	if d, has := ctx.Deadline(); has {
		_ = nc.SetDeadline(d)
	}
	if try.TLSConfig != nil {
		tc, err := startTLS(ctx, nc, try.TLSConfig)
		if err != nil {
			return nil, err
		}
		nc = tc
	}
	fe := pgproto3.NewFrontend(nc, nc)
	params := map[string]string{"user": cfg.User, "database": cfg.Database}
	for k, v := range cfg.RuntimeParams {
		params[k] = v
	}
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
	if err := fe.Flush(); err != nil {
		return nil, err
	}
	hj := &pgconn.HijackedConn{Conn: nc, TLSConfig: try.TLSConfig, ParameterStatuses: map[string]string{},
		Frontend: fe, Config: cfg}
	if err := authWithKeys(fe, nc, cfg.ChannelBinding, keys); err != nil {
		return nil, err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.ParameterStatus:
			hj.ParameterStatuses[m.Name] = m.Value
		case *pgproto3.BackendKeyData:
			hj.PID, hj.SecretKey = m.ProcessID, slices.Clone(m.SecretKey)
		case *pgproto3.ReadyForQuery:
			hj.TxStatus = m.TxStatus
			_ = nc.SetDeadline(time.Time{})
			ok = true
			return hj, nil
		case *pgproto3.ErrorResponse:
			return nil, pgconn.ErrorResponseToPgError(m)
		case *pgproto3.NoticeResponse, *pgproto3.NegotiateProtocolVersion:
		default:
			return nil, fmt.Errorf("unexpected message %T during login", msg)
		}
	}
}

// startTLS asks the server for TLS and sets it up.
func startTLS(ctx context.Context, nc net.Conn, cfg *tls.Config) (net.Conn, error) {
	req, err := (&pgproto3.SSLRequest{}).Encode(nil)
	if err != nil {
		return nil, err
	}
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}
	var answer [1]byte
	if _, err := nc.Read(answer[:]); err != nil {
		return nil, err
	}
	if answer[0] != 'S' {
		return nil, errNoTLS
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// authWithKeys answers the server's authentication request: SCRAM-SHA-256
// with the ClientKey, md5 with the stored hash. Any other asks for what
// only the client knows. On TLS the SCRAM exchange is bound to the
// channel (SCRAM-SHA-256-PLUS) when the server offers it, as pgconn
// binds the pools' password logins; binding is the connection string's
// channel_binding (prefer, require, disable).
func authWithKeys(fe *pgproto3.Frontend, nc net.Conn, binding string, keys auth.Keys) error {
	var mechanisms []string
	msg, err := fe.Receive()
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		return pgconn.ErrorResponseToPgError(m)
	case *pgproto3.AuthenticationOk:
		return nil // the server trusts this client
	case *pgproto3.AuthenticationMD5Password:
		if keys.MD5 == "" {
			return fmt.Errorf("the server asks for md5, and the proxy knows the user by its SCRAM verifier only")
		}
		fe.Send(&pgproto3.PasswordMessage{Password: keys.MD5Response(m.Salt)})
		if err := fe.Flush(); err != nil {
			return err
		}
		_, err := receiveAuth[*pgproto3.AuthenticationOk](fe)
		return err
	case *pgproto3.AuthenticationSASL:
		if keys.ClientKey == "" {
			return fmt.Errorf("the server asks for SCRAM, and the proxy knows the user by its md5 hash only")
		}
		if !slices.Contains(m.AuthMechanisms, "SCRAM-SHA-256") {
			return fmt.Errorf("the server offers %v, not SCRAM-SHA-256", m.AuthMechanisms)
		}
		mechanisms = m.AuthMechanisms
	default:
		return fmt.Errorf("the server asks for a password (%T), which only the client knows", msg)
	}
	plus := slices.Contains(mechanisms, "SCRAM-SHA-256-PLUS")
	var endPoint []byte
	if tc, ok := nc.(*tls.Conn); ok && binding != "disable" {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			endPoint, _ = auth.TLSServerEndPoint(certs[0])
		}
	}
	if binding == "require" && (!plus || endPoint == nil) {
		return fmt.Errorf("channel binding required, and the server offers %v over this connection", mechanisms)
	}
	kc, err := auth.NewKeyClient(keys, endPoint, plus)
	if err != nil {
		return err
	}
	fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: kc.Mechanism(), Data: []byte(kc.First())})
	if err := fe.Flush(); err != nil {
		return err
	}
	serverFirst, err := receiveAuth[*pgproto3.AuthenticationSASLContinue](fe)
	if err != nil {
		return err
	}
	final, err := kc.Final(string(serverFirst.Data))
	if err != nil {
		return err
	}
	fe.Send(&pgproto3.SASLResponse{Data: []byte(final)})
	if err := fe.Flush(); err != nil {
		return err
	}
	serverFinal, err := receiveAuth[*pgproto3.AuthenticationSASLFinal](fe)
	if err != nil {
		return err
	}
	if err := kc.Verify(string(serverFinal.Data)); err != nil {
		return err
	}
	_, err = receiveAuth[*pgproto3.AuthenticationOk](fe)
	return err
}

// receiveAuth reads the next message of the authentication exchange,
// which must be an M or the server's error.
func receiveAuth[M pgproto3.BackendMessage](fe *pgproto3.Frontend) (M, error) {
	var zero M
	msg, err := fe.Receive()
	if err != nil {
		return zero, err
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); ok {
		return zero, pgconn.ErrorResponseToPgError(e)
	}
	m, ok := msg.(M)
	if !ok {
		return zero, fmt.Errorf("unexpected message %T during SCRAM", msg)
	}
	return m, nil
}
