// Package sidecar is the maintenance loop that runs beside the proxy in
// `pgninja serve`: partition management, encrypted backups verified by a
// test restore, and the dashboard statistics refresh, each on its own cron
// schedule. The same wiring (targets, stores, keys) backs the
// `pgninja partitions` and `pgninja backup` commands.
//
// Every job's outcome goes to the log and to Prometheus metrics (last
// success time, duration, size, failures) on the registerer passed to New,
// for the alerting rules.
package sidecar
