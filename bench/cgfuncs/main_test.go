package main

import (
	"maps"
	"strings"
	"testing"
)

func TestSelfCosts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile string
		want    map[uint64]int64
		err     string
	}{
		{
			name:    "absolute, relative and repeated addresses",
			profile: "positions: instr line\nevents: Ir\nfn=(1) f\n0x1000 10 5\n+4 * 3\n+2 +1 2\n* * 1\n-6 9 4\n",
			want:    map[uint64]int64{0x1000: 9, 0x1004: 3, 0x1006: 3},
		},
		{
			name: "a call's inclusive cost is not the caller's own",
			profile: "positions: instr line\nevents: Ir\nfn=(1) f\n0x2000 1 7\ncfn=(2) g\ncalls=3 0x3000 5\n+5 2 900\n" +
				"+1 * 2\nfn=(2)\n0x3000 5 300\n",
			want: map[uint64]int64{0x2000: 7, 0x2006: 2, 0x3000: 300},
		},
		{
			name:    "a position line without costs moves the position only",
			profile: "positions: instr\nevents: Ir\n0x10 1\n+2\n+2 4\n",
			want:    map[uint64]int64{0x10: 1, 0x14: 4},
		},
		{
			name:    "not taken with --dump-instr=yes",
			profile: "positions: line\nevents: Ir\n10 5\n",
			err:     "--dump-instr=yes",
		},
		{
			name:    "a cost line before any positions",
			profile: "events: Ir\n0x10 5\n",
			err:     "before the positions",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selfCosts(strings.NewReader(tc.profile))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSymtabName(t *testing.T) {
	syms := symtab{
		{Name: "a", Value: 0x100, Size: 0x10},
		{Name: "b", Value: 0x110, Size: 0x20},
		{Name: "c", Value: 0x200, Size: 0},
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0x0ff, "(outside the binary)"},
		{0x100, "a"},
		{0x10f, "a"},
		{0x110, "b"},
		{0x12f, "b"},
		{0x130, "(outside the binary)"},
		{0x200, "c"},
		{0x201, "(outside the binary)"},
	} {
		if got := syms.name(tc.addr); got != tc.want {
			t.Errorf("%#x: %s, want %s", tc.addr, got, tc.want)
		}
	}
}
