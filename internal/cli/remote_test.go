package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/app/apptest"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/store"
)

const remotePassword = apptest.Password

// remoteEnv is a real `sluice server` on 127.0.0.1:0 and the CLI run
// in-process against it.
type remoteEnv struct {
	t    *testing.T
	srv  *app.Server
	url  string
	cert string // the server's generated certificate
}

func newRemoteEnv(t *testing.T) *remoteEnv {
	t.Helper()
	s := apptest.Serve(t)
	return &remoteEnv{t: t, srv: s, url: s.HTTP.URL(), cert: apptest.CertFile(s)}
}

// user creates a user bound to role globally.
func (r *remoteEnv) user(name, role string) auth.User {
	r.t.Helper()
	return apptest.User(r.t, r.srv.App, name, "", role)
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	return apptest.TOTPCode(t, secret, at)
}

// enrol gives u a confirmed authenticator and returns its secret.
func (r *remoteEnv) enrol(u auth.User) string { return apptest.EnrolTOTP(r.t, r.srv.App, u) }

// cliUser is one person at their own terminal: their own configuration
// directory (where logins are saved) and local state directory.
type cliUser struct {
	t       *testing.T
	config  string
	home    string
	environ map[string]string
}

func newCLIUser(t *testing.T) *cliUser {
	return &cliUser{t: t, config: t.TempDir(), home: t.TempDir(), environ: map[string]string{}}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI with args (after --home), stdin as its input.
func (c *cliUser) run(stdin string, args ...string) result {
	c.t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == EnvConfigDir {
			return c.config
		}
		return c.environ[k]
	}
	code := Main(c.t.Context(), append([]string{"--home", c.home}, args...), strings.NewReader(stdin), &out, &errOut, getenv)
	return result{code, out.String(), errOut.String()}
}

