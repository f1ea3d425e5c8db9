package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

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
