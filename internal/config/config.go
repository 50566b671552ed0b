// Package config holds sluice's settings: one struct with a documented,
// secure default for every field, filled from a file, then the environment
// (SLUICE_*), then flags, each overriding the one before.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the name of the optional configuration file in the state
// directory.
const FileName = "config.yaml"

// DirMode is the mode of the state directory and every directory sluice
// creates in it: only the owner may list or enter it.
const DirMode fs.FileMode = 0o700

// Config is the whole configuration.
type Config struct {
	// Home is the state directory: the store, artifacts and logs live
	// here. Default "./.sluice"; SLUICE_HOME or --home override it.
	Home string `yaml:"-"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// KillGrace is how long a cancelled task has between SIGTERM and
	// SIGKILL. Default 10s.
	KillGrace time.Duration `yaml:"kill_grace"`
	// Synchronous is SQLite's synchronous setting for the embedded store:
	// FULL (default) makes every committed state change survive a power
	// loss; NORMAL survives a process crash (kill -9) but may lose the
	// last commits on power loss, and is faster.
	Synchronous string `yaml:"synchronous"`
	// TLSCert and TLSKey are PEM files holding the certificate (chain)
	// and private key `sluice server` serves; relative paths are relative
	// to the working directory. Set both, or neither: then a self-signed
	// certificate is generated in <home>/tls on first start. SLUICE_TLS_CERT,
	// SLUICE_TLS_KEY, --tls-cert and --tls-key override them.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Default returns the secure defaults.
func Default() Config {
	return Config{
		Home:        ".sluice",
		LogLevel:    "info",
		LogFormat:   "text",
		KillGrace:   10 * time.Second,
		Synchronous: "FULL",
	}
}

// EnvHome names the state directory when no --home flag does.
const EnvHome = "SLUICE_HOME"

// Load returns the defaults, overlaid with $HOME/config.yaml if it exists,
// then with SLUICE_* variables from env. home is the state directory
// already chosen from flag or environment ("" for the default). Flags are
// applied by the caller afterwards, then Validate.
func Load(home string, getenv func(string) string) (Config, error) {
	c := Default()
	if home == "" {
		home = getenv(EnvHome)
	}
	if home != "" {
		c.Home = home
	}
	path := filepath.Join(c.Home, FileName)
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("reading %s: %w", path, err)
	default:
		dec := yaml.NewDecoder(bytes.NewReader(src))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if v := getenv("SLUICE_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if v := getenv("SLUICE_LOG_FORMAT"); v != "" {
		c.LogFormat = v
	}
	if v := getenv("SLUICE_SYNCHRONOUS"); v != "" {
		c.Synchronous = v
	}
	if v := getenv("SLUICE_TLS_CERT"); v != "" {
		c.TLSCert = v
	}
	if v := getenv("SLUICE_TLS_KEY"); v != "" {
		c.TLSKey = v
	}
	if v := getenv("SLUICE_KILL_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("SLUICE_KILL_GRACE: %w", err)
		}
		c.KillGrace = d
	}
	return c, nil
}

// Validate names the first field that is not acceptable.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Home) == "" {
		return errors.New("home: must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log_format: %q is not one of text, json", c.LogFormat)
	}
	if c.KillGrace <= 0 || c.KillGrace > 10*time.Minute {
		return fmt.Errorf("kill_grace: %s is outside (0, 10m]", c.KillGrace)
	}
	switch strings.ToUpper(c.Synchronous) {
	case "FULL", "NORMAL":
	default:
		return fmt.Errorf("synchronous: %q is not one of FULL, NORMAL", c.Synchronous)
	}
	if (strings.TrimSpace(c.TLSCert) == "") != (strings.TrimSpace(c.TLSKey) == "") {
		return errors.New("tls_cert, tls_key: set both (certificate and key), or neither for a self-signed certificate")
	}
	return nil
}
