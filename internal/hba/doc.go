// Package hba reads a host-based authentication file in pg_hba.conf's
// format, as PgBouncer's auth_hba_file and Pgpool-II's pool_hba.conf do,
// and finds the rule for a client: the first line whose connection type,
// database, user and address match decides the authentication method, or
// rejects the client.
//
// It takes the subset a proxy can honour: types local, host, hostssl and
// hostnossl; databases and users as all, sameuser (databases), or
// comma-separated names; addresses as all, CIDR, or an address and a
// mask; methods trust, reject, md5, scram-sha-256, peer (on local lines)
// and cert (on hostssl lines), without an ident map, and the clientcert
// option. Anything else
// (groups, @files, host names, other methods, options) is an error that
// names its line, rather than a rule that silently matches differently
// from PostgreSQL's.
package hba
