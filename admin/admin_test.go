package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// startAdmin serves views on a free port until the test ends.
func startAdmin(t *testing.T, views Views) string {
	t.Helper()
	s := New("127.0.0.1:0", prometheus.NewRegistry(), pool.NewManager(nil), slog.New(slog.DiscardHandler), views)
	if err := s.Listen(false); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.ln.Addr().String()
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(body)
}

func TestViewsServedWhenSet(t *testing.T) {
	base := startAdmin(t, Views{Show: func(what string) (any, bool) {
		return []map[string]any{{"database": "ai_ninja", "total_xact_count": 6}}, what == "stats"
	}})
	tests := []struct {
		path, want string
		status     int
	}{
		{"/stats", `[{"database":"ai_ninja","total_xact_count":6}]`, http.StatusOK},
		{"/pools", "null", http.StatusOK},
		{"/healthz", "ok", http.StatusOK},
		{"/backends", "404 page not found", http.StatusNotFound}, // routing off: no view
	}
	for _, tt := range tests {
		status, ctype, body := get(t, base+tt.path)
		if status != tt.status || strings.TrimSpace(body) != tt.want {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, status, body, tt.status, tt.want)
		}
		if status == http.StatusOK && tt.path != "/healthz" {
			if ctype != "application/json" || !json.Valid([]byte(body)) {
				t.Errorf("GET %s: %s %q, want JSON", tt.path, ctype, body)
			}
		}
	}
	base = startAdmin(t, Views{
		Backends: func() any { return []string{"primary"} },
		Show: func(what string) (any, bool) {
			return []map[string]any{{"what": what}}, what == "clients"
		},
	})
	if status, _, _ := get(t, base+"/stats"); status != http.StatusNotFound {
		t.Errorf("GET /stats with no SHOW STATS: %d, want 404", status)
	}
	if status, _, body := get(t, base+"/backends"); status != http.StatusOK || strings.TrimSpace(body) != `["primary"]` {
		t.Errorf("GET /backends: %d %q", status, body)
	}
	if status, _, body := get(t, base+"/show/clients"); status != http.StatusOK || strings.TrimSpace(body) != `[{"what":"clients"}]` {
		t.Errorf("GET /show/clients: %d %q", status, body)
	}
	if status, _, _ := get(t, base+"/show/nonsense"); status != http.StatusNotFound {
		t.Errorf("GET /show/nonsense: %d, want 404", status)
	}
}

// TestReadyz: /readyz is 200 when ready and 503 when not, with the
// reason as JSON either way.
func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		ready  bool
		status int
	}{{true, http.StatusOK}, {false, http.StatusServiceUnavailable}} {
		base := startAdmin(t, Views{Ready: func(context.Context) (bool, any) {
			return tt.ready, map[string]any{"ready": tt.ready}
		}})
		status, ctype, body := get(t, base+"/readyz")
		want := `{"ready":` + strconv.FormatBool(tt.ready) + `}`
		if status != tt.status || ctype != "application/json" || strings.TrimSpace(body) != want {
			t.Errorf("ready %v: %d %s %q, want %d %s", tt.ready, status, ctype, body, tt.status, want)
		}
	}
	if status, _, _ := get(t, startAdmin(t, Views{})+"/readyz"); status != http.StatusNotFound {
		t.Errorf("no Ready view: %d, want 404", status)
	}
}

// TestAccessGuardsAllButProbes: with Access set, a request without the
// credentials it wants gets a basic auth challenge, stats access reads
// everything but the profiles, and the orchestrators' probes stay open.
func TestAccessGuardsAllButProbes(t *testing.T) {
	base := startAdmin(t, Views{
		Ready:  func(context.Context) (bool, any) { return true, nil },
		Access: bossAndWatcher,
	})
	for _, tt := range []struct {
		path, user, password string
		want                 int
	}{
		{"/healthz", "", "", http.StatusOK},
		{"/readyz", "", "", http.StatusOK},
		{"/metrics", "", "", http.StatusUnauthorized},
		{"/pools", "", "", http.StatusUnauthorized},
		{"/metrics", "watcher", "wrong", http.StatusUnauthorized},
		{"/metrics", "watcher", "pw", http.StatusOK},
		{"/pools", "watcher", "pw", http.StatusOK},
		{"/debug/pprof/", "watcher", "pw", http.StatusForbidden},
		{"/debug/pprof/", "boss", "pw", http.StatusOK},
		{"/metrics", "boss", "pw", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.password)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("GET %s as %q: %d, want %d", tt.path, tt.user, res.StatusCode, tt.want)
		}
		if res.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s as %q: 401 without a basic auth challenge", tt.path, tt.user)
		}
	}
}

// bossAndWatcher is the tests' access rule: boss administers, watcher
// reads stats, both with the password pw; anyone else is refused.
func bossAndWatcher(user, password string, has bool) config.ConsoleAccess {
	switch {
	case !has:
		return config.ConsoleNone
	case user == "boss" && password == "pw":
		return config.ConsoleAdmin
	case user == "watcher" && password == "pw":
		return config.ConsoleStats
	}
	return config.ConsoleNone
}

// TestResetIsPostedByAdminsOnly: POST /reset/{what} resets what the
// proxy knows by that name and says how much went; stats access may not
// post, and an unknown name or a GET is refused.
func TestResetIsPostedByAdminsOnly(t *testing.T) {
	var resets atomic.Int32 // the handler runs on the server's goroutine
	base := startAdmin(t, Views{
		Reset: func(what string) (int, bool) {
			if what != "queries" {
				return 0, false
			}
			resets.Add(1)
			return 3, true
		},
		Access: bossAndWatcher,
	})
	for _, tt := range []struct {
		method, path, user string
		status             int
		body               string
		resets             int32
	}{
		{http.MethodPost, "/reset/queries", "watcher", http.StatusForbidden, "", 0},
		{http.MethodPost, "/reset/queries", "", http.StatusUnauthorized, "", 0},
		{http.MethodGet, "/reset/queries", "boss", http.StatusMethodNotAllowed, "", 0},
		{http.MethodPost, "/reset/pools", "boss", http.StatusNotFound, "", 0},
		{http.MethodPost, "/reset/queries", "boss", http.StatusOK, `{"entries":3,"reset":"queries"}`, 1},
	} {
		req, err := http.NewRequest(tt.method, base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.user != "" {
			req.SetBasicAuth(tt.user, "pw")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || (tt.body != "" && strings.TrimSpace(string(body)) != tt.body) {
			t.Errorf("%s %s as %q: %d %q, want %d %q", tt.method, tt.path, tt.user, res.StatusCode, body, tt.status, tt.body)
		}
		if got := resets.Load(); got != tt.resets {
			t.Errorf("%s %s as %q: %d resets so far, want %d", tt.method, tt.path, tt.user, got, tt.resets)
		}
	}
}
