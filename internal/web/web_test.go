package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/store"
)

const helloYAML = `pipeline: hello
namespace: team
tasks:
  greet:
    shell: [echo, "hello from the pipeline"]
  shout:
    needs: [greet]
    shell: [echo, "second step"]
  finish:
    needs: [greet, shout]
    shell: [sleep, "2"]
`

func protect(t *testing.T, e *env, ns string) {
	t.Helper()
	if err := e.app.Store.SetNamespaceProtected(t.Context(), store.ProtectedNamespace{Namespace: ns, SetBy: "test", SetAt: time.Now().UTC()}, true); err != nil {
		t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: want %q in\n%.1500s", what, w, body)
		}
	}
}

func mustNotContain(t *testing.T, what, body string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(body, n) {
			t.Errorf("%s: %q must not be on the page", what, n)
		}
	}
}

// TestPagesAndPermissions walks the main pages over HTTP as users with
// different roles: what each sees, what is left off, what is refused and
// recorded, and the CSRF guard on every form.
func TestPagesAndPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	protect(t, e, "team")
	danaKey := e.user("dana", true, "team", access.RoleDataEngineer)
	e.user("vic", false, "team", access.RoleViewer)
	e.user("ann", false, "", access.RoleDataAnalyst)
	secKey := e.user("sam", true, "", access.RoleSecurityEngineer)

	anon := e.browser()
	status, body := anon.get("/pipelines")
	if status != http.StatusOK || !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatalf("anonymous /pipelines: want the sign-in page, got %d\n%.500s", status, body)
	}
	for _, tt := range []struct{ name, user, pass, code string }{
		{"wrong password", "dana", "Wrong-Password-123", totpCode(t, danaKey, time.Now())},
		{"unknown user", "nobody", password, ""},
		{"missing code", "dana", password, ""},
		{"wrong code", "dana", password, "000000"},
	} {
		status, body := anon.post("/login", url.Values{"username": {tt.user}, "password": {tt.pass}, "code": {tt.code}})
		if status != http.StatusUnauthorized || !strings.Contains(body, "Sign-in failed.") {
			t.Errorf("%s: got %d, want 401 with the generic message\n%.400s", tt.name, status, body)
		}
	}
	if status, _ := anon.get("/audit"); status != http.StatusOK {
		t.Errorf("anonymous /audit: %d, want the sign-in page", status)
	}

	dana := e.browser()
	dana.signIn("dana", totpCode(t, danaKey, time.Now()))
	status, body = dana.get("/pipelines")
	mustContain(t, "dana's pipeline list", body, `href="/push"`)
	_, _ = dana.get("/push")
	status, body = dana.post("/push", url.Values{"content": {"pipeline: bad\ntasks:\n  a:\n    needs: [nope]\n    shell: [\"true\"]\n"}})
	if status != http.StatusBadRequest {
		t.Errorf("pushing an invalid file: %d, want 400", status)
	}
	mustContain(t, "push errors", body, `id="push-errors"`, "pipeline.yaml:4:")
	status, body = dana.post("/push", url.Values{"content": {helloYAML}})
	if status != http.StatusOK {
		t.Fatalf("pushing: %d\n%.800s", status, body)
	}
	mustContain(t, "pipeline page after push", body, "<h1>team/hello</h1>", `<svg class="dag"`, "greet → shout", "Trigger run", "Push a new version")
	mustNotContain(t, "dana's own version", body, `id="approve-1"`)
	// The list names the owner (who pushed the first version); an
	// unapproved version in a protected namespace shows no classification.
	_, body = dana.get("/pipelines")
	mustContain(t, "dana's pipeline list after the push", body, "<td>dana</td>", `<span class="hint">—</span>`)
	// The namespace is protected and nobody approved version 1 yet.
	if status, body := dana.post("/pipelines/team/hello/trigger", nil); status != http.StatusConflict || !strings.Contains(body, "Nothing to run") {
		t.Errorf("triggering an unapproved version: %d, want 409\n%.500s", status, body)
	}
	if status, _ := dana.post("/pipelines/team/hello/trigger", url.Values{"csrf_token": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("trigger with a wrong CSRF token: %d, want 403", status)
	}

	vic := e.browser()
	vic.signIn("vic", "")
	status, body = vic.get("/pipelines/team/hello")
	if status != http.StatusOK {
		t.Fatalf("viewer on the pipeline page: %d", status)
	}
	mustContain(t, "viewer's pipeline page", body, `<svg class="dag"`, "not approved")
	mustNotContain(t, "viewer's pipeline page", body, "Trigger run", `id="approve-1"`, "Push a new version")
	status, body = vic.get("/audit")
	if status != http.StatusForbidden {
		t.Errorf("viewer on /audit: %d, want 403", status)
	}
	mustContain(t, "viewer's 403", body, "You do not have permission audit.read")
	mustNotContain(t, "viewer's nav", body, `href="/audit"`)

	ann := e.browser()
	ann.signIn("ann", "")
	status, body = ann.get("/pipelines/team/hello")
	if status != http.StatusForbidden {
		t.Errorf("analyst on the pipeline page: %d, want 403", status)
	}
	mustContain(t, "analyst's 403", body, "You do not have permission pipeline.read")
	es, err := audit.List(t.Context(), e.app.Store, store.AuditFilter{Actor: "user:ann", Action: access.ActDecide})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || es[len(es)-1].Outcome != audit.OutcomeDenied {
		t.Errorf("the analyst's denial is not in the audit log: %+v", es)
	}
	if status, body := ann.get("/no/such/page"); status != http.StatusNotFound || !strings.Contains(body, "Not found") {
		t.Errorf("unknown page: %d, want the 404 page", status)
	}

	sam := e.browser()
	sam.signIn("sam", totpCode(t, secKey, time.Now()))
	status, body = sam.get("/audit?actor=user:ann")
	if status != http.StatusOK {
		t.Fatalf("security engineer on /audit: %d\n%.500s", status, body)
	}
	mustContain(t, "audit page filtered", body, "user:ann", "denied")
	mustNotContain(t, "audit page filtered", body, "user:dana")
	status, body = sam.post("/audit/verify", nil)
	mustContain(t, "audit verify", body, "The audit log verifies")
	if status, body := sam.get("/access"); status != http.StatusOK {
		t.Errorf("security engineer on /access: %d", status)
	} else {
		mustContain(t, "access review", body, "b_dana_data-engineer", "Access review")
	}
	if status, body := sam.get("/users"); status != http.StatusOK {
		t.Errorf("security engineer on /users: %d", status)
	} else {
		mustContain(t, "users", body, "<th scope=\"row\">ann</th>", "enrolled")
	}

	// Signing out ends the session: the cookie no longer opens a page.
	dana.get("/pipelines")
	if status, _ := dana.post("/logout", nil); status != http.StatusOK {
		t.Errorf("logout: %d", status)
	}
	if _, body := dana.get("/pipelines"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Error("after signing out, /pipelines still shows pipelines")
	}
}

