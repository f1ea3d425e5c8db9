package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ai-ninja/pgninja/admin"
	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/proxy"
	"github.com/ai-ninja/pgninja/router"
	"github.com/ai-ninja/pgninja/sidecar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	shortcuts := map[string]*string{
		"listen":       fs.String("listen", "", "client address (listen)"),
		"admin_listen": fs.String("admin-listen", "", "admin HTTP address (admin_listen)"),
		"pool.mode":    fs.String("pool-mode", "", "session, transaction or statement (pool.mode)"),
		"log_level":    fs.String("log-level", "", "debug, info, warn or error (log_level)"),
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for key, v := range shortcuts {
		if *v != "" {
			cf.sets = append(cf.sets, key+"="+*v)
		}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log, level := newLogger(cfg, os.Stderr)
	threads := newSchedThreads()
	threads.apply(cfg, log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pools := pool.NewManager(nil)
	defer pools.Close()
	reg.MustRegister(pools.Collector())
	rt, health, err := router.FromConfig(cfg, log, reg)
	if err != nil {
		return err
	}
	var srv *proxy.Server
	// The console's SHUTDOWN asks here, and the loop below shuts down as
	// on SIGTERM.
	shutdown := make(chan struct{}, 1)
	srv, err = proxy.NewServer(proxy.Deps{Config: cfg, Pools: pools, Router: rt, Log: log, Registry: reg,
		Reload:   func() error { return reload(cf, srv, log) },
		Reloaded: reloaded(threads, level, log),
		Shutdown: func() {
			select {
			case shutdown <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	side, err := sidecar.New(cfg, log, reg)
	if err != nil {
		return err
	}
	views := admin.Views{
		Show: func(what string) (any, bool) { return srv.Show(what) },
		Ready: func(ctx context.Context) (bool, any) {
			r := srv.Ready(ctx)
			return r.Ready, r
		},
		Access: srv.AdminAccess,
		Reset:  srv.Reset,
	}
	if rt != nil {
		views.Backends = func() any { return rt.View() }
	}
	adm := admin.New(cfg.AdminListen, reg, pools, log, views)
	if err := adm.Listen(cfg.SOReusePort); err != nil {
		return fmt.Errorf("admin_listen: %w", err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go pools.Run(runCtx, time.Second)
	go threads.follow(runCtx, time.Second, func() (c leaseCounts) {
		pools.Each(func(_ pool.Key, p *pool.Pool) {
			s := p.Stats()
			c.acquires += s.Acquires
			c.waits += s.Waits
		})
		return c
	})
	if health != nil {
		go health.Run(runCtx)
		defer health.Close()
	}
	sideDone := make(chan struct{})
	go func() {
		defer close(sideDone)
		if err := side.Run(runCtx); err != nil {
			log.Error("sidecar stopped", "err", err)
		}
	}()
	defer func() { stop(); <-sideDone }()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve() }()
	go func() { errc <- adm.Serve() }()
	log.Info("pgninja serving", "listen", cfg.Listen, "admin", cfg.AdminListen,
		"pool_mode", cfg.Pool.Mode, "primary", cfg.Primary().Name)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			_ = reload(cf, srv, log) // logged there
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-shutdown:
			log.Info("SHUTDOWN on the admin console")
			stopServing(srv, adm, cfg, log)
			return nil
		case <-ctx.Done():
			stopServing(srv, adm, cfg, log)
			return nil
		}
	}
}

// stopServing lets in-flight transactions end within shutdown_timeout,
// then closes what is left.
func stopServing(srv *proxy.Server, adm *admin.Server, cfg *config.Config, log *slog.Logger) {
	log.Info("shutting down: waiting for in-flight transactions", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	err := srv.Shutdown(sctx)
	cancel()
	_ = adm.Shutdown(context.Background())
	if err != nil {
		log.Warn("shutdown timeout reached; remaining clients were disconnected")
	}
}

// reload re-reads the config; an invalid one is logged, returned and
// otherwise ignored.
func reload(cf configFlags, srv *proxy.Server, log *slog.Logger) error {
	cfg, err := cf.load()
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err != nil {
		log.Error("config reload rejected; keeping the running config", "err", err)
		return err
	}
	log.Info("config reloaded", "path", cfg.Path)
	return nil
}

// reloaded applies what a new configuration changes outside the proxy,
// from the file or the console's SET.
func reloaded(threads *schedThreads, level *slog.LevelVar, log *slog.Logger) func(*config.Config) {
	return func(cfg *config.Config) {
		threads.apply(cfg, log)
		setLevel(level, cfg)
	}
}

// newLogger builds the logger cfg asks for; the level it returns is the
// one a reload changes.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	setLevel(level, cfg)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// setLevel applies log_level, which validation has vetted.
func setLevel(level *slog.LevelVar, cfg *config.Config) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(cfg.LogLevel))
	level.Set(l)
}
