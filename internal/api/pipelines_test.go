package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store"
)

// helloYAML is a one-task shell pipeline in namespace ns.
func helloYAML(ns, name string) string {
	return fmt.Sprintf("pipeline: %s\nnamespace: %s\ntasks:\n  say:\n    shell: [\"echo\", \"hi\"]\n", name, ns)
}

func pipePath(ns, name string) string { return api.Prefix + "/pipelines/" + ns + "/" + name }

// push pushes content as the next version of ns/name, failing the test
// unless the server answers want.
func (c *client) push(ns, name, content string, want int) api.Version {
	c.e.t.Helper()
	r := c.do(http.MethodPost, pipePath(ns, name)+"/versions", api.PushRequest{Content: content})
	if r.Status != want {
		c.e.t.Fatalf("push %s/%s = %d %s, want %d", ns, name, r.Status, r.Body, want)
	}
	var v api.Version
	if want < 300 {
		r.decode(c.e.t, &v)
	}
	return v
}

func TestPipelinePushAndRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "sales")
	viewer := e.user("vic", "viewer", "sales")
	outsider := e.user("otto", "viewer", "hr")
	analyst := e.user("ann", "data-analyst", "sales")

	v1 := alice.push("sales", "hello", helloYAML("sales", "hello"), http.StatusCreated)
	if v1.Number != 1 || v1.Author != "alice" || len(v1.Hash) != 64 || v1.Approved {
		t.Errorf("first version = %+v", v1)
	}
	// The same bytes again store nothing.
	if again := alice.push("sales", "hello", helloYAML("sales", "hello"), http.StatusOK); again.Number != 1 {
		t.Errorf("re-push = version %d, want 1", again.Number)
	}

	t.Run("List", func(t *testing.T) {
		var page api.Page[api.Pipeline]
		r := viewer.do(http.MethodGet, api.Prefix+"/pipelines", nil)
		r.decode(t, &page)
		if r.Status != http.StatusOK || len(page.Items) != 1 {
			t.Fatalf("viewer list = %d %s", r.Status, r.Body)
		}
		p := page.Items[0]
		if p.Namespace != "sales" || p.Name != "hello" || p.LatestVersion != 1 || p.Owner != "alice" || p.RunnableVersion != 1 || p.Classification != "internal" {
			t.Errorf("pipeline = %+v", p)
		}
		for name, c := range map[string]*client{"viewer of another namespace": outsider, "analyst (no pipeline.read)": analyst} {
			var page api.Page[api.Pipeline]
			c.do(http.MethodGet, api.Prefix+"/pipelines", nil).decode(t, &page)
			if len(page.Items) != 0 {
				t.Errorf("%s sees %d pipelines, want none", name, len(page.Items))
			}
		}
	})

	t.Run("Get", func(t *testing.T) {
		r := viewer.do(http.MethodGet, pipePath("sales", "hello"), nil)
		var p api.Pipeline
		r.decode(t, &p)
		if r.Status != http.StatusOK || r.Header.Get("ETag") != `"1"` || len(p.Tasks) != 1 || p.Tasks[0] != "say" {
			t.Errorf("GET pipeline = %d %s (ETag %s)", r.Status, r.Body, r.Header.Get("ETag"))
		}
		if r := outsider.do(http.MethodGet, pipePath("sales", "hello"), nil); r.Status != http.StatusForbidden {
			t.Errorf("outsider GET = %d, want 403", r.Status)
		}
		if r := viewer.do(http.MethodGet, pipePath("sales", "nope"), nil); r.Status != http.StatusNotFound {
			t.Errorf("GET unknown pipeline = %d, want 404", r.Status)
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		c2 := *alice
		c2.header = http.Header{"If-Match": {`"1"`}}
		v2 := c2.push("sales", "hello", helloYAML("sales", "hello")+"description: second\n", http.StatusCreated)
		if v2.Number != 2 {
			t.Fatalf("second version = %d", v2.Number)
		}
		// An edit based on version 1 now conflicts.
		r := c2.do(http.MethodPost, pipePath("sales", "hello")+"/versions", api.PushRequest{Content: helloYAML("sales", "hello") + "description: third\n"})
		if r.Status != http.StatusPreconditionFailed || r.errorCode() != "precondition_failed" {
			t.Errorf("stale If-Match = %d %s, want 412", r.Status, r.Body)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		var p1, p2 api.Page[api.Version]
		r := viewer.do(http.MethodGet, pipePath("sales", "hello")+"/versions?limit=1", nil)
		r.decode(t, &p1)
		if len(p1.Items) != 1 || p1.Items[0].Number != 2 || p1.NextCursor == "" || p1.Items[0].Content != "" {
			t.Fatalf("first page = %s", r.Body)
		}
		r = viewer.do(http.MethodGet, pipePath("sales", "hello")+"/versions?limit=1&cursor="+p1.NextCursor, nil)
		r.decode(t, &p2)
		if len(p2.Items) != 1 || p2.Items[0].Number != 1 || p2.NextCursor != "" {
			t.Fatalf("second page = %s", r.Body)
		}
		var v api.Version
		r = viewer.do(http.MethodGet, pipePath("sales", "hello")+"/versions/2", nil)
		r.decode(t, &v)
		if r.Header.Get("ETag") != `"2"` || !strings.Contains(v.Content, "description: second") || !strings.Contains(v.Diff, "+description: second") {
			t.Errorf("version 2 = %s", r.Body)
		}
		for path, want := range map[string]int{"/versions/9": http.StatusNotFound, "/versions/x": http.StatusBadRequest} {
			if r := viewer.do(http.MethodGet, pipePath("sales", "hello")+path, nil); r.Status != want {
				t.Errorf("GET %s = %d, want %d", path, r.Status, want)
			}
		}
	})

	t.Run("Denied", func(t *testing.T) {
		for name, c := range map[string]*client{"viewer": viewer, "analyst": analyst, "other namespace": e.user("dora", "data-engineer", "hr")} {
			r := c.do(http.MethodPost, pipePath("sales", "hello")+"/versions", api.PushRequest{Content: helloYAML("sales", "hello") + "# x\n"})
			if r.Status != http.StatusForbidden {
				t.Errorf("%s push = %d %s, want 403", name, r.Status, r.Body)
			}
		}
	})
}

// TestPushInvalid refuses files that do not parse, naming every error's
// place, and files that name another pipeline.
func TestPushInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "sales")
	tests := []struct {
		name, content string
		want          []string
	}{
		{"UnknownKey", "pipeline: hello\nnamespace: sales\ntasks:\n  say:\n    shel: [\"echo\"]\n", []string{"pipeline.yaml:5:"}},
		{"Syntax", "pipeline: hello\nnamespace: sales\ntasks: [\n", []string{"pipeline.yaml:"}},
		{"OtherName", helloYAML("sales", "other"), []string{"defines pipeline sales/other, not sales/hello"}},
		{"OtherNamespace", helloYAML("hr", "hello"), []string{"defines pipeline hr/hello"}},
		{"Empty", "", []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.do(http.MethodPost, pipePath("sales", "hello")+"/versions", api.PushRequest{Content: tt.content})
			if r.Status != http.StatusBadRequest || r.errorCode() != "invalid" {
				t.Fatalf("push = %d %s, want 400", r.Status, r.Body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.Body), w) {
					t.Errorf("error %s does not say %q", r.Body, w)
				}
			}
		})
	}
	if r := alice.do(http.MethodGet, pipePath("sales", "hello"), nil); r.Status != http.StatusNotFound {
		t.Errorf("after refused pushes GET = %d, want 404: nothing stored", r.Status)
	}
}

