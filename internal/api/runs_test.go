package api_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store"
)

// trigger starts a run of ns/name, failing the test unless the server
// answers want.
func (c *client) trigger(ns, name string, want int) api.Run {
	c.e.t.Helper()
	r := c.do(http.MethodPost, pipePath(ns, name)+"/runs", api.TriggerRequest{})
	if r.Status != want {
		c.e.t.Fatalf("trigger %s/%s = %d %s, want %d", ns, name, r.Status, r.Body, want)
	}
	var run api.Run
	if want < 300 {
		r.decode(c.e.t, &run)
	}
	return run
}

// getRun reads a run with its tasks.
func (c *client) getRun(id string) api.Run {
	c.e.t.Helper()
	r := c.do(http.MethodGet, api.Prefix+"/runs/"+id, nil)
	if r.Status != http.StatusOK {
		c.e.t.Fatalf("GET run %s = %d %s", id, r.Status, r.Body)
	}
	var run api.Run
	r.decode(c.e.t, &run)
	return run
}

// waitRun polls a run until it ends.
func (c *client) waitRun(id string) api.Run {
	c.e.t.Helper()
	return c.waitFor(id, func(r api.Run) bool { return store.RunState(r.State).Done() })
}

// waitFor polls a run until ok holds, for at most 30 seconds.
func (c *client) waitFor(id string, ok func(api.Run) bool) api.Run {
	c.e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := c.getRun(id)
		if ok(run) {
			return run
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("run %s: still %s after 30s: %+v", id, run.State, run.Tasks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTriggerRunToSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "sales")
	analyst := e.user("ann", "data-analyst", "sales")
	viewer := e.user("vic", "viewer", "sales")
	security := e.user("sam", "security-engineer", "")
	alice.push("sales", "hello", helloYAML("sales", "hello"), http.StatusCreated)

	queued := alice.trigger("sales", "hello", http.StatusAccepted)
	if queued.ID == "" || queued.Trigger != "manual" || queued.Namespace != "sales" || queued.LogicalDate == "" {
		t.Errorf("triggered run = %+v", queued)
	}
	run := alice.waitRun(queued.ID)
	if run.State != "success" || len(run.Tasks) != 1 || run.Tasks[0].State != "success" || run.EndedAt.IsZero() {
		t.Fatalf("run = %+v", run)
	}

	t.Run("Attempts", func(t *testing.T) {
		var page api.Page[api.Attempt]
		r := viewer.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/say/attempts", nil)
		r.decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].Outcome != "success" || !page.Items[0].HasLog {
			t.Errorf("attempts = %d %s", r.Status, r.Body)
		}
		if r := viewer.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/nope/attempts", nil); r.Status != http.StatusNotFound {
			t.Errorf("attempts of an unknown task = %d, want 404", r.Status)
		}
	})
	t.Run("Log", func(t *testing.T) {
		r := alice.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/say/log", nil)
		if r.Status != http.StatusOK || string(r.Body) != "hi\n" || r.Header.Get("X-Sluice-Attempt") != "1" ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("log = %d %q %v", r.Status, r.Body, r.Header)
		}
		for name, c := range map[string]*client{"analyst": analyst, "viewer": viewer} {
			if r := c.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/say/log", nil); r.Status != http.StatusForbidden {
				t.Errorf("%s log = %d, want 403 (log.read)", name, r.Status)
			}
		}
		if r := alice.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/say/log?attempt=2", nil); r.Status != http.StatusNotFound {
			t.Errorf("log of a missing attempt = %d, want 404", r.Status)
		}
	})
	t.Run("Read", func(t *testing.T) {
		for name, c := range map[string]*client{"analyst": analyst, "viewer": viewer} {
			var page api.Page[api.Run]
			c.do(http.MethodGet, api.Prefix+"/runs", nil).decode(t, &page)
			if len(page.Items) != 1 || page.Items[0].ID != run.ID || page.Items[0].Tasks != nil {
				t.Errorf("%s lists %+v", name, page.Items)
			}
		}
		var page api.Page[api.Run]
		security.do(http.MethodGet, api.Prefix+"/runs", nil).decode(t, &page)
		if len(page.Items) != 0 {
			t.Errorf("security engineer lists %d runs, want none", len(page.Items))
		}
		if r := security.do(http.MethodGet, api.Prefix+"/runs/"+run.ID, nil); r.Status != http.StatusForbidden {
			t.Errorf("security engineer GET run = %d, want 403", r.Status)
		}
		if r := e.user("root", "viewer", "").do(http.MethodGet, api.Prefix+"/runs/nope", nil); r.Status != http.StatusNotFound {
			t.Errorf("GET unknown run (global viewer) = %d, want 404", r.Status)
		}
	})
	t.Run("Denied", func(t *testing.T) {
		for name, c := range map[string]*client{"analyst": analyst, "viewer": viewer, "security": security} {
			if r := c.do(http.MethodPost, pipePath("sales", "hello")+"/runs", api.TriggerRequest{}); r.Status != http.StatusForbidden {
				t.Errorf("%s trigger = %d, want 403", name, r.Status)
			}
		}
	})
	t.Run("BadRequest", func(t *testing.T) {
		r := alice.raw().do(http.MethodPost, pipePath("sales", "hello")+"/runs", api.TriggerRequest{LogicalDate: "yesterday"})
		if r.Status != http.StatusBadRequest {
			t.Errorf("bad logical date = %d %s, want 400", r.Status, r.Body)
		}
		if r := alice.do(http.MethodPost, pipePath("sales", "nope")+"/runs", api.TriggerRequest{}); r.Status != http.StatusNotFound {
			t.Errorf("trigger of an unknown pipeline = %d, want 404", r.Status)
		}
	})
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "ops")
	olga := e.user("olga", "operations-engineer", "ops")
	alice.push("ops", "slow", "pipeline: slow\nnamespace: ops\ntasks:\n  wait:\n    shell: [\"sleep\", \"30\"]\n  after:\n    needs: [wait]\n    shell: [\"true\"]\n", http.StatusCreated)
	run := olga.trigger("ops", "slow", http.StatusAccepted)
	olga.waitFor(run.ID, func(r api.Run) bool { return len(r.Tasks) > 0 && r.Tasks[0].State == "running" })

	if r := alice.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/cancel", nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer cancel = %d, want 403 (run.control)", r.Status)
	}
	start := time.Now()
	if r := olga.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/cancel", nil); r.Status != http.StatusAccepted {
		t.Fatalf("cancel = %d %s, want 202", r.Status, r.Body)
	}
	got := olga.waitRun(run.ID)
	if got.State != "cancelled" || got.Tasks[0].State != "cancelled" || got.Tasks[1].State != "cancelled" {
		t.Errorf("after cancel: %+v", got)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if r := olga.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/cancel", nil); r.Status != http.StatusConflict {
		t.Errorf("second cancel = %d, want 409", r.Status)
	}
}

