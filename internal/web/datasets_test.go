package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/store"
)

// peopleYAML reads a CSV with an email column, casts and checks it: two
// datasets, the second made from the first.
const peopleYAML = `pipeline: people
namespace: crm
tasks:
  extract:
    extract:
      csv: {path: people.csv}
  clean:
    needs: [extract]
    transform:
      - cast: {id: int, age: int}
      - check:
          columns:
            id: [not_null, unique]
`

const peopleCSV = "id,email,age\n1,alice@example.com,34\n2,bob@example.com,51\n3,carol@example.com,27\n"

// rawReaderRole is a custom role with raw data: raw data is in no
// built-in role, it is granted under the two-person rule.
const rawReaderRole = "raw-reader"

// runPeople pushes and runs the people pipeline as a data engineer and
// returns the run's id once it succeeded.
func runPeople(t *testing.T, e *env) string {
	t.Helper()
	dir := filepath.Join(e.app.Config.Home, "pipelines", "crm", "people")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "people.csv"), []byte(peopleCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	e.user("dora", false, "crm", access.RoleDataEngineer)
	dora := e.browser()
	dora.signIn("dora", "")
	_, _ = dora.get("/push")
	if status, body := dora.post("/push", url.Values{"content": {peopleYAML}}); status != http.StatusOK {
		t.Fatalf("pushing people: %d\n%.800s", status, body)
	}
	// Runnable (crm is not protected): the list shows its classification,
	// the spec's default.
	if _, body := dora.get("/pipelines"); !strings.Contains(body, `<span class="tag">internal</span>`) || !strings.Contains(body, "<td>dora</td>") {
		t.Errorf("pipeline list: want owner dora and classification internal\n%.1500s", body)
	}
	if status, body := dora.post("/pipelines/crm/people/trigger", nil); status != http.StatusOK {
		t.Fatalf("triggering people: %d\n%.800s", status, body)
	}
	runs, err := e.app.Store.ListRuns(t.Context(), store.RunFilter{Namespace: "crm", Pipeline: "people"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of people: %v %+v", err, runs)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		run, err := e.app.Store.GetRun(t.Context(), runs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.State.Done() {
			if run.State != store.RunSuccess {
				t.Fatalf("run %s ended %s: %s", run.ID, run.State, run.Error)
			}
			return run.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after 60s", run.ID, run.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// decided reports whether the audit log holds a decision on perm for
// actor with the given outcome.
func decided(t *testing.T, e *env, actor string, perm access.Permission, outcome audit.Outcome) bool {
	t.Helper()
	es, err := audit.List(t.Context(), e.app.Store, store.AuditFilter{Actor: actor, Action: access.ActDecide})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range es {
		if ev.Details["permission"] == string(perm) && ev.Outcome == outcome {
			return true
		}
	}
	return false
}

// TestDatasetRowsAndLineage: the datasets page draws the lineage and
// links each dataset's rows; an analyst sees them masked and is refused
// raw values (the refusal recorded); a holder of dataset.read_raw sees
// them masked too until choosing "show raw values", and that read is
// recorded.
func TestDatasetRowsAndLineage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.app.Store.CreateRole(t.Context(), store.Role{Name: rawReaderRole, Permissions: []string{"dataset.read_masked", "dataset.read_raw"},
		CreatedBy: "test", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	e.user("ann", false, "crm", access.RoleDataAnalyst)
	ritaKey := e.user("rita", true, "crm", access.RoleDataAnalyst, rawReaderRole)
	runID := runPeople(t, e)
	arts, err := e.app.Store.ListArtifacts(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range arts {
		if a.Kind == "output" {
			out[a.Task] = a.ID
		}
	}
	if out["extract"] == "" || out["clean"] == "" {
		t.Fatalf("datasets of the run: %+v", arts)
	}
	rowsPath := "/runs/" + url.PathEscape(runID) + "/datasets/" + url.PathEscape(out["clean"])

	ann := e.browser()
	ann.signIn("ann", "")
	status, body := ann.get("/runs/" + url.PathEscape(runID) + "/datasets")
	if status != http.StatusOK {
		t.Fatalf("datasets page: %d\n%.800s", status, body)
	}
	svg := regexp.MustCompile(`(?s)<svg class="dag".*?</svg>`).FindString(body)
	mustContain(t, "lineage graph", svg, `<title id="lineage-title">`, `class="dag-name">extract<`, `class="dag-name">clean<`,
		"<title>"+out["clean"]+": output of clean", "extract ("+out["extract"]+") → clean ("+out["clean"]+")")
	if n := strings.Count(svg, `class="dag-edge"`); n != 1 {
		t.Errorf("lineage has %d edges, want 1 (extract → clean)", n)
	}
	mustContain(t, "datasets page", body, `href="`+rowsPath+`"`, "("+"extract"+")")

	status, body = ann.get(rowsPath)
	if status != http.StatusOK {
		t.Fatalf("analyst's rows: %d\n%.800s", status, body)
	}
	mustContain(t, "analyst's rows", body, `id="masked-notice"`, "al***", "<td>34</td>", `<span class="badge warn">masked</span>`)
	mustNotContain(t, "analyst's rows", body, "example.com", `id="show-raw"`, "Show raw values")
	if status, body := ann.get(rowsPath + "?raw=1"); status != http.StatusForbidden || strings.Contains(body, "example.com") {
		t.Errorf("analyst asking for raw rows: %d, want 403 without the values", status)
	} else {
		mustContain(t, "analyst's raw 403", body, "You do not have permission dataset.read_raw")
	}
	if !decided(t, e, "user:ann", access.DatasetReadRaw, audit.OutcomeDenied) {
		t.Error("the analyst's refused raw read is not in the audit log")
	}
	if status, _ := ann.get("/runs/" + url.PathEscape(runID) + "/datasets/nope"); status != http.StatusNotFound {
		t.Errorf("unknown dataset: %d, want 404", status)
	}

	rita := e.browser()
	rita.signIn("rita", totpCode(t, ritaKey, time.Now()))
	status, body = rita.get(rowsPath)
	if status != http.StatusOK {
		t.Fatalf("raw reader's default rows: %d", status)
	}
	mustContain(t, "raw reader's default view", body, `id="masked-notice"`, "al***", `id="show-raw"`, `href="`+rowsPath+`?raw=1"`)
	mustNotContain(t, "raw reader's default view", body, "example.com")
	if decided(t, e, "user:rita", access.DatasetReadRaw, audit.OutcomeSuccess) {
		t.Error("the masked default view recorded a raw read")
	}
	status, body = rita.get(rowsPath + "?raw=1")
	if status != http.StatusOK {
		t.Fatalf("raw reader's raw rows: %d\n%.800s", status, body)
	}
	mustContain(t, "raw rows", body, `id="raw-notice"`, "<td>alice@example.com</td>", "<td>carol@example.com</td>", `id="show-masked"`)
	mustNotContain(t, "raw rows", body, "al***", `<span class="badge warn">masked</span>`)
	if !decided(t, e, "user:rita", access.DatasetReadRaw, audit.OutcomeSuccess) {
		t.Error("the raw read is not in the audit log")
	}
}

// TestAccessReviewForm records an access review from the access page:
// the binding given "revoke" is deleted, the one given "keep" stays, the
// review is in the audit log; nobody keeps their own binding, and whoever
// lacks binding.revoke gets no form and a recorded 403.
func TestAccessReviewForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("dana", false, "team", access.RoleDataEngineer)
	e.user("vic", false, "team", access.RoleViewer)
	secKey := e.user("sam", true, "", access.RoleSecurityEngineer)

	sam := e.browser()
	sam.signIn("sam", totpCode(t, secKey, time.Now()))
	status, body := sam.get("/access")
	if status != http.StatusOK {
		t.Fatalf("security engineer on /access: %d", status)
	}
	mustContain(t, "review form", body, `<form method="post" action="/access/review" id="review-form">`,
		`id="keep-b_vic_viewer"`, `id="revoke-b_vic_viewer"`, `id="revoke-b_sam_security-engineer"`, `id="record-review"`)
	mustNotContain(t, "review form", body, `id="keep-b_sam_security-engineer"`)

	// Keeping one's own binding is refused and nothing is applied.
	status, body = sam.post("/access/review", url.Values{"binding": {"b_sam_security-engineer", "b_vic_viewer"},
		"verdict-b_sam_security-engineer": {"keep"}, "verdict-b_vic_viewer": {"revoke"}})
	if status != http.StatusConflict || !strings.Contains(body, access.RuleSelfReview) {
		t.Errorf("keeping one's own binding: %d, want 409 naming %s\n%.600s", status, access.RuleSelfReview, body)
	}
	if _, err := e.app.Store.GetBinding(t.Context(), "b_vic_viewer"); err != nil {
		t.Errorf("a refused review revoked a binding: %v", err)
	}
	if status, _ := sam.post("/access/review", url.Values{"binding": {"b_vic_viewer"}}); status != http.StatusBadRequest {
		t.Errorf("a review with no verdict: %d, want 400", status)
	}
	if status, _ := sam.post("/access/review", url.Values{"binding": {"b_vic_viewer"}, "verdict-b_vic_viewer": {"delete"}}); status != http.StatusBadRequest {
		t.Errorf("an unknown verdict: %d, want 400", status)
	}

	_, _ = sam.get("/access")
	status, body = sam.post("/access/review", url.Values{
		"binding":                      {"b_dana_data-engineer", "b_vic_viewer", "b_sam_security-engineer"},
		"verdict-b_dana_data-engineer": {"keep"}, "note-b_dana_data-engineer": {"still on the team"},
		"verdict-b_vic_viewer": {"revoke"}, "note-b_vic_viewer": {"left the company"},
	})
	if status != http.StatusOK {
		t.Fatalf("recording a review: %d\n%.800s", status, body)
	}
	mustContain(t, "access page after the review", body, `id="review-recorded"`)
	mustNotContain(t, "access page after the review", body, "<code>b_vic_viewer</code>")
	if _, err := e.app.Store.GetBinding(t.Context(), "b_vic_viewer"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked binding is still there: %v", err)
	}
	for _, id := range []string{"b_dana_data-engineer", "b_sam_security-engineer"} {
		if _, err := e.app.Store.GetBinding(t.Context(), id); err != nil {
			t.Errorf("binding %s: %v", id, err)
		}
	}
	es, err := audit.List(t.Context(), e.app.Store, store.AuditFilter{Actor: "user:sam", Action: access.ActReviewRecord})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Outcome != audit.OutcomeSuccess || es[0].Details["decisions"] != "2" || es[0].Details["revoked"] != "1" {
		t.Errorf("review events in the audit log: %+v", es)
	}

	dana := e.browser()
	dana.signIn("dana", "")
	if status, body := dana.get("/access"); status != http.StatusForbidden || strings.Contains(body, "review-form") {
		t.Errorf("data engineer on /access: %d, want 403 without the form", status)
	}
	_, _ = dana.get("/pipelines")
	if status, body := dana.post("/access/review", url.Values{"binding": {"b_dana_data-engineer"}, "verdict-b_dana_data-engineer": {"keep"}}); status != http.StatusForbidden {
		t.Errorf("data engineer recording a review: %d, want 403\n%.400s", status, body)
	}
	if !decided(t, e, "user:dana", access.BindingRevoke, audit.OutcomeDenied) {
		t.Error("the refused review is not in the audit log")
	}
}