// must runs args and fails the test unless they exit 0.
func (c *cliUser) must(stdin string, args ...string) result {
	c.t.Helper()
	res := c.run(stdin, args...)
	if res.code != ExitOK {
		c.t.Fatalf("sluice %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// fails runs args and fails the test unless they exit with code and
// stderr contains each of want.
func (c *cliUser) fails(code int, want []string, args ...string) result {
	c.t.Helper()
	res := c.run("", args...)
	if res.code != code {
		c.t.Fatalf("sluice %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			c.t.Errorf("sluice %s: stderr %q does not contain %q", strings.Join(args, " "), res.stderr, w)
		}
	}
	return res
}

const remotePipeline = `pipeline: hello
namespace: crm
tasks:
  say:
    shell: [echo, "hello from the server"]
`

func TestCLIAgainstServer(t *testing.T) {
	t.Parallel()
	r := newRemoteEnv(t)
	alice := r.user("alice", access.RoleDataEngineer)
	aliceTOTP := r.enrol(alice)
	r.user("bob", access.RoleDataEngineer)
	r.user("carol", access.RoleViewer)

	a, b, c := newCLIUser(t), newCLIUser(t), newCLIUser(t)

	t.Run("login refuses what it cannot trust", func(t *testing.T) {
		// The server's own certificate is not in the system roots.
		a.fails(ExitFailure, []string{"not trusted", "--ca-cert"}, "login", "--server", r.url, "alice")
		a.fails(ExitUsage, []string{"only allowed for a loopback host"}, "login", "--server", "http://sluice.example.com", "alice")
		a.fails(ExitUsage, []string{"--ca-cert goes with --server"}, "login", "--ca-cert", r.cert, "alice")
		if _, err := os.Stat(filepath.Join(a.config, serversDir, currentLogin)); !os.IsNotExist(err) {
			t.Fatalf("a failed login left a current login: %v", err)
		}
	})

	t.Run("login with password and TOTP code", func(t *testing.T) {
		// The code is asked for after the server says one is needed, as
		// the next line of stdin.
		res := a.must(remotePassword+"\n"+totpCode(t, aliceTOTP, time.Now())+"\n", "login", "--server", r.url, "--ca-cert", r.cert, "alice")
		if !strings.Contains(res.stdout, "signed in to "+r.url+" as alice (MFA: true)") {
			t.Errorf("login output %q", res.stdout)
		}
		dir := filepath.Join(a.config, serversDir)
		for path, want := range map[string]os.FileMode{dir: loginDirMode, filepath.Join(dir, serverKey(r.url)): loginFileMode,
			filepath.Join(dir, currentLogin): loginFileMode} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %o, want %o", path, got, want)
			}
		}
		l, ok, err := readServerLogin(filepath.Join(dir, serverKey(r.url)))
		if err != nil || !ok || l.User != "alice" || l.Session == "" || !strings.Contains(l.CACert, "BEGIN CERTIFICATE") || l.CAFile != r.cert {
			t.Fatalf("saved login %+v, %t, %v", l, ok, err)
		}
		// Without the code the server refuses, and the CLI says why.
		wrong := b.run(remotePassword+"\n", "login", "--server", r.url, "--ca-cert", r.cert, "alice")
		if wrong.code != ExitFailure || !strings.Contains(wrong.stderr, "code") {
			t.Errorf("login without a code: exit %d, %s", wrong.code, wrong.stderr)
		}
	})

	t.Run("whoami names the server", func(t *testing.T) {
		res := a.must("", "whoami")
		if !strings.Contains(res.stdout, "user:alice (MFA: true) on "+r.url) {
			t.Errorf("whoami = %q", res.stdout)
		}
		var v struct{ Actor, Server string }
		if err := json.Unmarshal([]byte(a.must("", "whoami", "-o", "json").stdout), &v); err != nil || v.Actor != "user:alice" || v.Server != r.url {
			t.Errorf("whoami -o json = %+v, %v", v, err)
		}
		// --local keeps the state directory's behaviour: it has no users.
		if res := a.must("", "whoami", "--local"); !strings.Contains(res.stdout, "bootstrap mode") {
			t.Errorf("whoami --local = %q", res.stdout)
		}
	})

	file := filepath.Join(t.TempDir(), "hello.yaml")
	if err := os.WriteFile(file, []byte(remotePipeline), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("push, and approve as a second person", func(t *testing.T) {
		res := a.must("", "pipeline", "push", file)
		if !strings.Contains(res.stdout, "pushed crm/hello@1 to "+r.url) || !strings.Contains(res.stdout, "+pipeline: hello") {
			t.Errorf("push = %q", res.stdout)
		}
		if res := a.must("", "pipeline", "push", file); !strings.Contains(res.stdout, "crm/hello@1 unchanged") {
			t.Errorf("push of the same content = %q", res.stdout)
		}
		// Nobody approves their own version: the server's reason shows.
		a.fails(ExitFailure, []string{r.url + " refused", access.RuleSelfApproveVersion,
			"(POST /api/v1/pipelines/crm/hello/versions/1/approve: 403 forbidden, request id "},
			"pipeline", "approve", "crm/hello", "1")
		b.must(remotePassword+"\n", "login", "--server", r.url, "--ca-cert", r.cert, "bob")
		if res := b.must("", "pipeline", "approve", "crm/hello", "1"); !strings.Contains(res.stdout, "approved crm/hello@1") ||
			!strings.Contains(res.stdout, "author alice") {
			t.Errorf("approve = %q", res.stdout)
		}
		res = b.must("", "pipeline", "versions", "crm/hello")
		if !strings.Contains(res.stdout, "VERSION") || !strings.Contains(res.stdout, "alice") || !strings.Contains(res.stdout, "bob") {
			t.Errorf("versions = %q", res.stdout)
		}
		var vs []versionView
		if err := json.Unmarshal([]byte(b.must("", "pipeline", "versions", "crm/hello", "-o", "json").stdout), &vs); err != nil ||
			len(vs) != 1 || !vs[0].Approved || vs[0].Approver != "bob" || vs[0].Author != "alice" {
			t.Errorf("versions -o json = %+v, %v", vs, err)
		}
	})

	var runID string
	t.Run("trigger follows the run; runs, show, logs", func(t *testing.T) {
		var s summary
		res := a.must("", "trigger", "crm/hello", "-o", "json")
		if err := json.Unmarshal([]byte(res.stdout), &s); err != nil {
			t.Fatalf("trigger -o json: %v\n%s", err, res.stdout)
		}
		if s.Run.State != store.RunSuccess || len(s.Tasks) != 1 || s.Tasks[0].Task != "say" {
			t.Fatalf("trigger summary %+v", s)
		}
		runID = s.Run.ID

		var runs []runView
		if err := json.Unmarshal([]byte(a.must("", "runs", "-o", "json").stdout), &runs); err != nil || len(runs) != 1 || runs[0].ID != runID {
			t.Errorf("runs -o json = %+v, %v", runs, err)
		}
		if res := a.must("", "runs", "--namespace", "crm"); !strings.Contains(res.stdout, runID) || !strings.Contains(res.stdout, "crm/hello") {
			t.Errorf("runs = %q", res.stdout)
		}
		if res := a.must("", "show", runID); !strings.Contains(res.stdout, "run "+runID) || !strings.Contains(res.stdout, "say   1  success") {
			t.Errorf("show = %q", res.stdout)
		}
		if res := a.must("", "logs", runID, "say"); res.stdout != "==> say attempt 1 <==\nhello from the server\n" {
			t.Errorf("logs = %q", res.stdout)
		}
		if res := a.must("", "logs", runID); !strings.Contains(res.stdout, "hello from the server") {
			t.Errorf("logs of every task = %q", res.stdout)
		}
		a.fails(ExitFailure, []string{"404"}, "show", "r_no_such_run")
		// Detached, the command returns once the run is queued.
		if res := a.must("", "trigger", "crm/hello", "--detach"); !strings.Contains(res.stdout, "queued on "+r.url) {
			t.Errorf("trigger --detach = %q", res.stdout)
		}
	})

	t.Run("a viewer is refused with the server's reason", func(t *testing.T) {
		c.must(remotePassword+"\n", "login", "--server", r.url, "--ca-cert", r.cert, "carol")
		c.fails(ExitFailure, []string{r.url + " refused", "not allowed", "request id"}, "trigger", "crm/hello", "--detach")
		if res := c.must("", "show", runID); !strings.Contains(res.stdout, runID) {
			t.Errorf("show as viewer = %q", res.stdout)
		}
	})

	t.Run("an API token for scripts", func(t *testing.T) {
		tok, _, err := r.srv.App.Auth.CreateAPIToken(t.Context(), auth.NewAPIToken{Actor: "test", OwnerID: alice.ID, Name: "ci",
			Scopes: []string{string(access.RunRead)}, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		s := newCLIUser(t)
		s.environ[EnvServer] = r.url
		s.environ[EnvToken] = tok
		// No login is saved in this configuration directory: the
		// certificate comes from SLUICE_CA_CERT.
		s.fails(ExitFailure, []string{"not trusted"}, "runs")
		s.environ[EnvCACert] = r.cert
		if res := s.must("", "runs"); !strings.Contains(res.stdout, runID) {
			t.Errorf("runs with a token = %q", res.stdout)
		}
		s.fails(ExitFailure, []string{"refused", "not allowed"}, "trigger", "crm/hello", "--detach")
		s.environ[EnvToken] = tok + "x"
		s.fails(ExitFailure, []string{"refused the API token in " + EnvToken}, "runs")
	})

	t.Run("an ended session removes the saved login", func(t *testing.T) {
		path := filepath.Join(b.config, serversDir, serverKey(r.url))
		l, _, err := readServerLogin(path)
		if err != nil {
			t.Fatal(err)
		}
		// A secret the server no longer knows, as after an
		// administrator ended the session or it expired.
		l.Session = "not-a-session-any-more"
		bs, _ := json.Marshal(l)
		if err := os.WriteFile(path, bs, loginFileMode); err != nil {
			t.Fatal(err)
		}
		b.fails(ExitFailure, []string{"your session on " + r.url + " has ended", "sluice login --server " + r.url + " bob"}, "runs")
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("the stale login is still saved: %v", err)
		}
		// With no login left, the commands act locally again.
		if res := b.must("", "whoami"); !strings.Contains(res.stdout, "bootstrap mode") {
			t.Errorf("whoami after the session ended = %q", res.stdout)
		}
	})

	t.Run("logout ends the session on the server", func(t *testing.T) {
		path := filepath.Join(a.config, serversDir, serverKey(r.url))
		l, _, _ := readServerLogin(path)
		if res := a.must("", "logout"); !strings.Contains(res.stdout, "signed out of "+r.url) {
			t.Errorf("logout = %q", res.stdout)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("the login is still saved after logout: %v", err)
		}
		if _, _, err := r.srv.App.Auth.AuthenticateSession(t.Context(), l.Session); err == nil {
			t.Error("the session still authenticates after logout")
		}
		if res := a.must("", "whoami"); !strings.Contains(res.stdout, "bootstrap mode") {
			t.Errorf("whoami after logout = %q", res.stdout)
		}
	})
}
