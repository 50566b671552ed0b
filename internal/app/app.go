// Package app wires sluice together: configuration → state directory →
// store → engine with its task executors. It is the only package that knows
// every other one; commands and servers get a ready *App from Open.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin" // the built-in connectors
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/task"
)

// StoreFile is the name of the embedded database in the state directory.
const StoreFile = "sluice.db"

// Options are what the caller of Open decides beyond the configuration.
type Options struct {
	// LogOutput receives sluice's own log lines; default os.Stderr.
	LogOutput io.Writer
	// Observer receives engine events (progress); may be nil.
	Observer func(engine.Event)
	// Getenv reads the environment (SLUICE_KEK); default os.Getenv.
	Getenv func(string) string
	// AuditSource is the entry point named in the audit records the
	// identity and access services write; default audit.SourceCLI.
	AuditSource audit.Source
}

// App is an opened sluice: the store and the engine over it.
type App struct {
	Config     config.Config
	Logger     *slog.Logger
	Store      store.Store
	Keys       *keys.Keyring
	Secrets    *secrets.Service
	Redactor   *secrets.Redactor
	Engine     *engine.Engine
	Connectors *data.Registry
	// Auth is the identity service (users, passwords, MFA, tokens,
	// sessions); its events go to the audit log.
	Auth *auth.Service
	// Access decides what a user may do; bindings name users by username.
	Access *access.Service
	// Metrics is the process's metric registry; the engine's events feed
	// it, and `sluice server` serves it on /metrics.
	Metrics *monitor.Metrics
	// KEKCreated is the path of the key-encryption keyset when this Open
	// created it, so the caller can tell the operator to back it up.
	KEKCreated string
}

// Open prepares the state directory (created with mode 0700, and tightened
// to it if it exists with looser permissions), opens the store and builds
// the engine.
func Open(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, fmt.Errorf("state directory %q: %w", cfg.Home, err)
	}
	cfg.Home = home
	if err := EnsureDir(home); err != nil {
		return nil, err
	}
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	// The redactor sits below the logger: a secret value resolved
	// anywhere in this process is removed from every log line, so new
	// code cannot forget it.
	redactor := secrets.NewRedactor()
	logger := NewLogger(out, cfg.LogLevel, cfg.LogFormat, redactor)

	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// The store and the key-encryption key do not depend on each other;
	// opening them at once overlaps their fsyncs, most of the cost of a
	// new state directory.
	type kekResult struct {
		kek     keys.KEK
		created string
		err     error
	}
	kekc := make(chan kekResult, 1)
	go func() {
		kek, created, err := openKEK(home, getenv)
		kekc <- kekResult{kek, created, err}
	}()
	db, err := sqlite.Open(ctx, filepath.Join(home, StoreFile), sqlite.Options{Synchronous: cfg.Synchronous})
	k := <-kekc
	if err != nil {
		if k.created != "" {
			// Said here or never: the next start finds the key existing.
			return nil, fmt.Errorf("opening store: %w (a new key-encryption key was created in %s: back it up, see docs/keys.md)", err, k.created)
		}
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if k.err != nil {
		db.Close()
		return nil, k.err
	}
	kek, created := k.kek, k.created
	kr := keys.New(db, kek, keys.Options{})
	svc := secrets.NewService(db, kr, redactor, clock.Real{})
	connectors := data.Builtin
	metrics := monitor.NewMetrics()
	eng, err := engine.New(engine.Options{
		Store:    db,
		StateDir: home,
		Logger:   logger,
		Observer: observeMetrics(metrics, opts.Observer),
		Logs:     kr,
		Secrets:  svc.Resolve,
		Redact:   redactor,
		Executors: map[pipeline.Kind]engine.Executor{
			pipeline.KindShell:  task.NewShell(cfg.KillGrace),
			pipeline.KindScript: task.NewShell(cfg.KillGrace),
			pipeline.KindData:   task.NewData(connectors, kr),
		},
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("starting engine: %w", err)
	}
	source := opts.AuditSource
	if source == "" {
		source = audit.SourceCLI
	}
	au, ac, err := openIdentity(ctx, db, kr, source)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &App{
		Config: cfg, Logger: logger, Store: db, Keys: kr, Secrets: svc, Redactor: redactor,
		Engine: eng, Connectors: connectors, Auth: au, Access: ac, Metrics: metrics, KEKCreated: created,
	}, nil
}

// openKEK returns the key-encryption key: the keyset in SLUICE_KEK when it
// is set, else the keyset file in the state directory, created on first
// use (its path is returned then).
func openKEK(home string, getenv func(string) string) (keys.KEK, string, error) {
	if v := getenv(keys.EnvVar); v != "" {
		k, err := keys.ParseEnv(v)
		if err != nil {
			return nil, "", fmt.Errorf("loading key-encryption key: %w", err)
		}
		return k, "", nil
	}
	k, err := keys.LoadFile(home)
	if err != nil {
		return nil, "", fmt.Errorf("loading key-encryption key: %w", err)
	}
	if k.Created() {
		return k, k.Path(), nil
	}
	return k, "", nil
}

// ParsePipeline reads and validates a pipeline file with the app's connectors.
func (a *App) ParsePipeline(path string) (*pipeline.Pipeline, error) {
	return pipeline.ParseFile(path, pipeline.Options{Connectors: a.Connectors})
}

// Close releases the store.
func (a *App) Close() error { return a.Store.Close() }

// EnsureDir creates dir (and parents) with config.DirMode and tightens an
// existing directory that others can read, since the state directory holds
// datasets, logs and keys.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, config.DirMode); err != nil {
		return fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, config.DirMode); err != nil {
			return fmt.Errorf("restricting state directory %s to 0700: %w", dir, err)
		}
	}
	return nil
}

// NewLogger builds the slog logger for level and format ("text" or
// "json"), with r redacting every message and attribute.
func NewLogger(w io.Writer, level, format string, r *secrets.Redactor) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by config.Validate
	hopts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(r.Handler(h))
}
