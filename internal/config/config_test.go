package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	file := "log_level: debug\nlog_format: json\nkill_grace: 3s\n"
	if err := os.WriteFile(filepath.Join(home, FileName), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_HOME": home, "SLUICE_LOG_FORMAT": "text", "SLUICE_SYNCHRONOUS": "NORMAL"}
	got, err := Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Home: home, LogLevel: "debug", LogFormat: "text", KillGrace: 3 * time.Second, Synchronous: "NORMAL"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown field", "colour: blue\n", nil, "colour"},
		{"bad duration env", "", map[string]string{"SLUICE_KILL_GRACE": "soon"}, "SLUICE_KILL_GRACE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(home, FileName), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(home, func(k string) string { return tc.env[k] })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty home", func(c *Config) { c.Home = " " }, "home"},
		{"level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"format", func(c *Config) { c.LogFormat = "xml" }, "log_format"},
		{"grace", func(c *Config) { c.KillGrace = 0 }, "kill_grace"},
		{"synchronous", func(c *Config) { c.Synchronous = "OFF" }, "synchronous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}
