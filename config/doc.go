// Package config loads, overrides and validates pgninja's configuration.
//
// A Config is read from YAML, then command-line overrides and PGNINJA_*
// environment variables are applied (in that order, so the environment wins),
// defaults are filled in, and the whole result is validated at once. Every
// problem is reported with the dotted path of the field it concerns, so a bad
// reload names what is wrong and the running configuration stays in place.
package config
