package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Home = t.TempDir()
	return cfg
}

func noEnv(string) string { return "" }

// trustingClient trusts the certificate the server wrote to the state
// directory, as an operator's client would.
func trustingClient(t *testing.T, home string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(home, server.TLSDir, server.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in server.crt")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func parse(t *testing.T, src string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse("test.yaml", []byte(src), pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	s, err := Serve(t.Context(), cfg, Options{LogOutput: io.Discard, Getenv: noEnv}, ServerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer s.Stop()
	c := trustingClient(t, cfg.Home)
	base := s.HTTP.URL()

	for _, tt := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, `{"status":"ok"}`},
		{"/readyz", 200, `{"status":"ready"}`},
		{"/api/v1/health", 200, `{"status":"ok"}`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			if code, body := get(t, c, base+tt.path); code != tt.status || strings.TrimSpace(body) != tt.body {
				t.Errorf("GET %s = %d %s, want %d %s", tt.path, code, body, tt.status, tt.body)
			}
		})
	}
	// The API is mounted and refuses callers without a credential; an
	// unknown API path is a JSON not_found.
	for _, tt := range []struct {
		path, code string
		status     int
	}{
		{"/api/v1/runs", "unauthenticated", 401},
		{"/api/v1/no-such-thing", "not_found", 404},
	} {
		code, body := get(t, c, base+tt.path)
		var e struct {
			Error struct{ Code, Message, RequestID string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || code != tt.status || e.Error.Code != tt.code {
			t.Errorf("GET %s = %d %s, want a JSON %s", tt.path, code, body, tt.code)
		}
	}

	// A run executed by the embedded engine shows on /metrics.
	p := parse(t, "pipeline: hello\ntasks:\n  say:\n    shell: [\"true\"]\n")
	run, err := s.App.Engine.CreateRun(t.Context(), p, engine.RunRequest{Trigger: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.App.Engine.Execute(t.Context(), p, run.ID); err != nil || r.State != store.RunSuccess {
		t.Fatalf("Execute = %v, %v", r.State, err)
	}
	code, body := get(t, c, base+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil || code != 200 {
		t.Fatalf("/metrics = %d, parse error %v", code, err)
	}
	for fam, state := range map[string]string{"sluice_runs_finished_total": "success", "sluice_task_runs_finished_total": "success"} {
		var got float64
		for _, m := range fams[fam].GetMetric() {
			if m.GetLabel()[0].GetValue() == state {
				got = m.GetCounter().GetValue()
			}
		}
		if got != 1 {
			t.Errorf("%s{state=%q} = %v, want 1", fam, state, got)
		}
	}
	if n := fams["sluice_task_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("task duration samples = %d, want 1", n)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := c.Get(base + "/healthz"); err == nil {
		t.Errorf("server still answering after Stop")
	}
	if err := s.App.Ready(t.Context()); err == nil {
		t.Errorf("Ready after Stop closed the store = nil, want an error")
	}
}

func TestStopCancelsRunningTasksAndRecordsThem(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	started := make(chan struct{}, 1)
	observe := func(ev engine.Event) {
		if ev.Kind == engine.TaskStarted {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	}
	a, err := Open(t.Context(), cfg, Options{LogOutput: io.Discard, Getenv: noEnv, Observer: observe})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s, err := a.StartServer(t.Context(), ServerOptions{Listen: "127.0.0.1:0", InsecureHTTP: true, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, "pipeline: slow\ntasks:\n  wait:\n    shell: [sleep, \"30\"]\n")
	run, err := a.Engine.CreateRun(t.Context(), p, engine.RunRequest{Trigger: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan error, 1)
	s.Go(func(ctx context.Context) {
		_, err := a.Engine.Execute(ctx, p, run.ID)
		finished <- err
	})
	<-started
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
	default:
		t.Fatal("Stop returned before the background run finished")
	}
	got, err := a.Store.GetRun(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RunCancelled {
		t.Errorf("run state after Stop = %s, want cancelled", got.State)
	}
	if err := a.Ready(t.Context()); err != nil {
		t.Errorf("Ready with the app still open: %v", err)
	}
}

func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	_, err := Serve(t.Context(), cfg, Options{LogOutput: io.Discard, Getenv: noEnv}, ServerOptions{Listen: "0.0.0.0:0", InsecureHTTP: true})
	if !errors.Is(err, server.ErrInsecureListen) {
		t.Errorf("Serve = %v, want ErrInsecureListen", err)
	}
}

// sampleCount returns the counter value or histogram sample count of the
// series of fam labelled lv ("" for an unlabelled family), 0 if absent.
func sampleCount(t *testing.T, m *monitor.Metrics, fam, lv string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != fam {
			continue
		}
		for _, s := range f.GetMetric() {
			if lv != "" && (len(s.GetLabel()) == 0 || s.GetLabel()[0].GetValue() != lv) {
				continue
			}
			if s.Histogram != nil {
				return float64(s.GetHistogram().GetSampleCount())
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

func TestObserversFeedMetrics(t *testing.T) {
	t.Parallel()
	m := monitor.NewMetrics()
	var passed []engine.EventKind
	obs := observeMetrics(m, func(ev engine.Event) { passed = append(passed, ev.Kind) })
	events := []engine.Event{
		{Kind: engine.TaskStarted, State: "running"},
		{Kind: engine.TaskRetrying, State: "up_for_retry", Duration: time.Second},
		{Kind: engine.TaskFinished, State: "success", Duration: time.Second, RowsIn: 7, RowsOut: 5, RowsQuarantined: 2},
		{Kind: engine.TaskSkipped, State: "skipped"},
		{Kind: engine.RunFinished, State: "success", Duration: time.Minute},
	}
	for _, ev := range events {
		obs(ev)
	}
	if len(passed) != len(events) {
		t.Errorf("next observer got %d events, want %d", len(passed), len(events))
	}
	tick := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	sched := observeSchedule(m)
	sched(schedule.Event{Kind: schedule.EventRunCreated, Tick: tick, At: tick.Add(3 * time.Second)})
	sched(schedule.Event{Kind: schedule.EventRunCreated, At: tick}) // manual: no tick, no lag
	sched(schedule.Event{Kind: schedule.EventRunFinished, Tick: tick, At: tick.Add(time.Hour)})

	tests := []struct {
		fam, label string
		want       float64
	}{
		{monitor.FamilyTaskRuns, "running", 0},
		{monitor.FamilyTaskRuns, "up_for_retry", 1},
		{monitor.FamilyTaskRuns, "success", 1},
		{monitor.FamilyTaskRuns, "skipped", 1},
		{monitor.FamilyTaskDuration, "skipped", 0},
		{monitor.FamilyRowsIn, "", 7},
		{monitor.FamilyRowsQuarantined, "", 2},
		{monitor.FamilyRunsFinished, "success", 1},
		{monitor.FamilySchedulerLag, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.fam+"/"+tt.label, func(t *testing.T) {
			if got := sampleCount(t, m, tt.fam, tt.label); got != tt.want {
				t.Errorf("%s{%s} = %v, want %v", tt.fam, tt.label, got, tt.want)
			}
		})
	}
}
