package api_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vconfig "github.com/pb33f/libopenapi-validator/config"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// env is a real `sluice server` on 127.0.0.1:0 over a temporary state
// directory, and an HTTPS client that trusts its generated certificate.
type env struct {
	t    *testing.T
	srv  *app.Server
	app  *app.App
	base string
	http *http.Client
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
	pem, err := os.ReadFile(filepath.Join(cfg.Home, server.TLSDir, server.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &env{t: t, srv: s, app: s.App, base: s.HTTP.URL(), http: hc}
}

// user creates a user, binds role to them (globally when namespace is
// "", else in namespace) and returns a client signed in with an MFA
// session as that user.
func (e *env) user(name, role, namespace string) *client {
	e.t.Helper()
	ctx := e.t.Context()
	u, err := e.app.Auth.CreateUser(ctx, auth.NewUser{Actor: "test", Username: name, Password: "Quiet-Lantern-Orbit-42"})
	if err != nil {
		e.t.Fatalf("creating %s: %v", name, err)
	}
	if role != "" {
		// A fixture: bindings are written straight to the store, as
		// the two-person rule would need two approvers per test.
		b := store.Binding{ID: "b_" + name + "_" + role, SubjectKind: store.SubjectUser, Subject: name, Role: role,
			Namespace: namespace, GrantedBy: "test", GrantedAt: time.Now().UTC()}
		if err := e.app.Store.CreateBinding(ctx, b); err != nil {
			e.t.Fatalf("binding %s to %s: %v", name, role, err)
		}
		if err := e.app.Access.Refresh(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	secret, _, err := e.app.Auth.NewSession(ctx, u.ID, auth.MethodPassword, true)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client{e: e, bearer: secret}
}

// anonymous returns a client without credentials.
func (e *env) anonymous() *client { return &client{e: e} }

// client sends requests as one caller and checks every request and
// response against the OpenAPI document.
type client struct {
	e      *env
	bearer string
	header http.Header
	// unchecked skips the OpenAPI check, for tests that send malformed
	// requests on purpose.
	unchecked bool
}

// raw returns a copy of c whose exchanges are not checked against the
// OpenAPI document.
func (c *client) raw() *client {
	d := *c
	d.unchecked = true
	return &d
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v, failing the test on malformed JSON.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

// errorCode returns the code of a JSON error body, or "".
func (r response) errorCode() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// do sends method path with body (marshalled to JSON unless it is a
// string or nil) and validates the exchange against the OpenAPI document.
func (c *client) do(method, path string, body any) response {
	c.e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.e.t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		req, err := http.NewRequestWithContext(c.e.t.Context(), method, c.e.base+path, bytes.NewReader(raw))
		if err != nil {
			c.e.t.Fatal(err)
		}
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		for k, v := range c.header {
			req.Header[k] = v
		}
		return req
	}
	resp, err := c.e.http.Do(newReq())
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	// Answers of the router itself (no such endpoint, wrong method) are
	// not operations of the document; everything else must match it.
	if !c.unchecked && strings.HasPrefix(path, api.Prefix+"/") && !bytes.Contains(b, []byte(`"no such endpoint"`)) && r.errorCode() != "method_not_allowed" {
		checkExchange(c.e.t, newReq(), resp.StatusCode, resp.Header, b)
	}
	return r
}

// openAPIValidator is built once per test binary from the served document.
var openAPIValidator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := api.Document()
	if err != nil {
		return nil, err
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, err
	}
	// Credentials are the server's to check (tests send wrong ones on
	// purpose); formats such as date-time are asserted.
	v, errs := validator.NewValidator(d, vconfig.WithoutSecurityValidation(), vconfig.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return v, nil
})

var validatorMu sync.Mutex

// checkExchange validates a request and its response against the OpenAPI
// document: the path and method are documented, the parameters and body
// match, the status is documented and the body matches its schema.
func checkExchange(t *testing.T, req *http.Request, status int, h http.Header, body []byte) {
	t.Helper()
	v, err := openAPIValidator()
	if err != nil {
		t.Fatalf("building the OpenAPI validator: %v", err)
	}
	resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	validatorMu.Lock()
	ok, errs := v.ValidateHttpRequestResponse(req, resp)
	validatorMu.Unlock()
	if !ok {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		t.Errorf("%s %s -> %d does not match the OpenAPI document:\n  %s\nbody: %.500s", req.Method, req.URL.Path, status, strings.Join(msgs, "\n  "), body)
	}
}

// api returns the server's API handler.
func (e *env) api() *api.API { return e.srv.API }
