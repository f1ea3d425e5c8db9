package proxy

import (
	"strings"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The admin console is PgBouncer's: a client that logs in to the database
// pgninja (or pgbouncer, PgBouncer's name for it) talks
// to the proxy itself, in simple queries: SHOW POOLS, SHOW CLIENTS,
// RELOAD and the rest (SHOW HELP lists them). admin_users may run every
// command, stats_users the SHOW commands.

// consoleLogin authenticates a console client and sends everything up to
// its first ReadyForQuery. The user is known; access is checked before
// the password, as PostgreSQL checks pg_hba.conf first.
func (s *Session) consoleLogin(pkt *startupPacket, u config.User, secret auth.Secret, dbName string, st *settings) error {
	userName := pkt.params["user"]
	access := st.cfg.ConsoleAccessFor(userName)
	if access == config.ConsoleNone {
		return pgerr.Fatal(pgerr.InsufficientPrivilege,
			"user %q may not use the admin console: it is in neither admin_users nor stats_users", userName)
	}
	method, err := st.authMethod(s.c.Conn, dbName, userName, u)
	if err != nil {
		return err
	}
	if n := s.srv.clients.Add(1); n > int64(st.cfg.MaxClientConn) {
		s.srv.clients.Add(-1)
		return pgerr.Fatal(pgerr.TooManyConnections, "sorry, too many clients already (max_client_conn %d)", st.cfg.MaxClientConn)
	}
	s.countedClient = true
	if _, err := s.srv.auth.Check(s.c, method, userName, secret, st.endPointFor(s.c.Conn)); err != nil {
		return err
	}
	s.mu.Lock()
	s.console = access
	s.l = &login{user: u, dbName: dbName, appName: pkt.params["application_name"]}
	s.mu.Unlock()
	// Its own key, registered so that no client can take it; a cancel
	// for the console has nothing to stop.
	s.srv.keys.register(s, 0)
	out := loginOK()
	for _, p := range [][2]string{
		{"server_version", consoleServerVersion},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"application_name", s.l.appName},
	} {
		out = appendParameterStatus(out, p[0], p[1])
	}
	return s.loggedIn(out)
}

// consoleServerVersion reads as a version to libpq (PQserverVersion), so
// psql starts without complaint.
const consoleServerVersion = "15.0 (pgninja admin console)"

// serveConsole is the console's loop: one command per simple query. The
// extended protocol is refused until the client's Sync, as PgBouncer's
// console refuses it.
func (s *Session) serveConsole() error {
	refused := false
	for {
		typ, body, err := s.c.Receive()
		if err != nil {
			return s.readFailed(err)
		}
		switch typ {
		case 'X':
			return nil
		case 'Q':
			if err := s.consoleQuery(strings.TrimRight(string(body), "\x00")); err != nil {
				return err
			}
		case 'S':
			if refused {
				refused = false
				if err := s.c.sendError(pgerr.New(pgerr.FeatureNotSupported,
					"the admin console takes simple queries only"), 'I'); err != nil {
					return err
				}
				continue
			}
			if err := s.c.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'}); err != nil {
				return err
			}
		case 'F':
			// A FunctionCall is answered at once; no Sync follows it.
			if err := s.c.sendError(pgerr.New(pgerr.FeatureNotSupported,
				"the admin console takes simple queries only"), 'I'); err != nil {
				return err
			}
		case 'P', 'B', 'D', 'E', 'C', 'H':
			refused = true
		case 'd', 'c', 'f':
			// Outside COPY these are ignored, as PostgreSQL ignores them.
		default:
			return pgerr.Fatal(pgerr.ProtocolViolation, "invalid frontend message type %d", typ)
		}
	}
}

