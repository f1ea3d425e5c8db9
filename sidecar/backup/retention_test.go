package backup

import (
	"slices"
	"testing"
	"time"
)

func entries(status map[string]string, times ...string) []Entry {
	var out []Entry
	for _, s := range times {
		at, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			panic(err)
		}
		e := Entry{Manifest: &Manifest{ID: s, StartedAt: at}}
		if st, ok := status[s]; ok {
			e.Verify = &VerifyRecord{Status: st}
		}
		out = append(out, e)
	}
	return out
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Manifest.ID)
	}
	return out
}

func TestRetentionSelect(t *testing.T) {
	// Mon 2025-03-03 .. Sun 2025-03-16, two backups on some days.
	all := []string{
		"2025-03-16 03:00", "2025-03-15 15:00", "2025-03-15 03:00", "2025-03-14 03:00",
		"2025-03-12 03:00", "2025-03-10 03:00", "2025-03-09 03:00", "2025-03-05 03:00", "2025-03-03 03:00",
	}
	tests := []struct {
		name   string
		policy Retention
		status map[string]string
		keep   []string
	}{
		{"last only", Retention{Last: 2}, nil, []string{"2025-03-16 03:00", "2025-03-15 15:00"}},
		{"daily takes the newest of each day", Retention{Last: 1, Daily: 3}, nil,
			[]string{"2025-03-16 03:00", "2025-03-15 15:00", "2025-03-14 03:00"}},
		{"weekly takes the newest of each ISO week", Retention{Last: 1, Weekly: 3}, nil,
			// weeks: 10-16 → 16th, 03-09 → 9th, and no third week exists
			[]string{"2025-03-16 03:00", "2025-03-09 03:00"}},
		{"rules add up", Retention{Last: 1, Daily: 2, Weekly: 2}, nil,
			[]string{"2025-03-16 03:00", "2025-03-15 15:00", "2025-03-09 03:00"}},
		{"failed verification is never kept nor counted", Retention{Last: 2},
			map[string]string{"2025-03-16 03:00": StatusFailed, "2025-03-15 15:00": StatusError},
			[]string{"2025-03-15 15:00", "2025-03-15 03:00"}},
		{"keeps everything when the policy covers it", Retention{Last: 20}, nil, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Input order must not matter.
			in := entries(tt.status, all...)
			slices.Reverse(in)
			keep, drop := tt.policy.Select(in)
			if got := ids(keep); !slices.Equal(got, tt.keep) {
				t.Fatalf("keep %v, want %v", got, tt.keep)
			}
			if len(keep)+len(drop) != len(all) {
				t.Fatalf("lost entries: %d + %d", len(keep), len(drop))
			}
		})
	}
}
