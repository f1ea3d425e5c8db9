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
