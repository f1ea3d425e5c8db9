// Package wire frames PostgreSQL protocol messages on buffered streams.
//
// The proxy forwards most messages without decoding them: it peeks at the
// 5-byte header (type and length), then copies the body from one buffered
// stream to the other in chunks, so that no per-message allocation happens
// and one TCP read is never mistaken for one message. Only the few messages
// the proxy must understand are decoded, with pgproto3.
package wire
