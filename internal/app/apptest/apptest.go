// Package apptest starts a real `sluice server` for end-to-end tests of
// the packages that talk to one (the API, the web UI, the CLI and its
// client), and makes the users they need. It is the one place those tests
// share, so they start the server, trust its certificate and write their
// fixtures alike.
package apptest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// Password is every test user's password; it passes the password policy.
const Password = "Quiet-Lantern-Orbit-42"

// Serve starts a real server on 127.0.0.1:0 over a temporary state
// directory, stopped when the test ends.
func Serve(t testing.TB) *app.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Home = t.TempDir()
	s, err := app.Serve(t.Context(), cfg, app.Options{LogOutput: io.Discard, Getenv: func(string) string { return "" }},
		app.ServerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// CertFile is the path of the self-signed certificate s generated.
func CertFile(s *app.Server) string {
	return filepath.Join(s.App.Config.Home, server.TLSDir, server.CertFile)
}

// CertPool trusts the certificate s generated, as an operator's client
// would, and nothing else.
func CertPool(t testing.TB, s *app.Server) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(CertFile(s))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", CertFile(s))
	}
	return pool
}

// Client is an HTTPS client that trusts s's certificate.
func Client(t testing.TB, s *app.Server) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: CertPool(t, s)}}}
}

// User creates a user with Password and binds each of roles to them in
// namespace ("" for global). The bindings are a fixture written straight
// to the store: granting through the two-person rule would need approvers
// first.
func User(t testing.TB, a *app.App, name, namespace string, roles ...string) auth.User {
	t.Helper()
	ctx := t.Context()
	u, err := a.Auth.CreateUser(ctx, auth.NewUser{Actor: "test", Username: name, Password: Password})
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	for _, role := range roles {
		b := store.Binding{ID: "b_" + name + "_" + role, SubjectKind: store.SubjectUser, Subject: name,
			Role: role, Namespace: namespace, GrantedBy: "test", GrantedAt: time.Now().UTC()}
		if err := a.Store.CreateBinding(ctx, b); err != nil {
			t.Fatalf("binding %s to %s: %v", name, role, err)
		}
	}
	if err := a.Access.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return u
}

// EnrolTOTP gives u a confirmed authenticator and returns its secret. The
// confirming code is the previous 30-second step's, so the current step's
// code is still unused for a sign-in (a code is accepted once).
func EnrolTOTP(t testing.TB, a *app.App, u auth.User) string {
	t.Helper()
	en, err := a.Auth.EnrollTOTP(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Auth.ConfirmTOTP(t.Context(), u.ID, TOTPCode(t, en.Secret, time.Now().Add(-30*time.Second))); err != nil {
		t.Fatalf("confirming the authenticator of %s: %v", u.Username, err)
	}
	return en.Secret
}

// TOTPCode is the code of secret at a time.
func TOTPCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
