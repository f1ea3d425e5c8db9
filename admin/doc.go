// Package admin serves pgninja's HTTP surface: Prometheus metrics, a
// liveness probe and JSON views of pools and sessions.
package admin
