package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/web"
)

// readinessProbeID is a run id no run has (run ids are generated hex), so
// looking it up is a cheap indexed query the store answers with
// ErrNotFound when it is reachable.
const readinessProbeID = "readiness-probe"

// observeMetrics feeds engine events into m, then passes them on to next.
func observeMetrics(m *monitor.Metrics, next func(engine.Event)) func(engine.Event) {
	return func(ev engine.Event) {
		switch ev.Kind {
		case engine.RunFinished:
			m.RunFinished(ev.State)
		case engine.TaskFinished, engine.TaskRetrying:
			m.TaskFinished(ev.State, ev.Duration, ev.RowsIn, ev.RowsOut, ev.RowsQuarantined)
		case engine.TaskSkipped:
			m.TaskFinished(ev.State, 0, 0, 0, 0)
		}
		if next != nil {
			next(ev)
		}
	}
}

// Ready reports whether the app can do its work: the store answers a
// cheap query. It backs the server's /readyz.
func (a *App) Ready(ctx context.Context) error {
	_, err := a.Store.GetRun(ctx, readinessProbeID)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("checking the store: %w", err)
}

// ServerOptions are what `sluice server` decides beyond the configuration.
type ServerOptions struct {
	// Listen is host:port; default server.DefaultListen (loopback).
	Listen string
	// TLSCert and TLSKey override the configuration's tls_cert, tls_key.
	TLSCert, TLSKey string
	// InsecureHTTP serves plain HTTP; refused off loopback.
	InsecureHTTP bool
	// ShutdownTimeout bounds the drain of in-flight requests on Stop;
	// default server.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// API and UI are the REST API and web UI handlers (see server.Options).
	API, UI http.Handler
}

// Server is a running `sluice server`: the opened app, the HTTP(S) server,
// the scheduler, and the background work that runs under one context,
// cancelled on Stop.
type Server struct {
	App  *App
	HTTP *server.Server
	// API is the REST API the server serves; nil when ServerOptions.API
	// replaced it.
	API *api.API
	// UI is the web UI the server serves; nil when ServerOptions.UI
	// replaced it, or ServerOptions.API did (the UI authenticates
	// through the API).
	UI *web.UI

	sched *schedule.Scheduler

	// ownsApp is true when Serve opened the app, so Stop closes it.
	ownsApp bool
	work    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// Serve opens the app for cfg and starts the server: the Main of `sluice
// server`, and what end-to-end tests start on 127.0.0.1:0 with a
// temporary state directory. Stop shuts it all down and closes the app.
func Serve(ctx context.Context, cfg config.Config, opts Options, sopts ServerOptions) (*Server, error) {
	if opts.AuditSource == "" {
		opts.AuditSource = audit.SourceAPI
	}
	a, err := Open(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	s, err := a.StartServer(ctx, sopts)
	if err != nil {
		a.Close()
		return nil, err
	}
	s.ownsApp = true
	return s, nil
}

// StartServer starts the HTTP(S) server over a and the background work.
func (a *App) StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	cert, key := a.Config.TLSCert, a.Config.TLSKey
	if opts.TLSCert != "" || opts.TLSKey != "" {
		cert, key = opts.TLSCert, opts.TLSKey
	}
	// Background work outlives the request that started the server but
	// not Stop: tasks run under this context, and cancelling it makes the
	// engine record them as cancelled, leaving their runs resumable.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{App: a, work: work, cancel: cancel}
	// The scheduler creates runs as their schedules fall due and executes
	// them with the embedded engine. On Stop it waits its stop grace for
	// runs in flight; a run still going keeps its lease and the next start
	// resumes it.
	sched, err := schedule.New(schedule.Options{
		Store:    a.Store,
		Engine:   a.Engine,
		Access:   a.Access,
		Logger:   a.Logger,
		StateDir: a.Config.Home,
		Parse:    pipeline.Options{Connectors: a.Connectors},
		Observer: observeSchedule(a.Metrics),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting scheduler: %w", err)
	}
	s.sched = sched
	// One CSRF guard for the server's check and the API's and UI's
	// tokens. Its key is random per process: a restart invalidates the
	// tokens of open pages, which fetch a new one with the next page.
	csrf, err := server.NewCSRF(nil)
	if err != nil {
		cancel()
		return nil, err
	}
	apiHandler := opts.API
	if apiHandler == nil {
		s.API, err = api.New(api.Deps{
			Store: a.Store, Auth: a.Auth, Access: a.Access, Keys: a.Keys, Secrets: a.Secrets,
			Scheduler: sched, Engine: a.Engine, Go: s.Go, CSRF: csrf, StateDir: a.Config.Home,
			Logger: a.Logger, Metrics: a.Metrics,
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("building the API: %w", err)
		}
		apiHandler = s.API
	}
	uiHandler := opts.UI
	if uiHandler == nil && s.API != nil {
		s.UI, err = web.New(web.Deps{
			API: s.API, Store: a.Store, Auth: a.Auth, Access: a.Access, Scheduler: sched, Keys: a.Keys,
			CSRF: csrf, StateDir: a.Config.Home, Parse: pipeline.Options{Connectors: a.Connectors}, Logger: a.Logger,
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("building the UI: %w", err)
		}
		uiHandler = s.UI
	}
	hs, err := server.New(server.Options{
		Listen:          opts.Listen,
		TLSCertFile:     cert,
		TLSKeyFile:      key,
		StateDir:        a.Config.Home,
		InsecureHTTP:    opts.InsecureHTTP,
		Logger:          a.Logger,
		Metrics:         a.Metrics,
		Ready:           a.Ready,
		ShutdownTimeout: opts.ShutdownTimeout,
		CSRF:            csrf,
		API:             apiHandler,
		UI:              uiHandler,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("configuring server: %w", err)
	}
	s.HTTP = hs
	if err := hs.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("starting server: %w", err)
	}
	if err := sched.Start(work); err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("starting scheduler: %w", err), hs.Stop())
	}
	// Retention: expired datasets are swept at start and every hour
	// until Stop; each deletion is recorded in the audit log.
	janitor := &privacy.Janitor{Store: a.Store, StateDir: a.Config.Home, Logger: a.Logger, Keys: a.Keys}
	s.Go(func(ctx context.Context) { _ = janitor.Run(ctx, privacy.DefaultJanitorInterval) })
	return s, nil
}

// observeSchedule feeds the scheduler's lag (how late a due run was
// created) into m.
func observeSchedule(m *monitor.Metrics) func(schedule.Event) {
	return func(ev schedule.Event) {
		if ev.Kind == schedule.EventRunCreated && !ev.Tick.IsZero() {
			m.SchedulerLag(ev.At.Sub(ev.Tick))
		}
	}
}

// Go runs fn in the background under the server's work context; Stop
// cancels that context and waits for fn to return. API handlers use it to
// execute the runs they trigger.
func (s *Server) Go(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.work)
	}()
}

// Stop shuts down in order: stop accepting and drain in-flight requests
// (bounded by the shutdown timeout), stop the scheduler, cancel background
// work and wait for it (running tasks get the engine's kill grace and are recorded as
// cancelled, their runs resumable), then close the app if Serve opened it.
// Safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		herr := s.HTTP.Stop()
		s.sched.Stop()
		s.cancel()
		s.wg.Wait()
		var cerr error
		if s.ownsApp {
			cerr = s.App.Close()
		}
		s.stopErr = errors.Join(herr, cerr)
	})
	return s.stopErr
}
