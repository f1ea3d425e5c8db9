package proxy

import (
	"slices"
	"testing"

	"github.com/ai-ninja/pgninja/config"
)

func TestAtRestartNamesWhatAReloadLeaves(t *testing.T) {
	old := &config.Config{Listen: "127.0.0.1:6432", LogLevel: "info"}
	cfg := *old
	if got := atRestart(old, &cfg); len(got) != 0 {
		t.Fatalf("nothing changed, got %v", got)
	}
	cfg.Listen, cfg.LogLevel = "127.0.0.1:7432", "debug" // the level applies at once
	cfg.Sidecar.Database = "other"
	cfg.Users = []config.User{{Name: "new"}} // applies at once
	if got, want := atRestart(old, &cfg), []string{"listen", "sidecar"}; !slices.Equal(got, want) {
		t.Errorf("atRestart = %v, want %v", got, want)
	}
}
