// Package web is sluice's browser UI: server-rendered HTML pages over the
// domain services, with one small script for live progress. Templates,
// the stylesheet and the script are embedded, so the binary serves the
// whole UI with no external asset.
//
// The UI plugs into package server as server.Options.UI, inside the
// middleware chain: security headers (a Content-Security-Policy with no
// inline script or style, which is why no page carries a style attribute
// or an inline <script>), the body limit and the CSRF guard. Every form
// that changes state carries the session's CSRF token.
//
// Authentication and authorization are the REST API's (api.API
// Authenticate, Authorize and May), so a browser session and an API call
// are judged by the same rules: a page a viewer may not see answers 403
// with the missing permission (the denial recorded in the audit log), and
// an action a viewer may not take is left off the page, not disabled.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Log attribute keys.
const (
	keyError = "error"
	keyPath  = "path"
)

// Deps are the services the UI acts through. Everything but Clock, Logger
// and Parse is required.
type Deps struct {
	// API authenticates requests and decides permissions.
	API       *api.API
	Store     store.Store
	Auth      *auth.Service
	Access    *access.Service
	Scheduler *schedule.Scheduler
	// Keys decrypts task logs and verifies audit checkpoints.
	Keys *keys.Keyring
	// CSRF renders the token every state-changing form sends back.
	CSRF *server.CSRF
	// StateDir is the state directory (task logs live under it).
	StateDir string
	// Parse are the options pushed pipelines are validated with.
	Parse  pipeline.Options
	Clock  clock.Clock
	Logger *slog.Logger
}

// UI is the web UI handler.
type UI struct {
	d     Deps
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New builds the UI over d, parsing every template once.
func New(d Deps) (*UI, error) {
	switch {
	case d.API == nil, d.Store == nil, d.Auth == nil, d.Access == nil, d.Scheduler == nil, d.Keys == nil, d.CSRF == nil:
		return nil, errors.New("web: API, Store, Auth, Access, Scheduler, Keys and CSRF are required")
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	u := &UI{d: d, mux: http.NewServeMux(), pages: pages}
	u.routes()
	return u, nil
}

// parseTemplates parses each page together with the shared layout.
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parsing template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// funcs are the template helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"dur": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return "—"
		}
		return to.Sub(from).Round(time.Millisecond).String()
	},
	"esc": url.PathEscape,
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"stateClass": stateClass,
	"stateMark":  stateMark,
	"deref": func(p *int) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprint(*p)
	},
}

func (u *UI) routes() {
	m := u.mux
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	m.HandleFunc("GET /login", u.loginForm)
	m.HandleFunc("POST /login", u.login)
	m.HandleFunc("POST /logout", u.logout)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/pipelines", http.StatusSeeOther)
	})
	m.Handle("GET /pipelines", u.page(u.pipelines))
	m.Handle("GET /push", u.page(u.pushForm))
	m.Handle("POST /push", u.page(u.push))
	m.Handle("GET /pipelines/{namespace}/{name}", u.page(u.pipelinePage))
	m.Handle("POST /pipelines/{namespace}/{name}/versions/{number}/approve", u.page(u.approve))
	m.Handle("POST /pipelines/{namespace}/{name}/trigger", u.page(u.trigger))
	m.Handle("GET /pipelines/{namespace}/{name}/runs", u.page(u.runsGrid))
	m.Handle("GET /runs/{id}", u.page(u.runPage))
	m.Handle("GET /runs/{id}/status.json", u.page(u.runStatus))
	m.Handle("GET /runs/{id}/tasks/{task}", u.page(u.taskPage))
	m.Handle("GET /runs/{id}/datasets", u.page(u.datasetsPage))
	m.Handle("GET /runs/{id}/datasets/{dataset}", u.page(u.datasetRowsPage))
	m.Handle("GET /audit", u.page(u.auditPage))
	m.Handle("POST /audit/verify", u.page(u.auditVerify))
	m.Handle("GET /users", u.page(u.usersPage))
	m.Handle("GET /access", u.page(u.accessPage))
	m.Handle("POST /access/requests/{id}/{verdict}", u.page(u.decideRequest))
	m.Handle("POST /access/review", u.page(u.recordReview))
	m.Handle("/", u.page(func(w http.ResponseWriter, r *http.Request, v *viewer) error {
		return errNotFound
	}))
}

// ServeHTTP serves the UI.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.mux.ServeHTTP(w, r) }

// staticHandler serves the embedded stylesheet and script. They change
// only with the binary, so browsers may cache them for an hour.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// viewer is the signed-in user of a page request.
type viewer struct {
	P    api.Principal
	CSRF string
	// Nav holds the navigation entries the viewer may open.
	Nav []navItem
}

type navItem struct {
	Href, Label string
	Current     bool
}

// pageFunc serves a page for a signed-in viewer. Returning an error
// renders the matching error page.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *viewer) error

// errNotFound renders the 404 page.
var errNotFound = &server.Error{Code: server.CodeNotFound, Message: "There is nothing at this address."}

// forbidden is a page the viewer may not see: the 403 page names the
// permission.
type forbidden struct {
	Perm access.Permission
}

func (f *forbidden) Error() string { return "forbidden: " + string(f.Perm) }

// page authenticates the request (an anonymous visitor is sent to the
// sign-in page, then back) and runs fn.
func (u *UI) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, err := u.d.API.Authenticate(r)
		if err != nil {
			dropStaleSession(w, r, err)
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, err)
			return
		}
		r = r.WithContext(api.WithPrincipal(r.Context(), p))
		v := &viewer{P: p, CSRF: u.d.CSRF.TokenFor(r)}
		v.Nav = u.nav(r.Context(), p, r.URL.Path)
		if err := fn(w, r, v); err != nil {
			u.fail(w, r, v, err)
		}
	})
}

