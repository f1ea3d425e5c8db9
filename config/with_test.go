package config

import (
	"errors"
	"reflect"
	"testing"
)

// TestWithCopiesAndChangesOneSetting: With leaves the running config
// alone, copies everything else exactly (including what the file did not
// say, such as a replica's default weight), and validates the result.
func TestWithCopiesAndChangesOneSetting(t *testing.T) {
	base, err := Load("../pgninja.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	same, err := base.With("max_client_conn", "10000")
	if err != nil {
		t.Fatal(err)
	}
	base.MaxClientConn = same.MaxClientConn
	if !reflect.DeepEqual(same, base) {
		t.Errorf("With changed more than its setting:\n got %+v\nwant %+v", same, base)
	}
	for _, tt := range []struct {
		path, val string
		check     func(*Config) bool
		field     string // the FieldError's field, when refused
	}{
		{path: "pool.max_size", val: "7", check: func(c *Config) bool { return c.Pool.MaxSize == 7 }},
		{path: "pool.idle_timeout", val: "90s", check: func(c *Config) bool { return c.Pool.IdleTimeout.Seconds() == 90 }},
		{path: "pool.reset_query", val: "none", check: func(c *Config) bool { return c.Pool.ResetQuery == "" }},
		{path: "log_stats", val: "false", check: func(c *Config) bool { return c.LogStats != nil && !*c.LogStats }},
		{path: "pool.max_size", val: "0", field: "pool.max_size"},
		{path: "pool.mode", val: "sometimes", field: "pool.mode"},
		{path: "pool.idle_timeout", val: "90", field: "pool.idle_timeout"},
		{path: "pool.nonsense", val: "1", field: "pool.nonsense"},
	} {
		got, err := base.With(tt.path, tt.val)
		var fe *FieldError
		switch {
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("With(%s, %s): %v, want an error naming %s", tt.path, tt.val, err, tt.field)
		case tt.field == "" && (err != nil || !tt.check(got)):
			t.Errorf("With(%s, %s): %v, setting not applied", tt.path, tt.val, err)
		}
	}
	if base.Pool.MaxSize == 7 || base.Pool.ResetQuery == "" {
		t.Errorf("With changed the config it copied: %+v", base.Pool)
	}
}
