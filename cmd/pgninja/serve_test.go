package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ai-ninja/pgninja/config"
)

// A reload hands the running logger the new log_level.
func TestLogLevelFollowsReload(t *testing.T) {
	var out bytes.Buffer
	cfg := &config.Config{LogLevel: "info"}
	log, level := newLogger(cfg, &out)
	log.Debug("hidden")
	for _, tt := range []struct{ level, logged string }{{"debug", "shown"}, {"error", "dropped"}} {
		setLevel(level, &config.Config{LogLevel: tt.level})
		log.Debug(tt.logged)
	}
	got := out.String()
	if strings.Contains(got, "hidden") || !strings.Contains(got, "shown") || strings.Contains(got, "dropped") {
		t.Fatalf("log:\n%s", got)
	}
}
