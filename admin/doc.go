// Package admin serves pgninja's HTTP surface: Prometheus metrics, a
// liveness probe, profiles, and JSON views of the pools, of each client
// database's traffic (/stats), of the servers routing checks (/backends)
// and of every SHOW of the admin console (/show/{what}). The views other
// than the pools come from the parts that own them, through Views, so
// admin depends on none of them.
package admin
