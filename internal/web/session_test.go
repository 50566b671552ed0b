package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app/apptest"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// staleSecret has the shape of a session secret but names no session.
var staleSecret = strings.Repeat("A", 43)

// sessionFailures counts the failed session checks in the audit log.
func sessionFailures(t *testing.T, e *env) int {
	t.Helper()
	es, err := audit.List(t.Context(), e.app.Store, store.AuditFilter{Action: string(auth.EventSessionUsed)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range es {
		if ev.Outcome == audit.OutcomeFailure {
			n++
		}
	}
	return n
}

// clearsSession reports whether resp tells the browser to drop the
// session cookie.
func clearsSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == server.SessionCookie && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

// TestStaleSessionCookieIsCleared: a session cookie that no longer
// authenticates is cleared by the page that refused it, the sign-in form
// and status.json alike, so the browser stops sending it and the audit
// log gets one failed session check, not one per request.
func TestStaleSessionCookieIsCleared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	vicUser := apptest.User(t, e.app, "vic", "", access.RoleViewer)

	raw := e.browser().c
	raw.Jar = nil
	raw.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/pipelines", http.StatusSeeOther},
		{"/login?next=%2Fpipelines", http.StatusOK},
		{"/runs/nosuchrun/status.json", http.StatusUnauthorized},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: staleSecret})
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s with a stale session: %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		if !clearsSession(resp) {
			t.Errorf("GET %s with a stale session: the cookie is not cleared: %q", tt.path, resp.Header.Values("Set-Cookie"))
		}
	}

	// A bearer credential that fails leaves the cookie alone: it was not
	// the credential that was checked.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.base+"/runs/nosuchrun/status.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+staleSecret)
	req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: staleSecret})
	resp, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if clearsSession(resp) {
		t.Error("a failed bearer token cleared the session cookie")
	}

	// In a browser: one click with a stale cookie records one failure;
	// the redirected sign-in page and the next click record none.
	b := e.browser()
	u, err := url.Parse(e.base)
	if err != nil {
		t.Fatal(err)
	}
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: server.SessionCookie, Value: staleSecret, Path: "/", Secure: true}})
	before := sessionFailures(t, e)
	if _, body := b.get("/pipelines"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatalf("stale session: want the sign-in page\n%.500s", body)
	}
	if got := sessionFailures(t, e) - before; got != 1 {
		t.Errorf("one click with a stale session recorded %d failed session checks, want 1", got)
	}
	b.get("/pipelines")
	if got := sessionFailures(t, e) - before; got != 1 {
		t.Errorf("after the cookie was cleared, %d failed session checks in all, want still 1", got)
	}

	// A revoked session is cleared the same way.
	vic := e.browser()
	vic.signIn("vic", "")
	ss, err := e.app.Auth.ListSessions(t.Context(), vicUser.ID)
	if err != nil || len(ss) != 1 {
		t.Fatalf("vic's sessions: %v, %v", ss, err)
	}
	if err := e.app.Auth.RevokeSession(t.Context(), vicUser.ID, ss[0].ID); err != nil {
		t.Fatal(err)
	}
	before = sessionFailures(t, e)
	if _, body := vic.get("/pipelines"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatalf("revoked session: want the sign-in page\n%.500s", body)
	}
	vic.get("/pipelines")
	if got := sessionFailures(t, e) - before; got != 1 {
		t.Errorf("a revoked session recorded %d failed session checks over two clicks, want 1", got)
	}
}

// auditReads returns the recorded decisions on audit.read.
func auditReads(t *testing.T, e *env) []audit.Entry {
	t.Helper()
	es, err := audit.List(t.Context(), e.app.Store, store.AuditFilter{Actor: "user:sam", Action: access.ActDecide})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, ev := range es {
		if ev.Details["permission"] == string(access.AuditRead) {
			out = append(out, ev)
		}
	}
	return out
}

// TestAuditPageDecidesOnce: viewing or verifying the audit log is one
// decision on audit.read per request, on the resource the API and the
// CLI use.
func TestAuditPageDecidesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secKey := e.user("sam", true, "", access.RoleSecurityEngineer)
	sam := e.browser()
	sam.signIn("sam", totpCode(t, secKey, time.Now()))
	for _, step := range []struct {
		name string
		do   func() (int, string)
	}{
		{"GET /audit", func() (int, string) { return sam.get("/audit") }},
		{"POST /audit/verify", func() (int, string) { return sam.post("/audit/verify", nil) }},
	} {
		before := len(auditReads(t, e))
		if status, body := step.do(); status != http.StatusOK {
			t.Fatalf("%s: %d\n%.500s", step.name, status, body)
		}
		after := auditReads(t, e)
		if got := len(after) - before; got != 1 {
			t.Errorf("%s recorded %d decisions on audit.read, want 1", step.name, got)
			continue
		}
		if last := after[len(after)-1]; last.Resource != "audit:log" || last.Outcome != audit.OutcomeSuccess {
			t.Errorf("%s: decision on %q (%s), want a success on audit:log", step.name, last.Resource, last.Outcome)
		}
	}
}
