package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/client"
	"github.com/sluicehq/sluice/internal/config"
)

// Acting on a server.
//
// The commands runs, show, logs, trigger, pipeline push / approve /
// versions, whoami and logout act either on the local state directory or,
// through the REST API, on a running 'sluice server' as the signed-in
// user. The rule, checked in this order:
//
//  1. --local: the state directory, always.
//  2. SLUICE_SERVER set: that server, with the API token in SLUICE_TOKEN
//     when it is set, else with the login saved for that server. It is
//     the one explicit way to name a server, so it wins over --home and
//     SLUICE_HOME.
//  3. A state directory named with --home (or, without it, SLUICE_HOME)
//     other than the one named when signing in to the server: that state
//     directory, as with --local. A login remembers the state directory
//     named at 'sluice login --server' (none when none was), so naming the
//     same one again keeps using the server.
//  4. A login saved by 'sluice login --server URL USER' (the newest one,
//     when there are several): that server.
//  5. Otherwise the state directory, as before any server login.
//
// 'sluice logout' ends the server login, so the commands act locally
// again.

// Environment variables of server mode.
const (
	// EnvServer names the server the commands act on (scripts); it
	// selects a saved login for that URL, or the token in SLUICE_TOKEN.
	EnvServer = "SLUICE_SERVER"
	// EnvCACert is a PEM file of certificates trusted for SLUICE_SERVER
	// (used with SLUICE_TOKEN, where no login saved one).
	EnvCACert = "SLUICE_CA_CERT"
)

// File names under <config dir>/servers.
const (
	serversDir = "servers"
	// currentLogin holds the key of the login the commands use.
	currentLogin = "current"
	// loginFileMode and loginDirMode: a saved login or session holds a
	// bearer credential (see writePrivate).
	loginFileMode = 0o600
	loginDirMode  = 0o700
)

