package sealed

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the master key length: AES-256.
const KeySize = 32

// EnvKey is the environment variable that holds the backup key; it wins
// over a key file so that a secret manager can inject it.
const EnvKey = "PGNINJA_BACKUP_KEY"

// ErrNoKey means neither the environment variable nor a key file is set.
var ErrNoKey = errors.New("no backup key: set " + EnvKey + " or sidecar.backup.key_file")

// Key is a master key. Its ID is public (it is written into every file
// header and manifest) so a wrong key is named as such instead of showing
// up as an authentication failure.
type Key struct {
	secret [KeySize]byte
	id     [8]byte
}

// ParseKey accepts 64 hex digits or the standard, URL or raw base64
// encoding of 32 bytes; surrounding whitespace is ignored.
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		raw = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
				raw = b
				break
			}
		}
	}
	if raw == nil {
		return nil, errors.New("backup key must be 32 bytes as 64 hex digits or base64")
	}
	return NewKey(raw)
}

// NewKey wraps 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("backup key must be %d bytes, have %d", KeySize, len(raw))
	}
	k := &Key{}
	copy(k.secret[:], raw)
	m := hmac.New(sha256.New, k.secret[:])
	m.Write([]byte("pgninja key id v1"))
	copy(k.id[:], m.Sum(nil))
	return k, nil
}

// LoadKey reads the key from envValue when it is non-empty, else from
// file. It says where it looked when neither is set.
func LoadKey(envValue, file string) (*Key, error) {
	if envValue != "" {
		k, err := ParseKey(envValue)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return k, nil
	}
	if file == "" {
		return nil, ErrNoKey
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	k, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// ID is the key's public fingerprint in hex.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// derive returns a sub-key for one purpose (and, for files, one salt), so
// the master key itself never touches data.
func (k *Key) derive(salt []byte, purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.secret[:], salt, purpose, KeySize)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce; ours is fixed
	}
	return out
}

// MAC signs b (a manifest) with a key derived for that purpose.
func (k *Key) MAC(b []byte) string {
	m := hmac.New(sha256.New, k.derive(nil, "pgninja manifest mac v1"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// CheckMAC reports whether mac is MAC(b), in constant time.
func (k *Key) CheckMAC(b []byte, mac string) bool {
	want, err := hex.DecodeString(mac)
	if err != nil {
		return false
	}
	got, _ := hex.DecodeString(k.MAC(b))
	return hmac.Equal(want, got)
}
