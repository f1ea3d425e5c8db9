package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// Secret is what the proxy knows about one user's password.
type Secret struct {
	// Plain is the password itself, when known.
	Plain string
	// MD5 is "md5" + md5(password + user), when known.
	MD5 string
	// SCRAM holds the verifier's keys, when known.
	SCRAM *scram.StoredCredentials
}

// ParseSecret reads a users-file secret: a SCRAM-SHA-256 verifier as
// PostgreSQL stores it, an md5 hash, or otherwise a plain password.
func ParseSecret(s string) (Secret, error) {
	switch {
	case strings.HasPrefix(s, "SCRAM-SHA-256$"):
		c, err := parseVerifier(s)
		if err != nil {
			return Secret{}, err
		}
		return Secret{SCRAM: c}, nil
	case len(s) == 35 && strings.HasPrefix(s, "md5"):
		if _, err := hex.DecodeString(s[3:]); err == nil {
			return Secret{MD5: s}, nil
		}
	}
	return Secret{Plain: s}, nil
}

// parseVerifier decodes SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>.
func parseVerifier(v string) (*scram.StoredCredentials, error) {
	parts := strings.Split(strings.TrimPrefix(v, "SCRAM-SHA-256$"), "$")
	if len(parts) != 2 {
		return nil, fmt.Errorf("malformed SCRAM verifier")
	}
	iterSalt := strings.SplitN(parts[0], ":", 2)
	keys := strings.SplitN(parts[1], ":", 2)
	if len(iterSalt) != 2 || len(keys) != 2 {
		return nil, fmt.Errorf("malformed SCRAM verifier")
	}
	iters, err := strconv.Atoi(iterSalt[0])
	if err != nil || iters <= 0 {
		return nil, fmt.Errorf("malformed SCRAM verifier: iterations")
	}
	salt, err1 := base64.StdEncoding.DecodeString(iterSalt[1])
	stored, err2 := base64.StdEncoding.DecodeString(keys[0])
	server, err3 := base64.StdEncoding.DecodeString(keys[1])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("malformed SCRAM verifier: base64")
	}
	return &scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: iters},
		StoredKey:  stored, ServerKey: server,
	}, nil
}

// Verifier computes a SCRAM-SHA-256 verifier for password with a fresh
// random salt, in PostgreSQL's format.
func Verifier(user, password string, iters int) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	c, err := scramCredentials(user, password, scram.KeyFactors{Salt: string(salt), Iters: iters})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iters,
		base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(c.StoredKey),
		base64.StdEncoding.EncodeToString(c.ServerKey)), nil
}

func scramCredentials(user, password string, kf scram.KeyFactors) (*scram.StoredCredentials, error) {
	client, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		return nil, err
	}
	c := client.GetStoredCredentials(kf)
	return &c, nil
}

// MD5Hash is PostgreSQL's stored md5 form of a password.
func MD5Hash(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(sum[:])
}

// Matches reports whether password is the one s describes, for a caller
// that sends it in the clear (HTTP basic auth on the admin port). A SCRAM
// verifier costs its iterations of PBKDF2.
func (s Secret) Matches(user, password string) bool {
	switch {
	case s.SCRAM != nil:
		c, err := scramCredentials(user, password, s.SCRAM.KeyFactors)
		return err == nil && subtle.ConstantTimeCompare(c.StoredKey, s.SCRAM.StoredKey) == 1
	case s.MD5 != "":
		return subtle.ConstantTimeCompare([]byte(MD5Hash(user, password)), []byte(s.MD5)) == 1
	case s.Plain != "":
		return subtle.ConstantTimeCompare([]byte(password), []byte(s.Plain)) == 1
	}
	return false
}
