package web_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// password is every test user's password (it passes the policy).
const password = "Quiet-Lantern-Orbit-42"

// env is a real `sluice server` on 127.0.0.1:0 over a temporary state
// directory.
type env struct {
	t    *testing.T
	srv  *app.Server
	app  *app.App
	base string
	pool *x509.CertPool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Home = t.TempDir()
	s, err := app.Serve(t.Context(), cfg, app.Options{LogOutput: io.Discard, Getenv: func(string) string { return "" }},
		app.ServerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	if s.UI == nil {
		t.Fatal("the server was started without the web UI")
	}
	pem, err := os.ReadFile(filepath.Join(cfg.Home, server.TLSDir, server.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &env{t: t, srv: s, app: s.App, base: s.HTTP.URL(), pool: pool}
}

// user creates a user with bindings to roles in namespace ("" global);
// with mfa it enrols and confirms an authenticator and returns its
// secret. The confirmation uses the previous 30-second step's code, so
// the current step's code is still unused for the sign-in.
func (e *env) user(name string, mfa bool, namespace string, roles ...string) string {
	e.t.Helper()
	ctx := e.t.Context()
	u, err := e.app.Auth.CreateUser(ctx, auth.NewUser{Actor: "test", Username: name, Password: password})
	if err != nil {
		e.t.Fatalf("creating %s: %v", name, err)
	}
	for _, role := range roles {
		// A fixture: bindings go straight to the store, as granting
		// through the two-person rule would need approvers first.
		b := store.Binding{ID: "b_" + name + "_" + role, SubjectKind: store.SubjectUser, Subject: name, Role: role,
			Namespace: namespace, GrantedBy: "test", GrantedAt: time.Now().UTC()}
		if err := e.app.Store.CreateBinding(ctx, b); err != nil {
			e.t.Fatalf("binding %s to %s: %v", name, role, err)
		}
	}
	if err := e.app.Access.Refresh(ctx); err != nil {
		e.t.Fatal(err)
	}
	if !mfa {
		return ""
	}
	en, err := e.app.Auth.EnrollTOTP(ctx, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.app.Auth.ConfirmTOTP(ctx, u.ID, totpCode(e.t, en.Secret, time.Now().Add(-30*time.Second))); err != nil {
		e.t.Fatalf("confirming the authenticator of %s: %v", name, err)
	}
	return en.Secret
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// browser is a plain HTTP client with a cookie jar, for the tests that
// need no JavaScript.
type browser struct {
	e  *env
	c  *http.Client
	tk string // the CSRF token of the last page read
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *browser) read(resp *http.Response, err error) (int, string) {
	b.e.t.Helper()
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if m := csrfField.FindStringSubmatch(string(body)); m != nil {
		b.tk = m[1]
	}
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	return b.read(b.c.Get(b.e.base + path))
}

// post sends a form; the CSRF token of the last page is added unless the
// form has one.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok && b.tk != "" {
		form.Set("csrf_token", b.tk)
	}
	req, err := http.NewRequestWithContext(b.e.t.Context(), http.MethodPost, b.e.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.read(b.c.Do(req))
}

func (b *browser) signIn(name, code string) {
	b.e.t.Helper()
	status, body := b.post("/login", url.Values{"username": {name}, "password": {password}, "code": {code}})
	if status != http.StatusOK || !strings.Contains(body, "<h1>Pipelines</h1>") {
		b.e.t.Fatalf("signing in as %s: %d\n%.600s", name, status, body)
	}
}
