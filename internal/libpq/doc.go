// Package libpq writes the pieces of libpq keyword/value connection
// strings that the proxy's server connections share: quoted values, and
// the TLS files (sslrootcert, sslcert, sslkey) a server login uses, so
// that the pools, the health checks and the sidecar reach the servers
// the same way.
package libpq