// consoleQuery runs one query string: statements separated by semicolons,
// each answered in turn, as psql -c 'SHOW POOLS; SHOW CLIENTS' expects.
// The first error ends the string, as in PostgreSQL.
func (s *Session) consoleQuery(q string) error {
	var msgs []wire.Encoder
	ran := false
	for _, stmt := range splitStatements(q) {
		words := strings.Fields(stmt)
		if len(words) == 0 {
			continue
		}
		ran = true
		out, err := s.consoleCommand(words, stmt)
		if err != nil {
			msgs = append(msgs, pgerr.Response(err))
			break
		}
		msgs = append(msgs, out...)
	}
	if !ran {
		msgs = append(msgs, &pgproto3.EmptyQueryResponse{})
	}
	msgs = append(msgs, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	err := s.c.SendAll(msgs...)
	if then := s.consoleThen; then != nil {
		s.consoleThen = nil
		then()
	}
	return err
}

// consoleCommand answers one statement, given as its words and as sent
// (for SET's quoted values, whose spaces count).
func (s *Session) consoleCommand(words []string, stmt string) ([]wire.Encoder, error) {
	verb := strings.ToUpper(words[0])
	args := words[1:]
	if out, ok, err := s.consoleControl(verb, args); ok {
		return out, err
	}
	switch verb {
	case "SET":
		// The statement after its first word, SET itself.
		rest := strings.TrimSpace(stmt)
		return s.consoleSet(strings.TrimSpace(rest[len(words[0]):]))
	case "SHOW":
		if len(args) != 1 {
			return nil, pgerr.New(pgerr.SyntaxError, "SHOW takes one word: SHOW HELP lists them")
		}
		what := strings.ToUpper(args[0])
		show, ok := consoleShow(what)
		if why, theirs := pgbouncerOnlyShows[what]; !ok && theirs {
			err := pgerr.New(pgerr.FeatureNotSupported, "SHOW %s is PgBouncer's: %s", what, why.reason)
			if why.hint != "" {
				err = err.WithHint(why.hint)
			}
			return nil, err
		}
		if !ok {
			return nil, pgerr.New(pgerr.SyntaxError, "unknown SHOW %s: SHOW HELP lists what there is", args[0])
		}
		return show(s).messages("SHOW"), nil
	case "RELOAD":
		if err := s.consoleAdminOnly(verb); err != nil {
			return nil, err
		}
		if len(args) != 0 {
			return nil, pgerr.New(pgerr.SyntaxError, "RELOAD takes no arguments")
		}
		if s.srv.reload == nil {
			return nil, pgerr.New(pgerr.FeatureNotSupported, "this pgninja was started without a config file to reload")
		}
		if err := s.srv.reload(); err != nil {
			return nil, pgerr.New(pgerr.ConfigFileError, "config reload rejected; the running config stays: %v", err)
		}
		return []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte("RELOAD")}}, nil
	case "RESET":
		if err := s.consoleAdminOnly(verb); err != nil {
			return nil, err
		}
		if len(args) != 1 || !strings.EqualFold(args[0], "QUERIES") {
			return nil, pgerr.New(pgerr.SyntaxError, "RESET takes one word, QUERIES: it empties query_stats").
				WithHint("Settings change with SET; RELOAD brings back the config file's.")
		}
		s.srv.resetQueries()
		return []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte(verb)}}, nil
	case "RECONNECT":
		if err := s.consoleAdminOnly(verb); err != nil {
			return nil, err
		}
		db, err := consoleDatabase(s, verb, args)
		if err != nil {
			return nil, err
		}
		for _, kp := range s.srv.poolsOf(db) {
			kp.p.Retire()
		}
		return []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte(verb)}}, nil
	case "PAUSE", "RESUME":
		if err := s.consoleAdminOnly(verb); err != nil {
			return nil, err
		}
		db, err := consoleDatabase(s, verb, args)
		if err != nil {
			return nil, err
		}
		if verb == "PAUSE" {
			if err := s.consolePause(db); err != nil {
				return nil, err
			}
		} else if !s.srv.pauses.resume(db) {
			return nil, pgerr.New(pgerr.ObjectNotInPrerequisiteState, "%s is not paused", pauseScope(db))
		}
		return []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte(verb)}}, nil
	}
	return nil, pgerr.New(pgerr.SyntaxError, "unknown command %q: SHOW HELP lists the commands", words[0])
}

// consoleDatabase reads the optional database argument of PAUSE, RESUME,
// RECONNECT and the like: "" means every database.
func consoleDatabase(s *Session, verb string, args []string) (string, error) {
	if len(args) > 1 {
		return "", pgerr.New(pgerr.SyntaxError, "%s takes at most a database name", verb)
	}
	if len(args) == 0 {
		return "", nil
	}
	db := strings.Trim(args[0], `"`)
	if _, ok := s.srv.settings.Load().cfg.Database(db); !ok {
		return "", pgerr.New(pgerr.InvalidCatalogName, "database %q does not exist", db)
	}
	return db, nil
}

// consoleAdminOnly refuses a command that changes something to a
// stats_users member.
func (s *Session) consoleAdminOnly(verb string) error {
	if s.console == config.ConsoleAdmin {
		return nil
	}
	return pgerr.New(pgerr.InsufficientPrivilege, "%s needs admin access (admin_users)", verb)
}

// splitStatements cuts a console query string at the semicolons outside
// quotes, so that a SET value may hold one ('DISCARD ALL; SELECT 1').
// A doubled quote inside quotes closes and reopens them, which leaves
// the state as it was.
func splitStatements(q string) []string {
	var stmts []string
	var quote byte
	start := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ';':
			stmts = append(stmts, q[start:i])
			start = i + 1
		}
	}
	return append(stmts, q[start:])
}
