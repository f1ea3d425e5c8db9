// Package demodata fills an AI Answer Ninja database with plausible sample
// data, set-based (INSERT ... SELECT over generate_series), so a million
// call records over a year load in a minute or two rather than hours of
// row-by-row inserts. `make demo` uses it through `pgninja demo-data`.
//
// It is safe to run again: users, spam profiles and the other reference
// rows are keyed by deterministic phone numbers and inserted ON CONFLICT DO
// NOTHING, and call records are only added up to the requested total.
package demodata
