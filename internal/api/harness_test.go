package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vconfig "github.com/pb33f/libopenapi-validator/config"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/app/apptest"
	"github.com/sluicehq/sluice/internal/auth"
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
	s := apptest.Serve(t)
	return &env{t: t, srv: s, app: s.App, base: s.HTTP.URL(), http: apptest.Client(t, s)}
}

// user creates a user, binds role to them (globally when namespace is
// "", else in namespace; none when role is "") and returns a client
// signed in with an MFA session as that user.
func (e *env) user(name, role, namespace string) *client {
	e.t.Helper()
	var roles []string
	if role != "" {
		roles = []string{role}
	}
	u := apptest.User(e.t, e.app, name, namespace, roles...)
	secret, _, err := e.app.Auth.NewSession(e.t.Context(), u.ID, auth.MethodPassword, true)
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
