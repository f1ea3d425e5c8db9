package proxy

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/ai-ninja/pgninja/pool"
)

// Readiness is whether the proxy can serve a client's writes now, for an
// orchestrator deciding where to send new connections (/readyz). /healthz
// only says the process answers.
type Readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// readyProbeTimeout bounds the look at the primary, well inside the
// second or so an orchestrator's probe waits.
const readyProbeTimeout = 900 * time.Millisecond

// Ready looks at the primary the way a client's request would reach it:
// with routing on, the health checks' last word; otherwise a login
// through a pool of the primary (a server shutting down or starting up
// refuses it), or a TCP connection when no client has made a pool yet.
// A proxy shutting down is not ready, so that new clients go elsewhere
// while its own finish.
func (s *Server) Ready(ctx context.Context) Readiness {
	if s.draining.Load() {
		return Readiness{Reason: "shutting down"}
	}
	primary := s.settings.Load().cfg.Primary()
	if s.router != nil {
		for _, b := range s.router.View() {
			if b.Role == "primary" && b.Healthy {
				return Readiness{Ready: true}
			}
		}
		return Readiness{Reason: "no healthy primary in the health checks"}
	}
	ctx, cancel := context.WithTimeout(ctx, readyProbeTimeout)
	defer cancel()
	var probe *pool.Pool
	s.pools.Each(func(k pool.Key, p *pool.Pool) {
		if probe == nil && k.Backend == primary.Name {
			probe = p
		}
	})
	var err error
	if probe != nil {
		err = probe.Probe(ctx)
	} else {
		var c net.Conn
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(primary.Host, strconv.Itoa(primary.Port)))
		if err == nil {
			_ = c.Close()
		}
	}
	if err != nil {
		return Readiness{Reason: "primary " + primary.Name + ": " + err.Error()}
	}
	return Readiness{Ready: true}
}