// TestCancelIdleRun cancels a run nobody executes (created, never
// started): it is recorded cancelled at once.
func TestCancelIdleRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	olga := e.user("olga", "operations-engineer", "ops")
	if _, err := e.app.Store.CreateRun(t.Context(), store.NewRun{ID: "idle-1", Namespace: "ops", Pipeline: "p", LogicalDate: "2026-01-01",
		Trigger: "manual", Tasks: []string{"a", "b"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var run api.Run
	r := olga.do(http.MethodPost, api.Prefix+"/runs/idle-1/cancel", nil)
	r.decode(t, &run)
	if r.Status != http.StatusOK || run.State != "cancelled" || run.Tasks[0].State != "cancelled" || !strings.Contains(run.Error, "olga") {
		t.Errorf("cancel of an idle run = %d %s", r.Status, r.Body)
	}
	evs, err := e.app.Store.ListAudit(t.Context(), store.AuditFilter{Action: "run.cancel"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "user:olga" || evs[0].Resource != "run:idle-1" {
		t.Errorf("audit records of the cancel: %+v", evs)
	}
	// A run action's record has the caller's address as every API
	// record has it: the IP address, without the port.
	for _, ev := range evs {
		var body struct {
			Address string `json:"address"`
		}
		if err := json.Unmarshal(ev.Event, &body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := net.SplitHostPort(body.Address); err == nil || net.ParseIP(body.Address) == nil {
			t.Errorf("address of the cancel's record = %q, want an IP address without a port", body.Address)
		}
	}
}

// TestMarkFailureAudited: a mark the store refuses is answered 409 and
// recorded with outcome failure.
func TestMarkFailureAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	olga := e.user("olga", "operations-engineer", "ops")
	ctx := t.Context()
	// A failed run whose tasks never left pending: none of them is in a
	// state a mark may start from.
	if _, err := e.app.Store.CreateRun(ctx, store.NewRun{ID: "ended-1", Namespace: "ops", Pipeline: "p", LogicalDate: "2026-01-01",
		Trigger: "manual", Tasks: []string{"a"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.SetRunState(ctx, store.SetRunState{RunID: "ended-1", From: []store.RunState{store.RunQueued}, To: store.RunFailed}); err != nil {
		t.Fatal(err)
	}
	r := olga.do(http.MethodPost, api.Prefix+"/runs/ended-1/tasks/a/mark", api.MarkRequest{State: "success"})
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "pending") {
		t.Errorf("mark of a pending task = %d %s, want 409 naming its state", r.Status, r.Body)
	}
	evs, err := e.app.Store.ListAudit(ctx, store.AuditFilter{Action: "run.mark"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Outcome != "failure" || evs[0].Resource != "run:ended-1" {
		t.Errorf("audit records of the refused mark: %+v", evs)
	}
}

// TestRetryAndMark: a failed run is retried in place (its failed and
// skipped tasks run again, its successful ones are kept), and a task of a
// finished run can be marked.
func TestRetryAndMark(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "ops")
	olga := e.user("olga", "operations-engineer", "ops")
	// "flaky" fails until its marker file exists, which "fix" never
	// creates: the test creates it between the run and the retry.
	yaml := "pipeline: flaky\nnamespace: ops\ntasks:\n  first:\n    shell: [\"true\"]\n" +
		"  flaky:\n    needs: [first]\n    shell: [\"test\", \"-e\", \"fixed\"]\n" +
		"  last:\n    needs: [flaky]\n    shell: [\"echo\", \"done\"]\n"
	alice.push("ops", "flaky", yaml, http.StatusCreated)
	run := olga.waitRun(olga.trigger("ops", "flaky", http.StatusAccepted).ID)
	states := func(r api.Run) []string {
		var s []string
		for _, t := range r.Tasks {
			s = append(s, t.State)
		}
		return s
	}
	if run.State != "failed" || !slices.Equal(states(run), []string{"success", "failed", "skipped"}) || run.Error == "" {
		t.Fatalf("first run: %s %v %q", run.State, states(run), run.Error)
	}
	if r := alice.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/retry", nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer retry = %d, want 403", r.Status)
	}
	if err := writeFile(e, "ops", "flaky", "fixed"); err != nil {
		t.Fatal(err)
	}
	r := olga.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/retry", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("retry = %d %s, want 202", r.Status, r.Body)
	}
	again := olga.waitRun(run.ID)
	if again.State != "success" || !slices.Equal(states(again), []string{"success", "success", "success"}) || again.Error != "" {
		t.Fatalf("retried run: %s %v %q", again.State, states(again), again.Error)
	}
	if again.Tasks[0].Attempts != 1 || again.Tasks[1].Attempts != 2 {
		t.Errorf("attempts: first %d (want 1: kept), flaky %d (want 2)", again.Tasks[0].Attempts, again.Tasks[1].Attempts)
	}
	if r := olga.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/retry", nil); r.Status != http.StatusConflict {
		t.Errorf("retry of a successful run = %d, want 409", r.Status)
	}

	mark := api.Prefix + "/runs/" + run.ID + "/tasks/last/mark"
	var tr api.TaskRun
	r = olga.do(http.MethodPost, mark, api.MarkRequest{State: "failed", Reason: "bad output"})
	r.decode(t, &tr)
	if r.Status != http.StatusOK || tr.State != "failed" || tr.Error != "bad output" {
		t.Errorf("mark = %d %s", r.Status, r.Body)
	}
	if r := olga.raw().do(http.MethodPost, mark, api.MarkRequest{State: "running"}); r.Status != http.StatusBadRequest {
		t.Errorf("mark running = %d, want 400", r.Status)
	}
	if r := alice.do(http.MethodPost, mark, api.MarkRequest{State: "success"}); r.Status != http.StatusForbidden {
		t.Errorf("data engineer mark = %d, want 403", r.Status)
	}
	if r := olga.do(http.MethodPost, api.Prefix+"/runs/"+run.ID+"/tasks/nope/mark", api.MarkRequest{State: "success"}); r.Status != http.StatusNotFound {
		t.Errorf("mark unknown task = %d, want 404", r.Status)
	}
}

// TestListRunsPaging walks runs page by page: newest first, each once,
// filtered, and only those the caller may read.
func TestListRunsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var want, wantA []string
	for i := range 11 {
		ns := []string{"a", "b"}[i%2]
		id := fmt.Sprintf("run-%02d", i)
		// Runs 4 and 5 share an instant: the id orders them.
		at := base.Add(time.Duration(i) * time.Minute)
		if i == 5 {
			at = base.Add(4 * time.Minute)
		}
		if _, err := e.app.Store.CreateRun(t.Context(), store.NewRun{ID: id, Namespace: ns, Pipeline: "p", LogicalDate: "2026-05-01",
			Trigger: "schedule", Tasks: []string{"t"}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		want = append([]string{id}, want...)
		if ns == "a" {
			wantA = append([]string{id}, wantA...)
		}
	}
	walk := func(c *client, query string) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for range 20 {
			path := api.Prefix + "/runs?limit=3" + query
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var page api.Page[api.Run]
			r := c.do(http.MethodGet, path, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s = %d %s", path, r.Status, r.Body)
			}
			r.decode(t, &page)
			for _, run := range page.Items {
				ids = append(ids, run.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				return ids
			}
		}
		t.Fatal("paging does not end")
		return nil
	}
	global := e.user("gwen", "viewer", "")
	if got := walk(global, ""); !slices.Equal(got, want) {
		t.Errorf("all runs = %v, want %v", got, want)
	}
	if got := walk(global, "&namespace=a"); !slices.Equal(got, wantA) {
		t.Errorf("namespace a = %v, want %v", got, wantA)
	}
	if got := walk(e.user("nina", "viewer", "a"), ""); !slices.Equal(got, wantA) {
		t.Errorf("viewer of a = %v, want %v", got, wantA)
	}
	if got := walk(global, "&state=success"); len(got) != 0 {
		t.Errorf("state=success = %v, want none", got)
	}
	for _, q := range []string{"state=bogus", "limit=0", "limit=501", "cursor=!!"} {
		if r := global.raw().do(http.MethodGet, api.Prefix+"/runs?"+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("GET /runs?%s = %d, want 400", q, r.Status)
		}
	}
}

// TestLogStreaming reads a log of a few megabytes through the API: every
// byte arrives, in order.
func TestLogStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", "data-engineer", "ops")
	alice.push("ops", "chatty", "pipeline: chatty\nnamespace: ops\ntasks:\n  talk:\n    shell: [\"seq\", \"1\", \"300000\"]\n", http.StatusCreated)
	run := alice.waitRun(alice.trigger("ops", "chatty", http.StatusAccepted).ID)
	if run.State != "success" {
		t.Fatalf("run %s: %s", run.State, run.Error)
	}
	r := alice.do(http.MethodGet, api.Prefix+"/runs/"+run.ID+"/tasks/talk/log", nil)
	lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
	if r.Status != http.StatusOK || len(lines) != 300000 || lines[0] != "1" || lines[299999] != "300000" {
		t.Fatalf("log: %d, %d bytes, %d lines", r.Status, len(r.Body), len(lines))
	}
}
