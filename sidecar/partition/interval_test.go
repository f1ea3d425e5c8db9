package partition

import (
	"testing"
	"time"
)

func TestIntervals(t *testing.T) {
	at := time.Date(2025, 3, 16, 22, 30, 0, 0, time.FixedZone("x", -5*3600)) // 2025-03-17 03:30 UTC, a Monday
	tests := []struct {
		iv         Interval
		floor      string
		next, prev string
		suffix     string
	}{
		{Day, "2025-03-17", "2025-03-18", "2025-03-16", "p2025_03_17"},
		{Week, "2025-03-17", "2025-03-24", "2025-03-10", "p2025_03_17"},
		{Month, "2025-03-01", "2025-04-01", "2025-02-01", "p2025_03"},
	}
	for _, tt := range tests {
		t.Run(string(tt.iv), func(t *testing.T) {
			f := tt.iv.Floor(at)
			if got := f.Format(time.DateOnly); got != tt.floor {
				t.Errorf("floor %s", got)
			}
			if got := tt.iv.Add(f, 1).Format(time.DateOnly); got != tt.next {
				t.Errorf("next %s", got)
			}
			if got := tt.iv.Add(f, -1).Format(time.DateOnly); got != tt.prev {
				t.Errorf("prev %s", got)
			}
			if got := tt.iv.Suffix(f); got != tt.suffix {
				t.Errorf("suffix %s", got)
			}
		})
	}
	// A Sunday belongs to the week that started the Monday before.
	if got := Week.Floor(time.Date(2025, 3, 23, 12, 0, 0, 0, time.UTC)).Format(time.DateOnly); got != "2025-03-17" {
		t.Errorf("sunday floor %s", got)
	}
	// Month arithmetic never skips a month from the 1st.
	if got := Month.Add(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 1).Format(time.DateOnly); got != "2025-02-01" {
		t.Errorf("jan+1 %s", got)
	}
}
