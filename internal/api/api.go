// Package api is sluice's REST API under /api/v1: resource handlers over
// the domain services, each declared in one route table together with the
// authorization rule that guards it.
//
// The transport (TLS, the middleware chain, CSRF, rate limits, the error
// shape) belongs to package server; this package plugs into it as
// server.Options.API. It is kept apart from server so that the transport
// does not import every domain package, and so that the web UI can share
// its authentication (Authenticate, PrincipalFrom) and authorization
// (Authorize, May) without sharing its handlers.
//
// Every route names a Rule. A route without one cannot be built (New
// fails), and a test enumerates the table: unauthenticated requests to
// every non-public route must be refused, and signed-in users without a
// binding must be denied every permission-guarded route.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Deps are the services the handlers act through. Store, Auth and Access
// are required (New refuses to build without them). Clock, Logger,
// Metrics and Go have defaults. The others serve the endpoints that need
// them: such an endpoint of an API built without one answers an error
// rather than acting, and a production server provides them all.
type Deps struct {
	Store     store.Store
	Auth      *auth.Service
	Access    *access.Service
	Keys      *keys.Keyring
	Secrets   *secrets.Service
	Scheduler *schedule.Scheduler
	// Engine executes the runs the API triggers or retries, and cancels
	// the runs it executes (app.App.Engine).
	Engine Engine
	// Go runs fn in the background under the server's work context, for
	// runs triggered through the API (app.Server.Go).
	Go func(fn func(ctx context.Context))
	// CSRF renders the token a browser session must send back.
	CSRF *server.CSRF
	// StateDir is the state directory (artifacts, task logs).
	StateDir string
	Clock    clock.Clock
	Logger   *slog.Logger
	Metrics  *monitor.Metrics
}

// Route is one endpoint: a method and a path pattern (net/http's
// ServeMux syntax, with {name} wildcards, relative to nothing: it starts
// with Prefix), the rule guarding it, and the handler.
type Route struct {
	Method  string
	Pattern string
	// Summary is one line for logs and the route listing.
	Summary string
	Rule    Rule
	Handle  HandlerFunc
}

// HandlerFunc serves a request that passed its route's rule. It writes the
// response itself and returns nil, or returns an error that the API sends
// in the one JSON error shape (a *server.Error is shown as it is; anything
// else becomes internal, logged with the request id).
type HandlerFunc func(w http.ResponseWriter, r *http.Request, c *Call) error

// Call is what a handler knows about its request beyond the request: who
// makes it, and the API itself.
type Call struct {
	Principal Principal
	API       *API
}

// API is the REST API handler.
type API struct {
	d      Deps
	mux    *http.ServeMux
	routes []Route
}

// New builds the API over d with every route of every resource.
func New(d Deps) (*API, error) {
	switch {
	case d.Store == nil, d.Auth == nil, d.Access == nil:
		return nil, errors.New("api: Store, Auth and Access are required")
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = monitor.NewMetrics()
	}
	if d.Go == nil {
		d.Go = func(fn func(ctx context.Context)) { go fn(context.Background()) }
	}
	a := &API{d: d, mux: http.NewServeMux()}
	for _, group := range [][]Route{
		a.metaRoutes(),
		a.pipelineRoutes(), a.runRoutes(), a.datasetRoutes(),
		a.sessionRoutes(), a.userRoutes(), a.accessRoutes(), a.secretRoutes(), a.keyRoutes(), a.auditRoutes(),
	} {
		for _, rt := range group {
			if err := a.add(rt); err != nil {
				return nil, err
			}
		}
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		server.WriteError(w, r, &server.Error{Code: server.CodeNotFound, Message: "no such endpoint"})
	})
	return a, nil
}

// add registers rt after checking it is complete: a route without a rule
// is a programming error that must not reach a listener.
func (a *API) add(rt Route) error {
	if err := rt.Rule.check(); err != nil {
		return fmt.Errorf("api: route %s %s: %w", rt.Method, rt.Pattern, err)
	}
	if rt.Handle == nil || rt.Method == "" || !strings.HasPrefix(rt.Pattern, Prefix+"/") {
		return fmt.Errorf("api: route %s %s: method, pattern under %s and handler are required", rt.Method, rt.Pattern, Prefix)
	}
	a.routes = append(a.routes, rt)
	a.mux.Handle(rt.Method+" "+rt.Pattern, a.guard(rt))
	return nil
}

// Routes returns the route table, for the route-enumerating tests and the
// OpenAPI check.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP dispatches to the routes. A known path asked with another
// method gets a 405 with Allow, in the JSON error shape; an unknown path a
// JSON 404.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	if pattern == "/" {
		// Only the catch-all matched: the path may still be a route's
		// under another method.
		if allow := methodsFor(a.mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			server.WriteError(w, r, &server.Error{Code: server.CodeMethodNotAllowed, Message: "method " + r.Method + " not allowed here"})
			return
		}
	}
	// Served by the mux itself, not by the handler Handler returned: only
	// ServeHTTP fills in the path's wildcards (r.PathValue).
	a.mux.ServeHTTP(w, r)
}

// methodsFor returns the methods the mux serves for r's path, or "".
func methodsFor(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := mux.Handler(probe); p != "" && p != "/" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// guard authenticates the caller, applies the route's rule and runs the
// handler, turning its error into the JSON error shape.
func (a *API) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Call{API: a}
		if !rt.Rule.public {
			p, err := a.Authenticate(r)
			if err != nil {
				server.WriteError(w, r, err)
				return
			}
			c.Principal = p
			r = r.WithContext(WithPrincipal(r.Context(), p))
			if rt.Rule.perm != "" {
				res, err := rt.Rule.resource(r, a)
				if err == nil {
					err = a.Authorize(r.Context(), p, rt.Rule.perm, res)
				}
				if err != nil {
					server.WriteError(w, r, err)
					return
				}
			}
		}
		if err := rt.Handle(w, r, c); err != nil {
			server.WriteError(w, r, err)
		}
	})
}
