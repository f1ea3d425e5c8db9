package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/libpq"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/jackc/pgx/v5/pgconn"
)

// Target says where and as whom a pool's connections log in.
type Target struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// SSLMode is libpq's sslmode towards the server, SSLFiles the files
	// its TLS uses.
	SSLMode        string
	SSLFiles       libpq.SSLFiles
	ConnectTimeout time.Duration
	// Keys log in without a password, as the client whose SCRAM login
	// gave them away (see auth.Keys); used when Password is empty.
	Keys auth.Keys
}

// usesKeys: t logs in with Keys, having no password.
func (t Target) usesKeys() bool { return t.Password == "" && t.Keys.Known() }

// Addr is host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// ConnString is the libpq keyword/value string for t.
func (t Target) ConnString() string {
	q := libpq.Quote
	sslmode := t.SSLMode
	if sslmode == "" {
		sslmode = "prefer"
	}
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=%s",
		q(t.Host), t.Port, q(t.Database), q(t.User), q(t.Password), sslmode) + t.SSLFiles.Params()
}

// Dial opens and hijacks one server connection. A server's own refusal
// (wrong password, missing database) comes back as its *pgconn.PgError so
// the client sees the server's SQLSTATE; anything else is 08006.
func Dial(ctx context.Context, t Target) (*Conn, error) {
	if t.usesKeys() {
		return dialWithKeys(ctx, t)
	}
	cfg, err := pgconn.ParseConfig(t.ConnString())
	if err != nil {
		return nil, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure, "pgninja: bad server settings")
	}
	// pgninja reads notices and notifications itself, from the raw stream.
	cfg.OnNotice = nil
	cfg.OnNotification = nil
	if t.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.ConnectTimeout)
		defer cancel()
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure,
			"pgninja: could not connect to server %s", t.Addr()).WithDetail(err.Error())
	}
	// pgconn starts a background reader when a write is slow (under load,
	// during the login exchange), and that reader stays blocked in a read
	// until data arrives. Hijacked without this, it stole the answer to
	// the first request on the connection, and that client waited for
	// ever. SyncConn waits until no background read is left; on a quiet
	// connection it costs nothing.
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.Background())
		return nil, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure,
			"pgninja: could not connect to server %s", t.Addr()).WithDetail(err.Error())
	}
	hj, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure, "pgninja: hijack server connection")
	}
	return newConn(hj, t.Addr()), nil
}
