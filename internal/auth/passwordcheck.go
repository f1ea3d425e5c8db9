package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/xdg-go/scram"
)

// PasswordCheck checks passwords sent in the clear (HTTP basic auth on
// the admin port) against Secrets, for a caller asked the same password
// again and again: a Prometheus scrape every few seconds would otherwise
// pay a SCRAM verifier's PBKDF2 each time. A match is remembered for
// passwordCheckTTL, keyed by a hash of the user, the password and the
// secret, so a changed secret misses. Nothing else is remembered, and
// every check that misses costs a PBKDF2 run whatever it finds, so that
// a guess at an unknown user or a plain-password one takes as long as a
// guess at a SCRAM one: the time of an answer does not tell who exists.
type PasswordCheck struct {
	mu      sync.Mutex
	matched map[[sha256.Size]byte]time.Time
	// slowChecks counts PBKDF2 runs, for tests.
	slowChecks int
}

const (
	passwordCheckTTL = 5 * time.Minute
	// maxMatched bounds the remembered matches; a full table starts over.
	maxMatched = 256
)

// decoyFactors are a SCRAM verifier's usual factors, for the PBKDF2 run
// of a check that has no verifier to run it on.
var decoyFactors = scram.KeyFactors{Salt: "pgninja-password-check", Iters: 4096}

// Check reports whether password matches s for user. known is false when
// there is no such user (s is then ignored).
func (p *PasswordCheck) Check(user, password string, s Secret, known bool, now time.Time) bool {
	key := matchKey(user, password, s)
	p.mu.Lock()
	if at, ok := p.matched[key]; ok && known && now.Sub(at) < passwordCheckTTL {
		p.mu.Unlock()
		return true
	}
	p.slowChecks++
	p.mu.Unlock()
	var ok bool
	if known && s.SCRAM != nil {
		ok = s.Matches(user, password)
	} else {
		_, _ = scramCredentials(user, password, decoyFactors)
		ok = known && s.Matches(user, password)
	}
	if ok {
		p.mu.Lock()
		if p.matched == nil || len(p.matched) >= maxMatched {
			p.matched = map[[sha256.Size]byte]time.Time{}
		}
		p.matched[key] = now
		p.mu.Unlock()
	}
	return ok
}

// matchKey identifies a user, a password and the secret it was checked
// against; the password itself is not kept.
func matchKey(user, password string, s Secret) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range []string{user, password, s.Plain, s.MD5} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	if s.SCRAM != nil {
		h.Write([]byte(s.SCRAM.Salt))
		h.Write(s.SCRAM.StoredKey)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}
