package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/config"
)

// An address where nothing listens: a command that goes to the server
// says it cannot reach it, one that acts locally never tries.
const unreachableServer = "https://127.0.0.1:1"

// homeUser is a configuration directory with a saved server login, and
// the CLI run in-process with it.
type homeUser struct {
	t       *testing.T
	config  string
	environ map[string]string
}

// newHomeUser saves a login to unreachableServer, made with the state
// directory loginHome named ("" for none).
func newHomeUser(t *testing.T, loginHome string) *homeUser {
	t.Helper()
	u := &homeUser{t: t, config: t.TempDir(), environ: map[string]string{}}
	e := &env{home: loginHome, getenv: u.getenv}
	if _, err := e.saveServerLogin(serverLogin{Server: unreachableServer, User: "alice", Session: "secret"}); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *homeUser) getenv(k string) string {
	if k == EnvConfigDir {
		return u.config
	}
	return u.environ[k]
}

func (u *homeUser) run(args ...string) result {
	u.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(u.t.Context(), args, strings.NewReader(""), &out, &errOut, u.getenv)
	return result{code, out.String(), errOut.String()}
}

// local runs args and fails the test unless they acted on the state
// directory (whoami in bootstrap mode).
func (u *homeUser) local(args ...string) {
	u.t.Helper()
	res := u.run(args...)
	if res.code != ExitOK || !strings.Contains(res.stdout, "bootstrap mode") {
		u.t.Errorf("sluice %s: exit %d, want the state directory\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
}

// remote runs args and fails the test unless they went to the server.
func (u *homeUser) remote(args ...string) {
	u.t.Helper()
	res := u.run(args...)
	if res.code != ExitFailure || !strings.Contains(res.stderr, "cannot reach "+unreachableServer) {
		u.t.Errorf("sluice %s: exit %d, want the server\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
}

func TestNamedHomeOverridesServerLogin(t *testing.T) {
	t.Parallel()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("login without a state directory", func(t *testing.T) {
		t.Parallel()
		u := newHomeUser(t, "")
		home := t.TempDir()
		u.local("--home", home, "whoami")
		u.environ[config.EnvHome] = home
		u.local("whoami")
		// --local still works, and --home beats SLUICE_HOME without
		// bringing the server back.
		u.local("whoami", "--local")
		u.local("--home", t.TempDir(), "whoami")
		delete(u.environ, config.EnvHome)
		// Naming none: the saved login.
		u.remote("whoami")
	})

	t.Run("login with a state directory", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		u := newHomeUser(t, home)
		l, ok, err := readServerLogin(filepath.Join(u.config, serversDir, serverKey(unreachableServer)))
		if err != nil || !ok || l.Home != home {
			t.Fatalf("saved login %+v, %t, %v: want home %s", l, ok, err, home)
		}
		// The same state directory, however it is named, keeps the server.
		u.remote("--home", home, "whoami")
		if rel, err := filepath.Rel(cwd, home); err == nil {
			u.remote("--home", rel, "whoami")
		}
		u.environ[config.EnvHome] = home
		u.remote("whoami")
		// Another one acts on it.
		u.local("--home", t.TempDir(), "whoami")
		u.environ[config.EnvHome] = t.TempDir()
		u.local("whoami")
		u.remote("--home", home, "whoami")
	})

	t.Run("SLUICE_SERVER wins over a named state directory", func(t *testing.T) {
		t.Parallel()
		u := newHomeUser(t, "")
		u.environ[EnvServer] = unreachableServer
		u.remote("--home", t.TempDir(), "whoami")
		u.environ[config.EnvHome] = t.TempDir()
		u.remote("whoami")
		u.local("whoami", "--local")
	})
}

func TestSavedSessionFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions", hashKey("/some/state"))
	if s, err := readSession(path); err != nil || s != "" {
		t.Fatalf("readSession of no file = %q, %v", s, err)
	}
	if err := writeSession(path, savedSession{Home: "/some/state", User: "alice", Session: "secret"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: loginFileMode, filepath.Dir(path): loginDirMode} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", p, got, want)
		}
	}
	if s, err := readSession(path); err != nil || s != "secret" {
		t.Fatalf("readSession = %q, %v", s, err)
	}
	if err := os.WriteFile(path, []byte(`{"user":"alice"}`), loginFileMode); err != nil {
		t.Fatal(err)
	}
	if _, err := readSession(path); err == nil || !strings.Contains(err.Error(), "saved session "+path+" is malformed") {
		t.Errorf("readSession of a session without a secret: %v", err)
	}
	if len(hashKey("x")) != 16 || serverKey("https://h") != hashKey("https://h")+".json" {
		t.Errorf("hashKey/serverKey: %q, %q", hashKey("x"), serverKey("https://h"))
	}
}
