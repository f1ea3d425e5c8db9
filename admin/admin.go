package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/reuseport"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the admin HTTP endpoint.
type Server struct {
	http  *http.Server
	ln    net.Listener
	log   *slog.Logger
	pools *pool.Manager
}

// Views are JSON views the proxy's other parts provide; each is served
// when set.
type Views struct {
	// Backends is /backends: the servers as routing's health checks see
	// them (role, health, replay position, lag, weight).
	Backends func() any
	// Show is /show/{what}: the admin console's SHOW what (clients,
	// servers, pools, databases...), ok false for one it lacks. /stats is
	// its SHOW STATS.
	Show func(what string) (rows any, ok bool)
	// Ready is /readyz: whether clients can be served now, and why
	// not; the answer is 503 when not.
	Ready func(ctx context.Context) (ready bool, detail any)
	// Reset is POST /reset/{what}: it empties what the proxy counts
	// (queries: query_stats) and says how many entries went, ok false
	// for something it cannot reset. Only admin access may post.
	Reset func(what string) (entries int, ok bool)
	// Access, when set, is asked about every request but /healthz and
	// /readyz, which orchestrators call without credentials: what the
	// request's basic auth credentials (has false: none) may see. Stats
	// access reads everything but the profiles.
	Access func(user, password string, has bool) config.ConsoleAccess
}

// New builds the handler set; gatherer is the registry metrics come from.
func New(addr string, gatherer prometheus.Gatherer, pools *pool.Manager, log *slog.Logger, views Views) *Server {
	s := &Server{log: log, pools: pools}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /pools", s.handlePools)
	if views.Show != nil {
		show := func(w http.ResponseWriter, what string) {
			rows, ok := views.Show(what)
			if !ok {
				http.Error(w, "no such SHOW; see /show/help", http.StatusNotFound)
				return
			}
			writeJSON(w, rows)
		}
		mux.HandleFunc("GET /show/{what}", func(w http.ResponseWriter, r *http.Request) { show(w, r.PathValue("what")) })
		mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { show(w, "stats") })
	}
	if views.Reset != nil {
		mux.HandleFunc("POST /reset/{what}", func(w http.ResponseWriter, r *http.Request) {
			what := r.PathValue("what")
			n, ok := views.Reset(what)
			if !ok {
				http.Error(w, "nothing to reset by that name; POST /reset/queries empties query_stats", http.StatusNotFound)
				return
			}
			writeJSON(w, map[string]any{"reset": what, "entries": n})
		})
	}
	if views.Ready != nil {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			ready, detail := views.Ready(r.Context())
			w.Header().Set("Content-Type", "application/json")
			if !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(detail)
		})
	}
	if views.Backends != nil {
		mux.HandleFunc("GET /backends", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, views.Backends()) })
	}
	// Profiles, as Go services usually expose them; the admin address is
	// loopback by default.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.http = &http.Server{Addr: addr, Handler: guard(mux, views.Access), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// guard lets through the requests access allows; a refused one gets 401
// with a basic auth challenge, or 403 when its user may not see or do
// that.
func guard(next http.Handler, access func(user, password string, has bool) config.ConsoleAccess) http.Handler {
	if access == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz":
			next.ServeHTTP(w, r)
			return
		}
		user, password, has := r.BasicAuth()
		switch got := access(user, password, has); {
		case got == config.ConsoleNone:
			w.Header().Set("WWW-Authenticate", `Basic realm="pgninja admin", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case got == config.ConsoleStats && strings.HasPrefix(r.URL.Path, "/debug/"):
			http.Error(w, "profiles are for admin_users", http.StatusForbidden)
		case got == config.ConsoleStats && r.Method != http.MethodGet && r.Method != http.MethodHead:
			// Stats access reads; what changes anything is for admins,
			// as on the console.
			http.Error(w, "changes are for admin_users", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// Listen binds the address, so a port conflict fails startup. With
// share, other processes may bind it too (so_reuseport).
func (s *Server) Listen(share bool) error {
	ln, err := reuseport.Listen(s.http.Addr, share)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Serve runs until Shutdown.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the HTTP server.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

type poolView struct {
	Backend  string     `json:"backend"`
	Database string     `json:"database"`
	User     string     `json:"user"`
	Stats    pool.Stats `json:"stats"`
}

func (s *Server) handlePools(w http.ResponseWriter, _ *http.Request) {
	var out []poolView
	s.pools.Each(func(k pool.Key, p *pool.Pool) {
		out = append(out, poolView{Backend: k.Backend, Database: k.Database, User: k.User, Stats: p.Stats()})
	})
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
