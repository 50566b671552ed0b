package web

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"", "/pipelines"},
		{"/runs/abc", "/runs/abc"},
		{"/pipelines?x=1", "/pipelines?x=1"},
		{"//evil.example/x", "/pipelines"},
		{"/\\evil.example", "/pipelines"},
		{"https://evil.example/", "/pipelines"},
		{"javascript:alert(1)", "/pipelines"},
	} {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDAGLayout(t *testing.T) {
	t.Parallel()
	src := "pipeline: p\ntasks:\n  a:\n    shell: [\"true\"]\n  b:\n    needs: [a]\n    shell: [\"true\"]\n" +
		"  c:\n    needs: [a]\n    shell: [\"true\"]\n  d:\n    needs: [b, c]\n    shell: [\"true\"]\n  e:\n    shell: [\"true\"]\n"
	p, err := pipeline.Parse("p.yaml", []byte(src), pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, cols, rows := layoutDAG(p.Tasks)
	got := map[string][2]int{}
	for _, n := range nodes {
		got[n.name] = [2]int{n.col, n.row}
	}
	want := map[string][2]int{"a": {0, 0}, "b": {1, 0}, "c": {1, 1}, "d": {2, 0}, "e": {0, 1}}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("task %s at (col, row) %v, want %v", k, got[k], w)
		}
	}
	if cols != 3 || rows != 2 {
		t.Errorf("grid %dx%d, want 3x2", cols, rows)
	}
	svg := string(dagSVG(p, map[string]store.TaskState{"a": store.TaskSuccess, "d": store.TaskFailed}))
	for _, want := range []string{`class="dag-node s-success"`, `class="dag-node s-failed"`, "a → b", "b → d", "c → d", `<title id="dag-title">`} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if strings.Contains(svg, "style=") {
		t.Error("svg carries a style attribute, which the CSP refuses")
	}
	if got := strings.Count(svg, `class="dag-edge"`); got != 4 {
		t.Errorf("%d edges, want 4", got)
	}
}

func TestDAGEscapes(t *testing.T) {
	t.Parallel()
	p := &pipeline.Pipeline{Name: "<p>", Namespace: "n&s", Tasks: []*pipeline.Task{{Name: `x"><script>`, Kind: "shell"}}}
	svg := string(dagSVG(p, nil))
	if strings.Contains(svg, "<script>") || strings.Contains(svg, `x">`) || strings.Contains(svg, "<p>") {
		t.Errorf("names are not escaped: %s", svg)
	}
}

// gridFixture is runs runs of a pipeline of tasks tasks, in mixed states.
func gridFixture(runs, tasks int) ([]store.Run, map[string][]store.TaskRun) {
	states := []store.TaskState{store.TaskSuccess, store.TaskSuccess, store.TaskFailed, store.TaskRunning, store.TaskSkipped, store.TaskUpForRetry}
	rs := make([]store.Run, runs)
	trs := make(map[string][]store.TaskRun, runs)
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rs {
		id := fmt.Sprintf("run-%04d-0123456789abcdef", runs-i)
		rs[i] = store.Run{ID: id, Namespace: "team", Pipeline: "wide", State: store.RunSuccess,
			LogicalDate: day.AddDate(0, 0, runs-i).Format(time.DateOnly)}
		list := make([]store.TaskRun, tasks)
		for j := range list {
			list[j] = store.TaskRun{RunID: id, Task: fmt.Sprintf("task_%03d_transform", j), Seq: j, State: states[(i+j)%len(states)]}
		}
		trs[id] = list
	}
	return rs, trs
}

func TestRunsGridRender(t *testing.T) {
	t.Parallel()
	pages, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	u := &UI{pages: pages}
	runs, trs := gridFixture(3, 4)
	trs[runs[2].ID] = trs[runs[2].ID][:2] // the oldest run had two tasks only
	rec := httptest.NewRecorder()
	u.render(rec, httptest.NewRequest("GET", "/pipelines/team/wide/runs", nil), 200, "grid", &viewer{}, "Runs", buildGrid("team", "wide", runs, trs))
	body := rec.Body.String()
	if got := strings.Count(body, `<td class="s-`); got != 12 {
		t.Errorf("%d cells, want 12 (4 tasks × 3 runs)", got)
	}
	if got := strings.Count(body, "not in this run"); got != 2 {
		t.Errorf("%d empty cells, want 2", got)
	}
	if !strings.Contains(body, `<th scope="row">task_000_transform</th>`) || !strings.Contains(body, `href="/runs/run-0003-0123456789abcdef/tasks/task_001_transform"`) {
		t.Errorf("grid lacks a task row or a cell link:\n%.2000s", body)
	}
	// Oldest run on the left.
	if strings.Index(body, "run-0001-") > strings.Index(body, "run-0003-") {
		t.Error("runs are not ordered oldest first")
	}
}

// BenchmarkRunsGrid renders the runs grid of 200 tasks × 25 runs, from
// store records to HTML: the target is under 100 ms per page.
func BenchmarkRunsGrid(b *testing.B) {
	pages, err := parseTemplates()
	if err != nil {
		b.Fatal(err)
	}
	u := &UI{pages: pages}
	runs, trs := gridFixture(25, 200)
	req := httptest.NewRequest("GET", "/pipelines/team/wide/runs", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		u.render(rec, req, 200, "grid", &viewer{}, "Runs", buildGrid("team", "wide", runs, trs))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
