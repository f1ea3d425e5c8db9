// Package testcert makes throwaway self-signed certificates for tests of
// TLS: the certificate itself, or PEM files a config can name.
package testcert
