package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/sluicehq/sluice/internal/api"
)

// wildcard matches a {name} path wildcard, with ServeMux's {name...}.
var wildcard = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

// concrete fills a route pattern's wildcards with a value no resource has.
func concrete(pattern string) string {
	return wildcard.ReplaceAllString(pattern, "zz-no-such")
}

func opsOf(t *testing.T, a *api.API) map[string]api.Route {
	t.Helper()
	m := map[string]api.Route{}
	for _, rt := range a.Routes() {
		key := rt.Method + " " + wildcard.ReplaceAllString(rt.Pattern, "{$1}")
		if _, dup := m[key]; dup {
			t.Errorf("route %s defined twice", key)
		}
		m[key] = rt
	}
	return m
}

// TestEveryRouteIsGuarded enumerates the route table. Without a
// credential, every route but the public ones answers 401; a signed-in
// user without any binding is denied (403) every route whose rule
// decides a permission. A route added without a rule cannot be built at
// all (see TestRouteWithoutRule).
func TestEveryRouteIsGuarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nobody := e.user("nobody", "", "").raw()
	anon := e.anonymous().raw()
	for _, rt := range e.api().Routes() {
		path := concrete(rt.Pattern)
		body := any(nil)
		if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
			body = "{}"
		}
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			if rt.Rule.IsPublic() {
				return
			}
			if r := anon.do(rt.Method, path, body); r.Status != http.StatusUnauthorized || r.errorCode() != "unauthenticated" {
				t.Errorf("anonymous: %d %s, want 401 unauthenticated", r.Status, r.Body)
			}
			if !rt.Rule.Checked() {
				return
			}
			if r := nobody.do(rt.Method, path, body); r.Status != http.StatusForbidden || r.errorCode() != "forbidden" {
				t.Errorf("user without bindings: %d %s, want 403 forbidden", r.Status, r.Body)
			}
		})
	}
}

func TestRouteWithoutRule(t *testing.T) {
	t.Parallel()
	if _, err := api.NewForTest(api.Route{Method: "GET", Pattern: api.Prefix + "/x", Handle: func(http.ResponseWriter, *http.Request, *api.Call) error { return nil }}); err == nil {
		t.Fatal("a route without a rule was accepted")
	}
}

// TestOpenAPIMatchesRoutes checks the document both ways: every route is
// documented with its method, and every documented operation is routed.
// The document itself must be a valid OpenAPI 3.1 document.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	doc, err := api.Document()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", d.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range d.Paths {
		for m := range ops {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	routed := opsOf(t, e.api())
	for k := range routed {
		if !documented[k] {
			t.Errorf("route %s is not in the OpenAPI document", k)
		}
	}
	for k := range documented {
		if _, ok := routed[k]; !ok {
			t.Errorf("the OpenAPI document has %s, which no route serves", k)
		}
	}
	ld, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(ld)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, ve := range verrs {
			t.Errorf("OpenAPI document: %s", ve.Error())
		}
	}
	// The served document is the same.
	r := e.anonymous().do(http.MethodGet, api.Prefix+"/openapi.json", nil)
	if r.Status != http.StatusOK || !slices.Equal(r.Body, doc) {
		t.Errorf("GET openapi.json = %d, %d bytes; want the document (%d bytes)", r.Status, len(r.Body), len(doc))
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var m api.Me
	r := e.user("alice", "data-engineer", "").do(http.MethodGet, api.Prefix+"/me", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /me = %d %s", r.Status, r.Body)
	}
	r.decode(t, &m)
	if m.Username != "alice" || m.Method != api.MethodSession || !m.MFA {
		t.Errorf("me = %+v", m)
	}
}

// TestMethodNotAllowed: a route's path asked with another method is a 405
// naming the allowed methods; an unknown path is a 404.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.user("alice", "viewer", "").raw()
	r := c.do(http.MethodDelete, api.Prefix+"/me", nil)
	if r.Status != http.StatusMethodNotAllowed || r.errorCode() != "method_not_allowed" || r.Header.Get("Allow") != "GET" {
		t.Errorf("DELETE /me = %d %s (Allow %q), want 405 method_not_allowed with Allow: GET", r.Status, r.Body, r.Header.Get("Allow"))
	}
	if r := c.do(http.MethodGet, api.Prefix+"/no-such-thing", nil); r.Status != http.StatusNotFound || r.errorCode() != "not_found" {
		t.Errorf("GET an unknown path = %d %s, want 404", r.Status, r.Body)
	}
}
