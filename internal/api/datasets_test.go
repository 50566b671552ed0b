package api_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store"
)

// writeFile writes a file into the workspace of ns/name, where the
// pipeline's relative paths resolve.
func writeFile(e *env, ns, name, file string) error {
	return writeWorkspace(e, ns, name, file, "")
}

func writeWorkspace(e *env, ns, name, file, content string) error {
	dir := filepath.Join(e.app.Config.Home, "pipelines", ns, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600)
}

const peopleYAML = `pipeline: people
namespace: crm
classification: confidential
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
            age: {range: {min: 0, max: 130}}
`

const peopleCSV = "id,email,age\n1,alice@example.com,34\n2,bob@example.com,51\n3,carol@example.com,27\n"

func TestDatasets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dana := e.user("dana", "data-engineer", "crm")
	ann := e.user("ann", "data-analyst", "crm")
	olga := e.user("olga", "operations-engineer", "crm")
	pat := e.user("pat", "platform-engineer", "")
	// Raw data is in no built-in role: a custom one, as granted under
	// the two-person rule.
	if err := e.app.Store.CreateRole(t.Context(), store.Role{Name: "raw-reader", Permissions: []string{"dataset.read_masked", "dataset.read_raw"},
		CreatedBy: "test", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rita := e.user("rita", "raw-reader", "crm")

	if err := writeWorkspace(e, "crm", "people", "people.csv", peopleCSV); err != nil {
		t.Fatal(err)
	}
	dana.push("crm", "people", peopleYAML, http.StatusCreated)
	run := dana.waitRun(dana.trigger("crm", "people", http.StatusAccepted).ID)
	if run.State != "success" {
		t.Fatalf("run %s: %s %+v", run.State, run.Error, run.Tasks)
	}

	var list api.Page[api.Dataset]
	r := ann.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/datasets", nil)
	r.decode(t, &list)
	byTask := map[string]api.Dataset{}
	for _, d := range list.Items {
		if d.Kind == "output" {
			byTask[d.Task] = d
		}
	}
	ext, clean := byTask["extract"], byTask["clean"]
	if r.Status != http.StatusOK || ext.ID == "" || clean.ID == "" {
		t.Fatalf("datasets = %d %s", r.Status, r.Body)
	}
	if clean.Rows != 3 || clean.Classification != "confidential" || !slices.Equal(clean.Parents, []string{ext.ID}) || len(ext.Parents) != 0 {
		t.Errorf("clean dataset = %+v", clean)
	}
	if len(clean.Schema) != 3 || clean.Schema[0] != (api.Column{Name: "id", Type: "int"}) || len(clean.SHA256) != 64 {
		t.Errorf("clean schema = %+v", clean.Schema)
	}
	var checks []string
	for _, c := range clean.Quality {
		if !c.Passed {
			t.Errorf("check %s did not pass: %+v", c.Name, c)
		}
		checks = append(checks, c.Name)
	}
	if len(checks) < 3 {
		t.Errorf("quality results = %v, want the three checks", checks)
	}

	t.Run("Get", func(t *testing.T) {
		var d api.Dataset
		r := ann.do(http.MethodGet, api.Prefix+"/datasets/"+url.PathEscape(clean.ID), nil)
		r.decode(t, &d)
		if r.Status != http.StatusOK || d.ID != clean.ID || d.RunID != run.ID || len(d.Quality) != len(clean.Quality) {
			t.Errorf("GET dataset = %d %s", r.Status, r.Body)
		}
		if r := e.user("gus", "data-analyst", "").do(http.MethodGet, api.Prefix+"/datasets/nope", nil); r.Status != http.StatusNotFound {
			t.Errorf("GET unknown dataset = %d, want 404", r.Status)
		}
	})
	t.Run("Masked", func(t *testing.T) {
		var rows api.DatasetRows
		r := ann.do(http.MethodGet, api.Prefix+"/datasets/"+url.PathEscape(clean.ID)+"/rows?limit=2", nil)
		r.decode(t, &rows)
		if r.Status != http.StatusOK || !rows.Masked || !rows.Truncated || len(rows.Rows) != 2 || !slices.Equal(rows.MaskedColumns, []string{"email"}) {
			t.Fatalf("masked rows = %d %s", r.Status, r.Body)
		}
		if rows.Rows[0][1] != "al***" || rows.Rows[0][0] != float64(1) || rows.Rows[0][2] != float64(34) {
			t.Errorf("first masked row = %v", rows.Rows[0])
		}
		if strings.Contains(string(r.Body), "example.com") {
			t.Errorf("masked rows show an email address: %s", r.Body)
		}
	})
	t.Run("Raw", func(t *testing.T) {
		var rows api.DatasetRows
		r := rita.do(http.MethodGet, api.Prefix+"/datasets/"+url.PathEscape(clean.ID)+"/rows", nil)
		r.decode(t, &rows)
		if r.Status != http.StatusOK || rows.Masked || rows.Truncated || len(rows.Rows) != 3 || rows.Rows[2][1] != "carol@example.com" {
			t.Fatalf("raw rows = %d %s", r.Status, r.Body)
		}
		// The privileged read is in the audit log.
		evs, err := e.app.Store.ListAudit(t.Context(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			if strings.Contains(ev.Actor, "rita") && strings.Contains(string(ev.Event), "dataset.read_raw") {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record of rita's raw read among %d events", len(evs))
		}
	})
	t.Run("Denied", func(t *testing.T) {
		for name, c := range map[string]*client{"operations": olga, "platform": pat, "analyst elsewhere": e.user("hal", "data-analyst", "hr")} {
			for _, path := range []string{"/runs/" + run.ID + "/datasets", "/datasets/" + url.PathEscape(clean.ID), "/datasets/" + url.PathEscape(clean.ID) + "/rows"} {
				if r := c.do(http.MethodGet, api.Prefix+path, nil); r.Status != http.StatusForbidden {
					t.Errorf("%s GET %s = %d, want 403", name, path, r.Status)
				}
			}
		}
		if r := ann.raw().do(http.MethodGet, api.Prefix+"/datasets/"+url.PathEscape(clean.ID)+"/rows?limit=501", nil); r.Status != http.StatusBadRequest {
			t.Errorf("limit=501 = %d, want 400", r.Status)
		}
	})
}
