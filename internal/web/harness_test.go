package web_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/app/apptest"
)

// password is every test user's password (it passes the policy).
const password = apptest.Password

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
	s := apptest.Serve(t)
	if s.UI == nil {
		t.Fatal("the server was started without the web UI")
	}
	return &env{t: t, srv: s, app: s.App, base: s.HTTP.URL(), pool: apptest.CertPool(t, s)}
}

// user creates a user with bindings to roles in namespace ("" global);
// with mfa it enrols and confirms an authenticator and returns its
// secret.
func (e *env) user(name string, mfa bool, namespace string, roles ...string) string {
	e.t.Helper()
	u := apptest.User(e.t, e.app, name, namespace, roles...)
	if !mfa {
		return ""
	}
	return apptest.EnrolTOTP(e.t, e.app, u)
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	return apptest.TOTPCode(t, secret, at)
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
