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

	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin" // the built-in connectors
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
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
}

// App is an opened sluice: the store and the engine over it.
type App struct {
	Config     config.Config
	Logger     *slog.Logger
	Store      store.Store
	Engine     *engine.Engine
	Connectors *data.Registry
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
	logger := NewLogger(out, cfg.LogLevel, cfg.LogFormat)

	db, err := sqlite.Open(ctx, filepath.Join(home, StoreFile), sqlite.Options{Synchronous: cfg.Synchronous})
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	connectors := data.Builtin
	eng, err := engine.New(engine.Options{
		Store:    db,
		StateDir: home,
		Logger:   logger,
		Observer: opts.Observer,
		Executors: map[pipeline.Kind]engine.Executor{
			pipeline.KindShell:  task.NewShell(cfg.KillGrace),
			pipeline.KindScript: task.NewShell(cfg.KillGrace),
			pipeline.KindData:   task.NewData(connectors),
		},
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("starting engine: %w", err)
	}
	return &App{Config: cfg, Logger: logger, Store: db, Engine: eng, Connectors: connectors}, nil
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

// NewLogger builds the slog logger for level and format ("text" or "json").
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by config.Validate
	hopts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
