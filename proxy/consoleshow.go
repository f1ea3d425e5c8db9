package proxy

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// consoleTable is one SHOW command's answer. Columns whose name is in
// numeric are int8, the rest text, as in PgBouncer's console.
type consoleTable struct {
	cols    []string
	numeric map[string]bool
	rows    [][]string
}

const (
	oidText = 25
	oidInt8 = 20
)

func newTable(numeric []string, cols ...string) *consoleTable {
	t := &consoleTable{cols: cols, numeric: map[string]bool{}}
	for _, c := range numeric {
		t.numeric[c] = true
	}
	return t
}

func (t *consoleTable) add(vals ...any) {
	row := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			row[i] = v
		case time.Time:
			if !v.IsZero() {
				row[i] = v.UTC().Format("2006-01-02 15:04:05 MST")
			}
		case bool:
			row[i] = strconv.FormatBool(v)
		default:
			row[i] = fmt.Sprint(v)
		}
	}
	t.rows = append(t.rows, row)
}

func (t *consoleTable) messages(tag string) []wire.Encoder {
	fields := make([]pgproto3.FieldDescription, len(t.cols))
	for i, c := range t.cols {
		oid := uint32(oidText)
		size := int16(-1)
		if t.numeric[c] {
			oid, size = oidInt8, 8
		}
		fields[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: oid, DataTypeSize: size, TypeModifier: -1}
	}
	msgs := make([]wire.Encoder, 0, len(t.rows)+2)
	msgs = append(msgs, &pgproto3.RowDescription{Fields: fields})
	for _, r := range t.rows {
		vals := make([][]byte, len(r))
		for i, v := range r {
			if v != "" || !t.numeric[t.cols[i]] {
				vals[i] = []byte(v)
			}
		}
		msgs = append(msgs, &pgproto3.DataRow{Values: vals})
	}
	return append(msgs, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

// consoleShow finds a SHOW command by its upper-case word.
func consoleShow(what string) (func(*Session) *consoleTable, bool) {
	switch what {
	case "HELP":
		return showHelp, true
	case "VERSION":
		return showVersion, true
	case "POOLS":
		return showPools, true
	case "CLIENTS":
		return showClients, true
	case "SERVERS":
		return showServers, true
	case "DATABASES":
		return showDatabases, true
	case "USERS":
		return showUsers, true
	case "BACKENDS":
		return showBackends, true
	case "LISTS":
		return showLists, true
	case "CONFIG":
		return showConfig, true
	case "STATS":
		return func(s *Session) *consoleTable { return showStats(s, statsTotalCols, statsAvgCols) }, true
	case "STATS_TOTALS":
		return func(s *Session) *consoleTable { return showStats(s, statsTotalsCols, nil) }, true
	case "STATS_AVERAGES":
		return func(s *Session) *consoleTable { return showStats(s, nil, statsAveragesCols) }, true
	case "TOTALS":
		return showTotals, true
	case "QUERIES":
		return showQueries, true
	case "HBA":
		return showHBA, true
	}
	return nil, false
}

// pgbouncerOnlyShows are PgBouncer's SHOW commands that have nothing to
// show in pgninja. They are refused as unsupported, saying why, rather
// than as unknown words.
var pgbouncerOnlyShows = map[string]struct{ reason, hint string }{
	"FDS":            {"it lists the sockets handed over in an online restart, which pgninja does not do", "SHOW CLIENTS and SHOW SERVERS list the connections."},
	"SOCKETS":        {"it shows the buffers of PgBouncer's event loop", "SHOW CLIENTS and SHOW SERVERS list the connections."},
	"ACTIVE_SOCKETS": {"it shows the buffers of PgBouncer's event loop", "SHOW CLIENTS and SHOW SERVERS list the connections."},
	"MEM":            {"pgninja keeps no object caches", "/metrics on the admin listener has the Go runtime's memory figures (go_memstats_*)."},
	"DNS_HOSTS":      {"pgninja keeps no DNS cache: it resolves a backend's host each time it connects", ""},
	"DNS_ZONES":      {"pgninja keeps no DNS cache: it resolves a backend's host each time it connects", ""},
}

func showHelp(*Session) *consoleTable {
	t := newTable(nil, "command", "description")
	for _, c := range [][2]string{
		{"SHOW HELP", "this list"},
		{"SHOW VERSION", "pgninja's version"},
		{"SHOW POOLS", "a row per server connection pool (backend, database, user): clients and server connections by state"},
		{"SHOW CLIENTS", "a row per client"},
		{"SHOW SERVERS", "a row per server connection, idle or lent to a client"},
		{"SHOW DATABASES", "the databases clients may use, with their connection caps"},
		{"SHOW USERS", "the users clients log in as, with their connection caps"},
		{"SHOW BACKENDS", "the servers, their roles, health and replication lag"},
		{"SHOW LISTS", "how many of each thing there is"},
		{"SHOW STATS", "per database: transactions, queries, bytes and times, in total and averaged over the last stats_period"},
		{"SHOW STATS_TOTALS", "SHOW STATS's totals, named as PgBouncer names them here"},
		{"SHOW STATS_AVERAGES", "SHOW STATS's averages, named as PgBouncer names them here"},
		{"SHOW TOTALS", "SHOW STATS summed over the databases, a row per number"},
		{"SHOW QUERIES", "per database, user and statement (literals as $n): calls, times in microseconds, rows, errors and slow calls, the most total time first (query_stats)"},
		{"RESET QUERIES", "empty SHOW QUERIES, to count afresh from now (admin_users only)"},
		{"SHOW CONFIG", "the running configuration, passwords left out, with defaults and what a reload changes"},
		{"SHOW HBA", "auth.hba_file's rules in force, in the order they are tried (PostgreSQL's pg_hba_file_rules)"},
		{"RELOAD", "re-read the config file, as SIGHUP does (admin_users only)"},
		{"SET key = value", "change one setting (a SHOW CONFIG key, or PgBouncer's name) until the next RELOAD (admin_users only)"},
		{"PAUSE [db]", "let transactions end, close idle server connections, hold new requests (admin_users only)"},
		{"RESUME [db]", "end a PAUSE (admin_users only)"},
		{"RECONNECT [db]", "close the server connections: idle ones now, lent ones when they come back (admin_users only)"},
		{"WAIT_CLOSE [db]", "wait until the server connections RECONNECT, KILL or RELOAD retired are closed (admin_users only)"},
		{"KILL [db]", "end the clients and server connections now, then hold new requests until RESUME (admin_users only)"},
		{"KILL_CLIENT pid", "end one client, by its pid in SHOW CLIENTS (admin_users only)"},
		{"DISABLE db", "refuse new logins to db (admin_users only)"},
		{"ENABLE db", "end a DISABLE (admin_users only)"},
		{"SHUTDOWN", "stop pgninja as SIGTERM does: transactions in flight may end first (admin_users only)"},
	} {
		t.add(c[0], c[1])
	}
	return t
}

func showVersion(*Session) *consoleTable {
	t := newTable(nil, "version")
	t.add(pgninjaVersion())
	return t
}

// pgninjaVersion is the module version and, for a build from a checkout,
// the commit it was built from.
func pgninjaVersion() string {
	v := "pgninja"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v += " " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + bi.GoVersion
}

// clientView is what the console shows of one session, read under its
// lock.
type clientView struct {
	user, db, app string
	mode          string
	addr          string
	connected     time.Time
	keyPID        uint32
	console       bool
	state         string
	home          *pool.Pool // the pool it is lent from when it asks
	lease         *pool.Conn
	server        pool.ConnInfo // of lease
	txStatus      byte
	pinned        string
	// For PgBouncer's columns: the proxy's end of the socket, TLS in
	// use, the last request, the wait for a server connection when
	// waiting, whether the session ends at its next safe point, and the
	// session's name for link.
	local, tls       string
	request, waiting time.Time
	closeNeeded      bool
	ptr              string
	peerPID          int32
}

func (s *Session) view() (clientView, bool) {
	// The cancel key is written under the keys' lock.
	s.srv.keys.mu.Lock()
	keyPID := s.keyPID
	s.srv.keys.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return clientView{}, false // still logging in
	}
	v := clientView{user: s.l.user.Name, db: s.l.dbName, app: s.l.appName, mode: s.l.mode,
		addr: s.c.Conn.RemoteAddr().String(), connected: s.connected, keyPID: keyPID,
		console: s.console != config.ConsoleNone, home: s.pool, lease: s.lease, txStatus: s.txStatus,
		local: s.c.Conn.LocalAddr().String(), tls: pool.TLSDescription(s.c.Conn), request: s.lastRequest,
		closeNeeded: s.draining, ptr: pool.PtrOf(s), peerPID: s.peerPID}
	if s.waiting {
		v.waiting = s.waitSince
	}
	switch {
	case v.console:
		v.state = "active"
	case s.heldByPause:
		v.state = "paused"
	case s.waiting:
		v.state = "waiting"
	case s.lease != nil:
		v.state = "active"
	default:
		v.state = "idle"
	}
	if s.lease != nil {
		v.server = s.lease.Info()
	}
	if s.pinned != 0 {
		v.pinned = s.pinned.String()
	}
	return v, true
}

// clientViews are every logged-in client's, in login order.
func (srv *Server) clientViews() []clientView {
	sessions := srv.sessionList()
	views := make([]clientView, 0, len(sessions))
	for _, s := range sessions {
		if v, ok := s.view(); ok {
			views = append(views, v)
		}
	}
	slices.SortFunc(views, func(a, b clientView) int {
		return cmp.Or(a.connected.Compare(b.connected), cmp.Compare(a.keyPID, b.keyPID))
	})
	return views
}

type keyedPool struct {
	key pool.Key
	p   *pool.Pool
}

func (srv *Server) sortedPools() []keyedPool {
	var out []keyedPool
	srv.pools.Each(func(k pool.Key, p *pool.Pool) { out = append(out, keyedPool{k, p}) })
	slices.SortFunc(out, func(a, b keyedPool) int {
		return cmp.Or(cmp.Compare(a.key.Database, b.key.Database), cmp.Compare(a.key.User, b.key.User),
			cmp.Compare(a.key.Backend, b.key.Backend))
	})
	return out
}

// showPools counts as PgBouncer does: a client is active when it holds a
// server connection or asks for nothing (it belongs to its primary pool
// then), waiting while queued for one; a server connection is active
// while lent, idle in the pool, and "other" when being opened, checked
// or reset.
func showPools(s *Session) *consoleTable {
	// PgBouncer's columns in its order, for the exporters and scripts
	// that read them, then pgninja's own.
	t := newTable([]string{"cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
		"sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us",
		"acquires", "waits", "timeouts", "dials", "dial_errors"},
		"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
		"sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
		"maxwait", "maxwait_us", "pool_mode", "backend", "acquires", "waits", "timeouts", "dials", "dial_errors")
	active := map[*pool.Pool]int{}
	held := map[*pool.Pool]int{} // by a PAUSE
	lent := map[*pool.Pool]int{}
	modes := map[*pool.Pool]string{}
	for _, v := range s.srv.clientViews() {
		if v.console {
			continue
		}
		p := v.home
		if v.lease != nil {
			p = v.lease.Pool()
			lent[p]++
		}
		switch v.state {
		case "paused":
			held[p]++
		case "waiting":
		default:
			active[p]++
		}
		if m, seen := modes[p]; !seen {
			modes[p] = v.mode
		} else if m != v.mode {
			modes[p] = "mixed"
		}
	}
	cfg := s.srv.settings.Load().cfg
	for _, kp := range s.srv.sortedPools() {
		st := kp.p.Stats()
		if _, seen := modes[kp.p]; !seen {
			// No client now: the mode a client of that database and
			// user would get (the pool names them as the server knows
			// them, the same names unless the config maps them).
			db, _ := cfg.Database(kp.key.Database)
			u, _ := cfg.User(kp.key.User)
			modes[kp.p] = cfg.PoolModeFor(db, u)
		}
		// A cancel is sent at once, under the session's lock, on a
		// connection of its own to the server running the query, which
		// stays lent until the cancel is out: so a cancel request in
		// flight is a client's active one, a server connection
		// forwarding it and a server being cancelled, and none waits.
		t.add(kp.key.Database, kp.key.User, active[kp.p], st.Waiting+held[kp.p], st.Cancelling, 0,
			lent[kp.p], st.Cancelling, st.Cancelling, st.Idle-st.IdleToCheck, st.IdleToCheck, st.Testing, st.Opening,
			int64(st.MaxWait/time.Second), (st.MaxWait % time.Second).Microseconds(), modes[kp.p],
			kp.key.Backend, st.Acquires, st.Waits, st.Timeouts, st.Dials, st.DialErrors)
	}
	return t
}

// pgbouncerConnColumns are the columns PgBouncer's SHOW CLIENTS and SHOW
// SERVERS begin with, in its order; pgninja's own follow.
var pgbouncerConnColumns = []string{"type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
	"connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls",
	"application_name"}

func connTable(extra ...string) *consoleTable {
	return newTable([]string{"port", "local_port", "wait", "wait_us", "close_needed", "remote_pid", "pid",
		"server_pid", "client_pid"}, append(slices.Clone(pgbouncerConnColumns), extra...)...)
}

// waitOf splits how long since start into PgBouncer's wait and wait_us.
func waitOf(start, now time.Time) (int64, int64) {
	if start.IsZero() {
		return 0, 0
	}
	d := now.Sub(start)
	return int64(d / time.Second), (d % time.Second).Microseconds()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func showClients(s *Session) *consoleTable {
	t := connTable("pool_mode", "backend", "server_pid", "tx_status", "pinned", "pid")
	keys := map[*pool.Pool]pool.Key{}
	for _, kp := range s.srv.sortedPools() {
		keys[kp.p] = kp.key
	}
	now := time.Now()
	for _, v := range s.srv.clientViews() {
		host, port := splitAddr(v.addr)
		localHost, localPort := splitAddr(v.local)
		var backend, serverPID string
		if v.lease != nil {
			backend = keys[v.lease.Pool()].Backend
			serverPID = strconv.FormatUint(uint64(v.server.PID), 10)
		}
		mode := v.mode
		if v.console {
			mode = "console"
		}
		wait, waitUS := waitOf(v.waiting, now)
		t.add("C", v.user, v.db, v.state, host, port, localHost, localPort, v.connected, v.request,
			wait, waitUS, boolInt(v.closeNeeded), v.ptr, v.server.Ptr, v.peerPID, v.tls, v.app,
			mode, backend, serverPID, string(rune(v.txStatus)), v.pinned, v.keyPID)
	}
	return t
}

func showServers(s *Session) *consoleTable {
	t := connTable("backend", "idle_since", "pid", "client_pid")
	lent := map[*pool.Pool][]clientView{}
	for _, v := range s.srv.clientViews() {
		if v.lease != nil {
			lent[v.lease.Pool()] = append(lent[v.lease.Pool()], v)
		}
	}
	for _, kp := range s.srv.sortedPools() {
		row := func(state string, c pool.ConnInfo, v *clientView) {
			host, port := splitAddr(c.Addr)
			localHost, localPort := splitAddr(c.Local)
			request, link, app, client := c.IdleSince, "", "", ""
			if v != nil {
				request, link, app = v.request, v.ptr, v.app
				client = strconv.FormatUint(uint64(v.keyPID), 10)
			}
			t.add("S", kp.key.User, kp.key.Database, state, host, port, localHost, localPort, c.Created, request,
				0, 0, boolInt(c.Retired), c.Ptr, link, c.PID, c.TLS, app,
				kp.key.Backend, c.IdleSince, c.PID, client)
		}
		for _, v := range lent[kp.p] {
			info := v.server
			info.Retired = kp.p.Retired(v.lease)
			row("active", info, &v)
		}
		for _, c := range kp.p.IdleConns() {
			// PgBouncer's used: idle, but checked before it is lent.
			state := "idle"
			if c.DueCheck {
				state = "used"
			}
			row(state, c, nil)
		}
	}
	return t
}

func showDatabases(s *Session) *consoleTable {
	cfg := s.srv.settings.Load().cfg
	primary := cfg.Primary()
	t := newTable([]string{"port", "pool_size", "min_pool_size", "reserve_pool", "max_connections", "current_connections"},
		"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool", "pool_mode",
		"max_connections", "current_connections", "paused", "disabled")
	names := make([]string, 0, len(cfg.Databases))
	for name := range cfg.Databases {
		names = append(names, name)
	}
	// A database "*" serves, once paused or disabled by name, gets a row
	// of its own that says so.
	for _, name := range append(s.srv.pauses.names(), s.srv.disabled.names()...) {
		if _, listed := cfg.Databases[name]; !listed && name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		db, _ := cfg.Database(name)
		// max_connections is the server database's cap, and
		// current_connections what counts against it on every backend.
		var capped, current any = cfg.MaxDBConnectionsFor(db.DBName), s.srv.pools.DatabaseUse(db.DBName).Used
		if name == "*" {
			db.DBName = "" // each client's own
			capped, current = cfg.DatabaseCap(cfg.Databases["*"]), ""
		}
		// force_user: a database entry names no server user here (a
		// user's server_user does, in SHOW USERS' terms).
		t.add(name, primary.Host, primary.Port, db.DBName, "", cfg.PoolSizeFor(db, config.User{}), cfg.Pool.MinSize,
			cfg.Pool.ReserveSize, cfg.PoolModeFor(db, config.User{}), capped, current,
			s.srv.pauses.paused(name), s.srv.disabled.has(name))
	}
	return t
}

func showUsers(s *Session) *consoleTable {
	st := s.srv.settings.Load()
	cfg := st.cfg
	t := newTable([]string{"pool_size", "max_user_connections", "current_connections"},
		"name", "auth", "pool_mode", "pool_size", "max_user_connections", "current_connections", "console")
	for _, u := range cfg.Users {
		console := ""
		switch cfg.ConsoleAccessFor(u.Name) {
		case config.ConsoleAdmin:
			console = "admin"
		case config.ConsoleStats:
			console = "stats"
		}
		var size any = ""
		if u.PoolSize > 0 {
			size = u.PoolSize
		}
		// Both are the server user's, which users may share.
		server := u.ServerName()
		t.add(u.Name, st.method(u), u.PoolMode, size, cfg.MaxUserConnectionsFor(server),
			s.srv.pools.UserUse(server).Used, console)
	}
	return t
}

// showBackends is Pgpool-II's SHOW pool_nodes: what the health checks
// last found, or the configuration alone when routing is off.
func showBackends(s *Session) *consoleTable {
	cfg := s.srv.settings.Load().cfg
	t := newTable([]string{"port", "weight", "lag_bytes"},
		"name", "host", "port", "role", "primary", "healthy", "in_recovery", "weight", "replay_lsn",
		"lag_bytes", "lag", "checked_at")
	for _, b := range cfg.Backends {
		if s.srv.router == nil {
			t.add(b.Name, b.Host, b.Port, b.Role, b.Role == config.RolePrimary, "", "", b.Weight, "", "", "", "")
			continue
		}
		st, ok := s.srv.router.Backends().Snapshot().Get(b.Name)
		if !ok {
			t.add(b.Name, b.Host, b.Port, b.Role, "", "", "", b.Weight, "", "", "", "")
			continue
		}
		var lsn, lagBytes, lag string
		if st.ReplayLSN != 0 {
			lsn = st.ReplayLSN.String()
		}
		if !st.Primary {
			lagBytes, lag = strconv.FormatInt(st.LagBytes, 10), st.Lag.String()
		}
		t.add(b.Name, b.Host, b.Port, b.Role, st.Primary, st.Healthy, st.InRecovery, st.Weight, lsn,
			lagBytes, lag, st.CheckedAt)
	}
	return t
}

// The columns of PgBouncer's SHOW STATS, and of its STATS_TOTALS and
// STATS_AVERAGES, which name the same numbers differently; monitoring
// (pgbouncer_exporter among others) reads them by these names. The
// totals are, in order: server assignments, transactions, queries, bytes
// received and sent, transaction, query and wait time in microseconds.
// The averages are the same without the assignments: counts and bytes
// per second, times per transaction, query and assignment.
var (
	statsTotalCols = []string{"total_server_assignment_count", "total_xact_count", "total_query_count",
		"total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time"}
	statsAvgCols = []string{"avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
		"avg_xact_time", "avg_query_time", "avg_wait_time"}
	statsTotalsCols = []string{"server_assignment_count", "xact_count", "query_count",
		"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time"}
	statsAveragesCols = []string{"xact_count", "query_count", "bytes_received", "bytes_sent",
		"xact_time", "query_time", "wait_time"}
	// SHOW TOTALS names a row per number (bytes received from clients are
	// "client bytes" there).
	totalsNames = []string{"total_server_assignment_count", "total_xact_count", "total_query_count",
		"total_client_bytes", "total_server_bytes", "total_xact_time", "total_query_time", "total_wait_time",
		"avg_xact_count", "avg_query_count", "avg_client_bytes", "avg_server_bytes",
		"avg_xact_time", "avg_query_time", "avg_wait_time"}
)

// showStats has a row per database: totals since start under totalCols
// and averages over the last sample period under avgCols (either nil).
func showStats(s *Session, totalCols, avgCols []string) *consoleTable {
	cols := slices.Concat(totalCols, avgCols)
	t := newTable(cols, append([]string{"database"}, cols...)...)
	all := s.srv.statsTotals()
	for _, db := range slices.Sorted(maps.Keys(all)) {
		row := []any{db}
		if totalCols != nil {
			for _, v := range all[db].values() {
				row = append(row, v)
			}
		}
		if avgCols != nil {
			for _, v := range s.srv.averages(db) {
				row = append(row, v)
			}
		}
		t.add(row...)
	}
	return t
}

// showQueries lists query_stats' entries, the most total time first;
// times in microseconds, from the request's sending to its
// ReadyForQuery; rows as the servers' CommandCompletes counted them.
func showQueries(s *Session) *consoleTable {
	t := newTable([]string{"calls", "total_time", "mean_time", "min_time", "max_time", "rows", "errors", "slow"},
		"database", "user", "calls", "total_time", "mean_time", "min_time", "max_time", "rows", "errors", "slow", "query")
	for _, r := range s.srv.queries.rows() {
		t.add(r.key.db, r.key.user, r.calls, r.totalUS, r.totalUS/r.calls, r.minUS, r.maxUS, r.rows, r.errors, r.slow, r.query)
	}
	return t
}

// showTotals is SHOW STATS over all databases together.
func showTotals(s *Session) *consoleTable {
	t := newTable([]string{"value"}, "name", "value")
	avg := s.srv.allAverages()
	vals := append(sumTotals(s.srv.statsTotals()).values(), avg[:]...)
	for i, name := range totalsNames {
		t.add(name, vals[i])
	}
	return t
}

// showConfig lists the running configuration as dotted keys, as the
// config file and --set name them, in PgBouncer's four columns: the
// value, the value an empty file gives, and whether a reload applies a
// change (yes) or only a restart (no). Passwords and DSNs (which may
// hold one) show only whether they are set.
func showConfig(s *Session) *consoleTable {
	t := newTable(nil, "key", "value", "default", "changeable")
	entries, err := flattenConfig(s.srv.settings.Load().cfg, true)
	if err != nil {
		t.add("error", err.Error(), "", "no")
		return t
	}
	defaults := map[string]string{}
	if def, err := flattenConfig(config.Defaults(), true); err == nil {
		for _, e := range def {
			defaults[e.key] = e.value
		}
	}
	for _, e := range entries {
		changeable := "yes"
		if restartSetting(e.key) != "" {
			changeable = "no"
		}
		t.add(e.key, e.value, defaults[e.key], changeable)
	}
	return t
}

// showLists has PgBouncer's rows in its order, then pgninja's own
// (backends, idle_servers). PgBouncer's free_clients and free_servers
// count the unused slots of its object caches, which pgninja does not
// keep, and it resolves no host names itself: those rows are 0.
func showLists(s *Session) *consoleTable {
	cfg := s.srv.settings.Load().cfg
	t := newTable([]string{"items"}, "list", "items")
	pools, servers, idle := 0, 0, 0
	s.srv.pools.Each(func(_ pool.Key, p *pool.Pool) {
		st := p.Stats()
		pools++
		servers += st.Total
		idle += st.Idle
	})
	for _, row := range []struct {
		list  string
		items int64
	}{
		{"databases", int64(len(cfg.Databases))},
		{"users", int64(len(cfg.Users))},
		{"pools", int64(pools)},
		{"free_clients", 0},
		{"used_clients", s.srv.clients.Load()},
		{"login_clients", int64(s.srv.loggingIn())},
		{"free_servers", 0},
		{"used_servers", int64(servers)},
		{"dns_names", 0},
		{"dns_zones", 0},
		{"dns_queries", 0},
		{"dns_pending", 0},
		{"backends", int64(len(cfg.Backends))},
		{"idle_servers", int64(idle)},
	} {
		t.add(row.list, row.items)
	}
	return t
}

// loggingIn is how many clients have connected and not yet logged in.
func (srv *Server) loggingIn() int {
	n := 0
	for _, s := range srv.sessionList() {
		s.mu.Lock()
		if s.l == nil {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// splitAddr splits a TCP address; a unix socket's has no port.
func splitAddr(addr string) (host, port string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return host, port
}

// Show runs the console's SHOW what (CLIENTS, SERVERS, POOLS, ...; any
// case) for the admin HTTP surface: a map per row from column name to
// value, integers as numbers and a number the console leaves empty as
// null. ok is false for a SHOW the console does not have.
func (srv *Server) Show(what string) (rows []map[string]any, ok bool) {
	show, ok := consoleShow(strings.ToUpper(what))
	if !ok {
		return nil, false
	}
	// The SHOW commands read the server, not the session asking.
	t := show(&Session{srv: srv})
	rows = make([]map[string]any, 0, len(t.rows))
	for _, r := range t.rows {
		row := make(map[string]any, len(t.cols))
		for i, col := range t.cols {
			switch n, err := strconv.ParseInt(r[i], 10, 64); {
			case !t.numeric[col]:
				row[col] = r[i]
			case err == nil:
				row[col] = n
			case r[i] == "":
				row[col] = nil
			default:
				row[col] = r[i]
			}
		}
		rows = append(rows, row)
	}
	return rows, true
}
