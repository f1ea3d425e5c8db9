// Package sealed is the encrypted stream format of pgninja's backups: the
// compressed dump is cut into chunks, each sealed with AES-256-GCM, so a
// backup of any size is encrypted and decrypted in constant memory and any
// change, reordering or truncation is detected.
//
// Layout (all integers big-endian):
//
//	header  magic "PGNJSEAL" | version u8 | chunk size u32 | key id [8] |
//	        salt [32] | nonce prefix [4]
//	chunk*  u32 (bit 31: final, bits 0..30: sealed length) | sealed bytes
//
// A per-file key is derived from the master key with HKDF-SHA256 and the
// random salt, so nonces never repeat across files even though they are a
// plain counter within one: nonce = prefix | chunk counter (u64). Every
// chunk's additional data is header | counter | final flag: a chunk moved,
// dropped or flagged final early fails authentication, and a stream that
// ends without a final chunk is reported as truncated.
package sealed
