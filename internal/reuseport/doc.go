// Package reuseport opens TCP listeners that other processes may share
// (SO_REUSEPORT), so that a new pgninja can take connections before the
// old one stops taking them.
package reuseport
