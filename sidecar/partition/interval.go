package partition

import (
	"fmt"
	"time"
)

// Interval is the width of one partition.
type Interval string

const (
	Day   Interval = "day"
	Week  Interval = "week"
	Month Interval = "month"
)

// Floor returns the start of the interval that contains t, in UTC.
func (iv Interval) Floor(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch iv {
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case Week:
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		back := (int(day.Weekday()) + 6) % 7 // days since Monday
		return day.AddDate(0, 0, -back)
	default:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
}

// Add moves a start by n intervals.
func (iv Interval) Add(start time.Time, n int) time.Time {
	switch iv {
	case Day:
		return start.AddDate(0, 0, n)
	case Week:
		return start.AddDate(0, 0, 7*n)
	default:
		return start.AddDate(0, n, 0)
	}
}

// Suffix names the partition that starts at start.
func (iv Interval) Suffix(start time.Time) string {
	if iv == Month {
		return start.Format("p2006_01")
	}
	return start.Format("p2006_01_02")
}

// Valid reports whether iv is a known interval.
func (iv Interval) Valid() error {
	switch iv {
	case Day, Week, Month:
		return nil
	}
	return fmt.Errorf("unknown interval %q (want day, week or month)", iv)
}

// pgUnit is the date_trunc unit matching the interval (PostgreSQL's weeks
// start on Monday too).
func (iv Interval) pgUnit() string { return string(iv) }
