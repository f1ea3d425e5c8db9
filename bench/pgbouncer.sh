# bench/pgbouncer.sh — sourced by bench/run.sh and bench/callgrind.sh, so
# that every PgBouncer the benchmarks measure is configured alike.

# write_pgbouncer_ini DIR PORT MODE MAX_CLIENTS: DIR/pgbouncer.ini and
# DIR/userlist.txt for PgBouncer on 127.0.0.1:PORT in front of the test
# bed's primary ($PRIMARY_PORT, database $DB), pool mode MODE with
# $POOL_SIZE server connections and no reserve, trust for clients and
# plain TCP to the server, as pgninja is configured beside it. Callers
# append what is theirs (client TLS, say).
write_pgbouncer_ini() {
	local d="$1" port="$2" mode="$3" max_clients="$4"
	printf '"postgres" "postgres"\n' >"$d/userlist.txt"
	cat >"$d/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=$PRIMARY_PORT dbname=$DB user=postgres password=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
listen_backlog = 4096
auth_type = trust
auth_file = $d/userlist.txt
pool_mode = $mode
default_pool_size = $POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $max_clients
server_reset_query = DISCARD ALL
server_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
INI
}
