package auth

import (
	"strings"
	"testing"
)

func TestParseUsers(t *testing.T) {
	v, err := Verifier("ninja", "s3cret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	text := "; comment\n\n" + FormatUser("ninja", v) + "\n" +
		FormatUser(`we"ird`, "plain pass") + "\n" +
		FormatUser("old", MD5Hash("old", "pw")) + "\n"
	users, err := ParseUsers(strings.NewReader(text), "users.txt")
	if err != nil {
		t.Fatal(err)
	}
	if users["ninja"].SCRAM == nil || users["ninja"].SCRAM.Iters != 4096 {
		t.Errorf("scram verifier not parsed: %+v", users["ninja"])
	}
	if users[`we"ird`].Plain != "plain pass" {
		t.Errorf("quoted user: %+v", users)
	}
	if users["old"].MD5 == "" {
		t.Errorf("md5 not recognised")
	}
}

func TestParseUsersErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unquoted", "ninja pw", "users.txt:1"},
		{"unterminated", `"ninja" "pw`, "unterminated"},
		{"trailing", `"a" "b" c`, "unexpected text"},
		{"bad verifier", `"a" "SCRAM-SHA-256$x:y$z"`, "malformed SCRAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUsers(strings.NewReader(tt.in), "users.txt")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSecretMatches(t *testing.T) {
	v, err := Verifier("ninja", "s3cret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL 15's verifier of the password "ninja" (rolpassword of a
	// role created with it under password_encryption scram-sha-256).
	const pgVerifier = "SCRAM-SHA-256$4096:Lru4jJfPbqIG8dieJ3jLrA==$lDZJkTO7Z4Q+g0oAIp3h6y4DYiVcRT/zw7AJQevhsX0=:KnnGeQoeE/nVk9L8BrgOisUD493RTI0rmvgsJpcKEow="
	scram, err := ParseSecret(v)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := ParseSecret(pgVerifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		secret   Secret
		user, pw string
		want     bool
	}{
		{"scram", scram, "ninja", "s3cret", true},
		{"scram wrong", scram, "ninja", "s3cret ", false},
		{"scram other user name", scram, "someone", "s3cret", true},
		{"postgres verifier", pg, "ninja", "ninja", true},
		{"postgres verifier wrong", pg, "ninja", "ninjA", false},
		{"md5", Secret{MD5: MD5Hash("old", "pw")}, "old", "pw", true},
		{"md5 wrong", Secret{MD5: MD5Hash("old", "pw")}, "old", "pW", false},
		{"md5 is salted by its user", Secret{MD5: MD5Hash("old", "pw")}, "new", "pw", false},
		{"plain", Secret{Plain: "p"}, "u", "p", true},
		{"plain wrong", Secret{Plain: "p"}, "u", "", false},
		{"no password known", Secret{}, "u", "", false},
	} {
		if got := tt.secret.Matches(tt.user, tt.pw); got != tt.want {
			t.Errorf("%s: Matches(%q, %q) = %v, want %v", tt.name, tt.user, tt.pw, got, tt.want)
		}
	}
}