// TestApproveTwoPerson: in a protected namespace only a version approved
// by someone other than its author runs.
func TestApproveTwoPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.app.Store.SetNamespaceProtected(t.Context(), store.ProtectedNamespace{Namespace: "fin", SetBy: "test", SetAt: time.Now()}, true); err != nil {
		t.Fatal(err)
	}
	alice := e.user("alice", "data-engineer", "fin")
	bob := e.user("bob", "data-engineer", "fin")
	viewer := e.user("vic", "viewer", "fin")
	alice.push("fin", "hello", helloYAML("fin", "hello"), http.StatusCreated)

	r := alice.do(http.MethodPost, pipePath("fin", "hello")+"/runs", api.TriggerRequest{})
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "not approved") {
		t.Errorf("trigger of an unapproved version = %d %s, want 409", r.Status, r.Body)
	}
	var p api.Pipeline
	viewer.do(http.MethodGet, pipePath("fin", "hello"), nil).decode(t, &p)
	if !p.Protected || p.RunnableVersion != 0 || p.NotRunnable == "" {
		t.Errorf("unapproved pipeline = %+v", p)
	}

	approve := pipePath("fin", "hello") + "/versions/1/approve"
	r = alice.do(http.MethodPost, approve, nil)
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "segregation of duties") {
		t.Errorf("self-approval = %d %s, want 403 naming segregation of duties", r.Status, r.Body)
	}
	if r := viewer.do(http.MethodPost, approve, nil); r.Status != http.StatusForbidden {
		t.Errorf("viewer approval = %d, want 403", r.Status)
	}
	var v api.Version
	r = bob.do(http.MethodPost, approve, nil)
	r.decode(t, &v)
	if r.Status != http.StatusOK || !v.Approved || v.Approver != "bob" || v.ApprovedAt.IsZero() {
		t.Fatalf("bob's approval = %d %s", r.Status, r.Body)
	}
	if r := bob.do(http.MethodPost, approve, nil); r.Status != http.StatusConflict {
		t.Errorf("second approval = %d, want 409", r.Status)
	}
	if r := bob.do(http.MethodPost, pipePath("fin", "hello")+"/versions/7/approve", nil); r.Status != http.StatusNotFound {
		t.Errorf("approval of a missing version = %d, want 404", r.Status)
	}
	run := alice.trigger("fin", "hello", http.StatusAccepted)
	if got := alice.waitRun(run.ID); got.State != "success" {
		t.Errorf("approved version's run = %s %s", got.State, got.Error)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "ops")
	olga := e.user("olga", "operations-engineer", "ops")
	alice.push("ops", "nightly", "pipeline: nightly\nnamespace: ops\nschedule: \"0 3 * * *\"\ntasks:\n  t:\n    shell: [\"true\"]\n", http.StatusCreated)

	var p api.Pipeline
	r := olga.do(http.MethodPost, pipePath("ops", "nightly")+"/pause", nil)
	r.decode(t, &p)
	if r.Status != http.StatusOK || !p.Paused || p.PausedBy != "olga" || p.Schedule != "0 3 * * *" {
		t.Errorf("pause = %d %s", r.Status, r.Body)
	}
	if r := alice.do(http.MethodPost, pipePath("ops", "nightly")+"/resume", nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer resume = %d, want 403 (run.control)", r.Status)
	}
	r = olga.do(http.MethodPost, pipePath("ops", "nightly")+"/resume", nil)
	p = api.Pipeline{}
	r.decode(t, &p)
	if r.Status != http.StatusOK || p.Paused {
		t.Errorf("resume = %d %s", r.Status, r.Body)
	}
	if r := olga.do(http.MethodPost, pipePath("ops", "nope")+"/pause", nil); r.Status != http.StatusNotFound {
		t.Errorf("pause of an unknown pipeline = %d, want 404", r.Status)
	}
}
