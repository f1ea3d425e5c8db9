package auth

import (
	"testing"
	"time"
)

// TestPasswordCheckRemembersOnlyMatches: a match is remembered (no second
// PBKDF2 run) until it expires or the secret changes; a mismatch, an
// unknown user and a plain-password user each pay one run, every time.
func TestPasswordCheckRemembersOnlyMatches(t *testing.T) {
	secretOf := func(password string) Secret {
		v, err := Verifier("ninja", password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSecret(v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scram, changed := secretOf("right"), secretOf("other")
	plain := Secret{Plain: "right"}
	var p PasswordCheck
	t0 := time.Now()
	for _, tt := range []struct {
		name      string
		password  string
		s         Secret
		known     bool
		at        time.Duration
		want      bool
		slowAfter int
	}{
		{"SCRAM, right", "right", scram, true, 0, true, 1},
		{"SCRAM, right again: remembered", "right", scram, true, time.Minute, true, 1},
		{"SCRAM, wrong", "wrong", scram, true, time.Minute, false, 2},
		{"SCRAM, wrong again: not remembered", "wrong", scram, true, time.Minute, false, 3},
		{"secret changed: the old password misses", "right", changed, true, time.Minute, false, 4},
		{"unknown user", "right", scram, false, time.Minute, false, 5},
		{"plain, wrong: as slow as SCRAM", "wrong", plain, true, time.Minute, false, 6},
		{"plain, right", "right", plain, true, time.Minute, true, 7},
		{"SCRAM, right, after the match expired", "right", scram, true, passwordCheckTTL + time.Second, true, 8},
	} {
		got := p.Check("ninja", tt.password, tt.s, tt.known, t0.Add(tt.at))
		if got != tt.want || p.slowChecks != tt.slowAfter {
			t.Errorf("%s: %v after %d PBKDF2 runs, want %v after %d", tt.name, got, p.slowChecks, tt.want, tt.slowAfter)
		}
	}
}