// dropStaleSession clears the session cookie when it was the credential
// that failed to authenticate (expired, revoked or unknown), so the
// browser stops sending it: every failed session check is recorded in
// the audit log, and a stale cookie would otherwise add a record to each
// request. A failure of the server's own (a store error) keeps the
// cookie, as does a request that presented a bearer token (the cookie
// was not what failed).
func dropStaleSession(w http.ResponseWriter, r *http.Request, err error) {
	var se *server.Error
	if !errors.As(err, &se) || se.Code != server.CodeUnauthenticated {
		return
	}
	if r.Header.Get("Authorization") != "" {
		return
	}
	if ck, cerr := r.Cookie(server.SessionCookie); cerr != nil || ck.Value == "" {
		return
	}
	server.ClearCookie(w, server.SessionCookie)
}

// nav lists the sections the viewer may open. Sections whose permission
// lives in a namespace are always listed: their pages filter per item.
func (u *UI) nav(ctx context.Context, p api.Principal, path string) []navItem {
	items := []navItem{{Href: "/pipelines", Label: "Pipelines"}}
	if u.d.API.May(ctx, p, access.AuditRead, auditRes) {
		items = append(items, navItem{Href: "/audit", Label: "Audit log"})
	}
	if u.d.API.May(ctx, p, access.UserManage, access.Resource{Type: access.ResUser}) {
		items = append(items, navItem{Href: "/users", Label: "Users"})
	}
	if u.mayAccessPage(ctx, p) {
		items = append(items, navItem{Href: "/access", Label: "Access"})
	}
	for i := range items {
		items[i].Current = path == items[i].Href || strings.HasPrefix(path, items[i].Href+"/")
	}
	return items
}

// authorize checks perm on res for the viewer, recording a denial, and
// turns a denial into the 403 page.
func (u *UI) authorize(ctx context.Context, v *viewer, perm access.Permission, res access.Resource) error {
	err := u.d.API.Authorize(ctx, v.P, perm, res)
	var se *server.Error
	if errors.As(err, &se) && se.Code == server.CodeForbidden {
		return &forbidden{Perm: perm}
	}
	return err
}

// may reports, without recording, whether the viewer holds perm on res.
func (u *UI) may(ctx context.Context, v *viewer, perm access.Permission, res access.Resource) bool {
	return u.d.API.May(ctx, v.P, perm, res)
}

// errorView is the model of the error page.
type errorView struct {
	Status  int
	Title   string
	Message string
	Perm    string
	Request string
}

// fail renders the error page for err: 403 with the missing permission,
// 404, a safe message for other *server.Error codes, and a generic 500
// (the cause logged with the request id) for anything else.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	ev := errorView{Status: http.StatusInternalServerError, Title: "Something went wrong",
		Message: "The server could not complete the request.", Request: server.RequestID(r.Context())}
	var fb *forbidden
	var se *server.Error
	switch {
	case errors.As(err, &fb):
		ev.Status, ev.Title, ev.Perm = http.StatusForbidden, "Not allowed", string(fb.Perm)
		ev.Message = "You do not have permission " + string(fb.Perm) + " here."
	case errors.As(err, &se):
		ev.Status = server.Status(se.Code)
		ev.Message = se.Message
		switch se.Code {
		case server.CodeNotFound:
			ev.Title = "Not found"
		case server.CodeForbidden:
			ev.Title = "Not allowed"
		case server.CodeUnauthenticated:
			ev.Title = "Sign in required"
		case server.CodeInvalid, server.CodeConflict:
			ev.Title = "Cannot do that"
		default:
			ev.Title = "Something went wrong"
		}
		if se.Code == server.CodeInternal {
			ev.Message = "The server could not complete the request."
		}
		if se.Err != nil || se.Code == server.CodeInternal {
			server.Logger(r.Context()).Warn("web request failed", slog.String(keyPath, r.URL.Path), slog.String(keyError, se.Error()))
		}
	default:
		server.Logger(r.Context()).Error("web request failed", slog.String(keyPath, r.URL.Path), slog.String(keyError, err.Error()))
	}
	if strings.HasSuffix(r.URL.Path, ".json") {
		server.WriteError(w, r, &server.Error{Code: codeOf(ev.Status), Message: ev.Message})
		return
	}
	u.render(w, r, ev.Status, "error", v, ev.Title, ev)
}

func codeOf(status int) server.Code {
	switch status {
	case http.StatusForbidden:
		return server.CodeForbidden
	case http.StatusNotFound:
		return server.CodeNotFound
	case http.StatusUnauthorized:
		return server.CodeUnauthenticated
	case http.StatusBadRequest:
		return server.CodeInvalid
	}
	return server.CodeInternal
}

// layoutView is what the layout template sees.
type layoutView struct {
	Title  string
	Viewer *viewer
	Page   any
}

// render executes page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, page string, v *viewer, title string, data any) {
	t, ok := u.pages[page]
	if !ok {
		panic("web: no template " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", layoutView{Title: title, Viewer: v, Page: data}); err != nil {
		server.Logger(r.Context()).Error("rendering page", slog.String("page", page), slog.String(keyError, err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// notFoundIf turns store.ErrNotFound into the 404 page.
func notFoundIf(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	return err
}

// readLog reads an attempt's log as `sluice logs` does: the text that
// verified, and a note saying why the rest is not shown. Logs are redacted
// by the engine as they are written.
func (u *UI) readLog(ctx context.Context, rel string) string {
	text, err := engine.ReadLog(ctx, u.d.Keys, u.d.StateDir, rel)
	if err != nil {
		text += "\n[sluice: " + err.Error() + "]\n"
	}
	return text
}
