package router

import "testing"

func TestLSN(t *testing.T) {
	cases := []struct {
		in   string
		want LSN
		out  string
	}{
		{"16/B374D848", 0x16_B374D848, "16/B374D848"},
		{"0/0", 0, "0/0"},
		{"0/3000060", 0x3000060, "0/3000060"},
		{"ffffffff/ffffffff", 0xFFFFFFFF_FFFFFFFF, "FFFFFFFF/FFFFFFFF"},
	}
	for _, tc := range cases {
		got, err := ParseLSN(tc.in)
		if err != nil || got != tc.want || got.String() != tc.out {
			t.Errorf("ParseLSN(%q) = %v (%s), %v; want %#x (%s)", tc.in, uint64(got), got, err, uint64(tc.want), tc.out)
		}
	}
	for _, bad := range []string{"", "16", "/1", "1/", "g/1", "1/1/1", "123456789/0", "-1/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
	if LSN(5) <= LSN(4) || mustLSN(t, "1/0") <= mustLSN(t, "0/FFFFFFFF") {
		t.Error("LSN order is not WAL order")
	}
}

func mustLSN(t *testing.T, s string) LSN {
	t.Helper()
	l, err := ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
