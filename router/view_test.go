package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestViewShowsRolesAndLag(t *testing.T) {
	b, err := NewBackends(
		ReplicaState{Name: "primary", Primary: true, Healthy: true, ReplayLSN: 0x16B3748},
		ReplicaState{Name: "replica", Healthy: true, InRecovery: true, ReplayLSN: 0x16B3000, LagBytes: 1864, Lag: 1500 * time.Millisecond, Weight: 2},
	)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(New(Config{}, b).View())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"name":"primary","role":"primary","healthy":true,"in_recovery":false,"replay_lsn":"0/16B3748","lag_bytes":0,"lag_seconds":0,"weight":0}`,
		`{"name":"replica","role":"replica","healthy":true,"in_recovery":true,"replay_lsn":"0/16B3000","lag_bytes":1864,"lag_seconds":1.5,"weight":2}`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("view %s lacks %s", raw, want)
		}
	}
}
