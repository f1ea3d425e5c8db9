package proxy

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The console's SET key = value changes one setting of the running
// configuration, as PgBouncer's does. The changed configuration is
// validated whole and taken on as a RELOAD takes the file's: by new
// logins and new leases. Like PgBouncer's, it lasts until the next
// RELOAD or SIGHUP, which read the file again.

// pgbouncerSettings maps PgBouncer's names of settings pgninja has to
// pgninja's keys, so that SET default_pool_size = 50 works for its users.
// seconds: PgBouncer takes the value in seconds, pgninja a duration.
var pgbouncerSettings = map[string]struct {
	key     string
	seconds bool
}{
	"default_pool_size":        {"pool.max_size", false},
	"min_pool_size":            {"pool.min_size", false},
	"reserve_pool_size":        {"pool.reserve_size", false},
	"reserve_pool_timeout":     {"pool.reserve_timeout", true},
	"pool_mode":                {"pool.mode", false},
	"max_db_connections":       {"pool.max_db_connections", false},
	"max_user_connections":     {"pool.max_user_connections", false},
	"max_prepared_statements":  {"pool.max_prepared_statements", false},
	"server_reset_query":       {"pool.reset_query", false},
	"server_idle_timeout":      {"pool.idle_timeout", true},
	"server_lifetime":          {"pool.max_lifetime", true},
	"server_connect_timeout":   {"pool.connect_timeout", true},
	"server_check_delay":       {"pool.health_check_after", true},
	"query_wait_timeout":       {"pool.acquire_timeout", true},
	"query_timeout":            {"pool.query_timeout", true},
	"idle_transaction_timeout": {"pool.idle_transaction_timeout", true},
	"client_idle_timeout":      {"pool.client_idle_timeout", true},
	"stats_period":             {"stats_period", true},
}

// consoleSet runs SET; stmt is what follows the word SET.
func (s *Session) consoleSet(stmt string) ([]wire.Encoder, error) {
	if err := s.consoleAdminOnly("SET"); err != nil {
		return nil, err
	}
	key, val, err := parseConsoleSet(stmt)
	if err != nil {
		return nil, err
	}
	if alias, ok := pgbouncerSettings[key]; ok {
		key = alias.key
		if secs, err := strconv.ParseFloat(val, 64); err == nil && alias.seconds {
			val = time.Duration(secs * float64(time.Second)).String()
		}
	}
	if restartSetting(key) != "" {
		return nil, pgerr.New(pgerr.CantChangeRuntimeParam, "%s cannot be changed while pgninja runs", key).
			WithHint("Change it in the config file and restart; SHOW CONFIG marks such settings changeable = no.")
	}
	if err := s.srv.set(key, val); err != nil {
		var fe *config.FieldError
		if errors.As(err, &fe) && fe.Field == key && fe.Msg == config.NoSuchSetting {
			return nil, pgerr.New(pgerr.UndefinedObject, "unrecognized configuration parameter %q", key).
				WithHint("SHOW CONFIG lists the settings by the keys SET takes; lists and maps are set in the file.")
		}
		return nil, pgerr.New(pgerr.InvalidParameterValue, "SET %s rejected; the running config stays: %v", key, err)
	}
	s.srv.log.Info("config changed on the console", "key", key, "value", val, "user", s.l.user.Name)
	return []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte("SET")}}, nil
}

// parseConsoleSet reads "key = value", "key=value" or "key TO value"; a
// value in single quotes keeps its spaces, and a quote inside it is
// written twice, as in SQL. Keys are matched without regard to case, as
// in PgBouncer.
func parseConsoleSet(stmt string) (key, val string, err error) {
	stmt = strings.TrimSpace(stmt)
	var ok bool
	if f := strings.Fields(stmt); len(f) >= 3 && strings.EqualFold(f[1], "TO") {
		after := strings.TrimSpace(stmt[len(f[0]):])
		key, val, ok = f[0], after[len(f[1]):], true
	} else {
		key, val, ok = strings.Cut(stmt, "=")
	}
	key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
	if !ok || key == "" || strings.ContainsAny(key, " \t") || val == "" {
		return "", "", pgerr.New(pgerr.SyntaxError, "SET takes key = value, as SHOW CONFIG names the keys")
	}
	if val[0] == '\'' {
		inner := strings.TrimSuffix(val[1:], "'")
		if len(val) < 2 || val[len(val)-1] != '\'' || strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
			return "", "", pgerr.New(pgerr.SyntaxError, "unterminated quoted string in SET %s", key)
		}
		val = strings.ReplaceAll(inner, "''", "'")
	}
	return key, val, nil
}

// set changes one setting of the running configuration (see
// config.Config.With) and takes the result on as Reload does.
func (s *Server) set(key, val string) error {
	s.configMu.Lock()
	defer s.configMu.Unlock()
	cfg, err := s.settings.Load().cfg.With(key, val)
	if err != nil {
		return err
	}
	return s.reloadLocked(cfg)
}
