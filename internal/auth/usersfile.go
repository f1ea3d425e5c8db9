package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadUsersFile reads a PgBouncer-style userlist: one `"user" "secret"`
// per line, blank lines and lines starting with ';' or '#' ignored. A
// doubled quote inside a quoted field stands for one quote.
func LoadUsersFile(path string) (map[string]Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseUsers(f, path)
}

// ParseUsers parses userlist text; name is used in error messages.
func ParseUsers(r io.Reader, name string) (map[string]Secret, error) {
	out := map[string]Secret{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == ';' || text[0] == '#' {
			continue
		}
		user, rest, err := quoted(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		secret, tail, err := quoted(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if strings.TrimSpace(tail) != "" {
			return nil, fmt.Errorf("%s:%d: unexpected text after the secret", name, line)
		}
		s, err := ParseSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", name, line, user, err)
		}
		out[user] = s
	}
	return out, sc.Err()
}

func quoted(s string) (field, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf(`want a "quoted" field`)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", fmt.Errorf("unterminated quoted field")
}

// FormatUser renders one users-file line.
func FormatUser(user, secret string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(user) + " " + q(secret)
}