// TestSignInLimitsAndCounts: the sign-in form is rate limited per account
// like the API's, and its failures are counted in
// sluice_auth_failures_total.
func TestSignInLimitsAndCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("vic", false, "")
	b := e.browser()
	limited := false
	for i := range 12 {
		status, body := b.post("/login", url.Values{"username": {"VIC"}, "password": {"wrong-" + strconv.Itoa(i)}})
		switch status {
		case http.StatusUnauthorized:
			if limited {
				t.Fatalf("attempt %d answered 401 after the limit was reached", i)
			}
		case http.StatusTooManyRequests:
			limited = true
			mustContain(t, "the limited sign-in page", body, "Too many sign-in attempts")
		default:
			t.Fatalf("attempt %d: status %d", i, status)
		}
	}
	if !limited {
		t.Fatal("12 failed sign-ins for one account were never rate limited")
	}
	// Even the right password is refused while the account is limited.
	if status, _ := b.post("/login", url.Values{"username": {"vic"}, "password": {password}}); status != http.StatusTooManyRequests {
		t.Errorf("right password while limited: %d, want 429", status)
	}
	_, metrics := b.get("/metrics")
	if !regexp.MustCompile(`sluice_auth_failures_total\{reason="bad_password"\} ([1-9][0-9]*)`).MatchString(metrics) {
		t.Errorf("no bad_password failures counted on /metrics:\n%.2000s", metrics)
	}
}