// serverLogin is a login saved by 'sluice login --server': everything
// needed to call the server again as the same user.
type serverLogin struct {
	Server string `json:"server"`
	User   string `json:"user"`
	// Session is the session secret, sent as Authorization: Bearer.
	Session   string    `json:"session"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// CAFile is the --ca-cert file given at login (for display), and
	// CACert its certificates as they were then: the trust is pinned at
	// login, so replacing the file later does not change whom the CLI
	// trusts. Empty when the system roots are trusted.
	CAFile string `json:"ca_file,omitempty"`
	CACert string `json:"ca_cert,omitempty"`
	// Home is the absolute state directory named with --home or
	// SLUICE_HOME at login, "" when none was: naming another one acts on
	// it instead of the server.
	Home string `json:"home,omitempty"`
}

// remote is a server the command acts on, as one caller.
type remote struct {
	c      *client.Client
	server string
	// path is the saved login file ("" with a token).
	path string
	// login is the saved login (only its Server with a token, so
	// login.User is "" then).
	login serverLogin
}

// serverKey is the file name of the saved login for a canonical server
// URL (see hashKey).
func serverKey(server string) string {
	return hashKey(server) + ".json"
}

// namedHome returns the absolute state directory named explicitly, with
// --home or else SLUICE_HOME, or "" when none is.
func (e *env) namedHome() (string, error) {
	home := e.home
	if home == "" {
		home = e.getenv(config.EnvHome)
	}
	if home == "" {
		return "", nil
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("state directory %q: %w", home, err)
	}
	return abs, nil
}

// serversPath returns <config dir>/servers.
func (e *env) serversPath() (string, error) {
	dir, err := e.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, serversDir), nil
}

// readServerLogin reads the saved login at path; ok is false when there
// is none.
func readServerLogin(path string) (serverLogin, bool, error) {
	var l serverLogin
	ok, err := readSaved(path, "saved server login", &l, func() bool { return l.Server != "" && l.Session != "" })
	if !ok || err != nil {
		return serverLogin{}, false, err
	}
	return l, true, nil
}

// saveServerLogin saves l, with the state directory named for the login
// (see namedHome), and makes it the login the commands use.
func (e *env) saveServerLogin(l serverLogin) (string, error) {
	dir, err := e.serversPath()
	if err != nil {
		return "", err
	}
	if l.Home, err = e.namedHome(); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the login: %w", err)
	}
	key := serverKey(l.Server)
	path := filepath.Join(dir, key)
	if err := writePrivate(path, b); err != nil {
		return "", err
	}
	if err := writePrivate(filepath.Join(dir, currentLogin), []byte(key+"\n")); err != nil {
		return "", err
	}
	return path, nil
}

// removeServerLogin deletes the saved login at path, and the pointer to
// it when it is the current one.
func (e *env) removeServerLogin(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the saved login: %w", err)
	}
	cur := filepath.Join(filepath.Dir(path), currentLogin)
	if b, err := os.ReadFile(cur); err == nil && strings.TrimSpace(string(b)) == filepath.Base(path) {
		if err := os.Remove(cur); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", cur, err)
		}
	}
	return nil
}

// addLocalFlag gives a command that can act on a server its --local flag.
func addLocalFlag(cmd *cobra.Command) {
	cmd.Flags().Bool("local", false, "act on the local state directory even when signed in to a server")
}

// withLocalFlag adds --local to cmd (see addLocalFlag) and returns it.
func withLocalFlag(cmd *cobra.Command) *cobra.Command {
	addLocalFlag(cmd)
	return cmd
}

// remoteOrApp runs cmd where remoteFor says it acts: onServer against the
// server, or local against the state directory (as withApp).
func (e *env) remoteOrApp(cmd *cobra.Command, onServer func(context.Context, *remote) error,
	local func(context.Context, *app.App, *progress) error) error {
	r, err := e.remoteFor(cmd)
	if err != nil {
		return err
	}
	if r != nil {
		return onServer(cmd.Context(), r)
	}
	return withApp(cmd.Context(), e, local)
}

// remoteFor resolves where cmd acts (see the rule above): a remote, or
// nil for the local state directory.
func (e *env) remoteFor(cmd *cobra.Command) (*remote, error) {
	if local, _ := cmd.Flags().GetBool("local"); local {
		return nil, nil
	}
	dir, err := e.serversPath()
	if err != nil {
		return nil, exitWith(ExitFailure, err)
	}
	if raw := e.getenv(EnvServer); raw != "" {
		u, err := client.ParseServer(raw)
		if err != nil {
			return nil, exitWith(ExitUsage, fmt.Errorf("%s: %w", EnvServer, err))
		}
		server := u.String()
		path := filepath.Join(dir, serverKey(server))
		l, saved, err := readServerLogin(path)
		if err != nil {
			return nil, exitWith(ExitFailure, err)
		}
		if tok := e.getenv(EnvToken); tok != "" {
			roots := []byte(l.CACert)
			if f := e.getenv(EnvCACert); f != "" {
				if roots, err = readRoots(f); err != nil {
					return nil, exitWith(ExitUsage, fmt.Errorf("%s: %w", EnvCACert, err))
				}
			}
			return e.newRemote(server, roots, tok, serverLogin{Server: server})
		}
		if !saved {
			return nil, exitWith(ExitFailure, fmt.Errorf("%s is %s, but you are not signed in to it: run 'sluice login --server %s USER' (or set %s to an API token)",
				EnvServer, server, server, EnvToken))
		}
		r, err := e.newRemote(server, []byte(l.CACert), l.Session, l)
		if r != nil {
			r.path = path
		}
		return r, err
	}
	home, err := e.namedHome()
	if err != nil {
		return nil, exitWith(ExitUsage, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, currentLogin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, exitWith(ExitFailure, fmt.Errorf("reading the current server login: %w", err))
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, `/\`) || key == "." || key == ".." {
		return nil, exitWith(ExitFailure, fmt.Errorf("%s is malformed: remove it (or run 'sluice logout')", filepath.Join(dir, currentLogin)))
	}
	path := filepath.Join(dir, key)
	l, saved, err := readServerLogin(path)
	if err != nil {
		return nil, exitWith(ExitFailure, err)
	}
	if !saved {
		// The pointer outlived its login: forget it and act locally.
		_ = os.Remove(filepath.Join(dir, currentLogin))
		return nil, nil
	}
	if home != "" && home != l.Home {
		// A state directory other than the login's is named: act on it.
		return nil, nil
	}
	r, err := e.newRemote(l.Server, []byte(l.CACert), l.Session, l)
	if r != nil {
		r.path = path
	}
	return r, err
}

func (e *env) newRemote(server string, roots []byte, credential string, l serverLogin) (*remote, error) {
	c, err := client.New(client.Options{Server: server, RootPEM: roots, Credential: credential, UserAgent: "sluice-cli/" + Version})
	if err != nil {
		return nil, exitWith(ExitFailure, err)
	}
	return &remote{c: c, server: c.Server(), login: l}, nil
}

// readRoots reads a PEM file of trusted certificates and checks it holds
// at least one.
func readRoots(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading trusted certificates: %w", err)
	}
	if _, err := client.ParseRoots(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// fail gives an error of a server call its exit code and its advice. An
// ended session (401) removes the saved login, which can only fail again,
// and says how to sign in anew; a refusal (403) shows the server's
// reason; a certificate the CLI does not trust names --ca-cert.
func (e *env) fail(r *remote, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	switch client.StatusOf(err) {
	case 401:
		if r.path == "" {
			return exitWith(ExitFailure, fmt.Errorf("%s refused the API token in %s: %w", r.server, EnvToken, err))
		}
		if rerr := e.removeServerLogin(r.path); rerr != nil {
			fmt.Fprintf(e.stderr, "sluice: %s\n", rerr)
		}
		user := r.login.User
		if user == "" {
			user = "USER"
		}
		return exitWith(ExitFailure, fmt.Errorf("your session on %s has ended (%w): sign in again with 'sluice login --server %s %s'",
			r.server, err, r.server, user))
	case 403:
		return exitWith(ExitFailure, fmt.Errorf("%s refused: %w", r.server, err))
	case 0:
		var unknown x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		switch {
		case errors.As(err, &unknown):
			return exitWith(ExitFailure, fmt.Errorf("%w\n  the server's certificate is not trusted: if it uses its own, sign in with --ca-cert FILE (e.g. the server's <state dir>/tls/server.crt)", err))
		case errors.As(err, &hostErr):
			return exitWith(ExitFailure, fmt.Errorf("%w\n  the server's certificate does not name this host: use the host name it was issued for", err))
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return exitWith(ExitFailure, fmt.Errorf("cannot reach %s: %w", r.server, err))
		}
	}
	return exitWith(ExitFailure, err)
}
