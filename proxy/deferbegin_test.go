package proxy

import "testing"

func TestBeginTag(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"begin", "BEGIN"},
		{"BEGIN;", "BEGIN"},
		{"  Begin Transaction Read Only", "BEGIN"},
		{"begin\nisolation level serializable", "BEGIN"},
		{"\tSTART TRANSACTION", "START TRANSACTION"},
		{"start transaction read only", "START TRANSACTION"},
		// Held back only where the tag is certain.
		{"/* c */ begin", ""},
		{"-- c\nbegin", ""},
		{"", ""},
	} {
		if got := beginTag(tc.sql); got != tc.want {
			t.Errorf("beginTag(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
}
