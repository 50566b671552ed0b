package client_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/app/apptest"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/client"
	"github.com/sluicehq/sluice/internal/store"
)

const password = apptest.Password

// serve starts a real `sluice server` on 127.0.0.1:0 over a temporary
// state directory and returns it with its generated certificate.
func serve(t *testing.T) (*app.Server, []byte) {
	t.Helper()
	s := apptest.Serve(t)
	pem, err := os.ReadFile(apptest.CertFile(s))
	if err != nil {
		t.Fatal(err)
	}
	return s, pem
}

// user creates a user bound to role globally.
func user(t *testing.T, s *app.Server, name, role string) auth.User {
	t.Helper()
	return apptest.User(t, s.App, name, "", role)
}

func TestParseServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "https://sluice.example.com:8443", want: "https://sluice.example.com:8443"},
		{in: "HTTPS://Sluice.Example.com/", want: "https://sluice.example.com"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://localhost:8080", want: "http://localhost:8080"},
		{in: "http://[::1]:8080", want: "http://[::1]:8080"},
		{in: "http://sluice.example.com", err: "only allowed for a loopback host"},
		{in: "http://10.0.0.1:8080", err: "only allowed for a loopback host"},
		{in: "ftp://host", err: "want https://"},
		{in: "sluice.example.com:8443", err: "want https://"},
		{in: "https://", err: "no host"},
		{in: "https://u:p@host", err: "credentials do not belong"},
		{in: "https://host/api/v1", err: "give only the scheme"},
		{in: "https://host?x=1", err: "give only the scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			u, err := client.ParseServer(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseServer(%q) = %v, %v; want error containing %q", tt.in, u, err, tt.err)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("ParseServer(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
			}
		})
	}
}

func TestTLSIsAlwaysVerified(t *testing.T) {
	t.Parallel()
	s, pem := serve(t)
	ctx := t.Context()

	// The server's certificate is self-signed: without it as a root the
	// connection is refused.
	c, err := client.New(client.Options{Server: s.HTTP.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(ctx)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Me without the server's certificate: %v, want an unknown-authority error", err)
	}

	// Another certificate as the only root does not help either.
	_, otherPEM := serve(t)
	c, err = client.New(client.Options{Server: s.HTTP.URL(), RootPEM: otherPEM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); !errors.As(err, &unknown) {
		t.Fatalf("Me trusting another server's certificate: %v, want an unknown-authority error", err)
	}

	if _, err := client.New(client.Options{Server: s.HTTP.URL(), RootPEM: []byte("not a certificate")}); err == nil ||
		!strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("New with a bad RootPEM: %v", err)
	}

	// Trusting it, the request reaches the API, which answers in its
	// error shape: the message and the request id reach the caller.
	c, err = client.New(client.Options{Server: s.HTTP.URL(), RootPEM: pem})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(ctx)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != "unauthenticated" || ce.RequestID == "" || ce.Message == "" {
		t.Fatalf("Me without a credential: %#v (%v)", ce, err)
	}
	if !strings.Contains(err.Error(), "request id "+ce.RequestID) || !strings.Contains(err.Error(), ce.Message) {
		t.Errorf("error text %q does not show the message and request id", err)
	}
}

func TestLoginMeLogout(t *testing.T) {
	t.Parallel()
	s, pem := serve(t)
	ctx := t.Context()
	user(t, s, "ada", access.RoleViewer)
	anon, err := client.New(client.Options{Server: s.HTTP.URL(), RootPEM: pem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, api.LoginRequest{Username: "ada", Password: "wrong-" + password}); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("Login with a wrong password: %v, want 401", err)
	}
	resp, err := anon.Login(ctx, api.LoginRequest{Username: "ada", Password: password})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if resp.Secret == "" || resp.User.Username != "ada" {
		t.Fatalf("Login = %+v", resp)
	}
	c, err := client.New(client.Options{Server: s.HTTP.URL(), RootPEM: pem, Credential: resp.Secret})
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.Me(ctx)
	if err != nil || me.Username != "ada" || me.Method != api.MethodSession {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if _, err := c.Me(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("Me after Logout: %v, want 401", err)
	}
}

func TestListFollowsCursors(t *testing.T) {
	t.Parallel()
	s, pem := serve(t)
	ctx := t.Context()
	u := user(t, s, "ada", access.RoleViewer)
	secret, _, err := s.App.Auth.NewSession(ctx, u.ID, auth.MethodPassword, false)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour)
	for i := range 5 {
		if _, err := s.App.Store.CreateRun(ctx, store.NewRun{ID: fmt.Sprintf("r_%d", i), Namespace: "crm", Pipeline: "daily",
			PipelineHash: strings.Repeat("0", 64), LogicalDate: "2026-01-01", Trigger: "manual", Tasks: []string{"a"},
			CreatedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(client.Options{Server: s.HTTP.URL(), RootPEM: pem, Credential: secret, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := c.ListRuns(ctx, client.RunFilter{})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if got := strings.Join(ids, ","); got != "r_4,r_3,r_2,r_1,r_0" {
		t.Errorf("ListRuns over pages of 2 = %s, want newest first, each once", got)
	}
	runs, err = c.ListRuns(ctx, client.RunFilter{Limit: 3})
	if err != nil || len(runs) != 3 || runs[2].ID != "r_2" {
		t.Errorf("ListRuns(Limit 3) = %d runs, %v", len(runs), err)
	}
	runs, err = c.ListRuns(ctx, client.RunFilter{Namespace: "other"})
	if err != nil || len(runs) != 0 {
		t.Errorf("ListRuns(namespace other) = %d runs, %v", len(runs), err)
	}
	r, err := c.GetRun(ctx, "r_1")
	if err != nil || r.ID != "r_1" || len(r.Tasks) != 1 || r.Tasks[0].Task != "a" {
		t.Errorf("GetRun = %+v, %v", r, err)
	}
	if _, err := c.GetRun(ctx, "no/such run"); client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("GetRun of an unknown id: %v, want 404", err)
	}
}

// A server that is not sluice (a proxy's error page) still gives an error
// that shows what answered.
func TestErrorOutsideTheAPIShape(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Request-Id", "proxy-1")
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer hs.Close()
	c, err := client.New(client.Options{Server: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(t.Context())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || ce.Code != "" || ce.RequestID != "proxy-1" ||
		!strings.Contains(ce.Message, "bad gateway") {
		t.Fatalf("error = %#v (%v)", ce, err)
	}
}

// The client does not follow redirects, which could carry the bearer
// credential to another host.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	var leaked string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("Authorization")
	}))
	defer other.Close()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer hs.Close()
	c, err := client.New(client.Options{Server: hs.URL, Credential: "slu_secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(t.Context()); client.StatusOf(err) != http.StatusTemporaryRedirect {
		t.Fatalf("Me answered by a redirect: %v, want the 307 as an error", err)
	}
	if leaked != "" {
		t.Fatalf("the credential followed the redirect: %q", leaked)
	}
}
