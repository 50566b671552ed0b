package main

// End-to-end tests of the real binary: built once, run as a user would,
// against a temporary state directory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sluice")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// sluice runs the binary with the state directory home and returns what it
// printed and its exit code.
func sluice(t *testing.T, home string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--home", home}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running sluice %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// copyExample copies an example directory so a test may write beside it.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("..", "..", "examples", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

type summaryJSON struct {
	Run struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"run"`
	Tasks []struct {
		Task            string `json:"task"`
		State           string `json:"state"`
		Attempts        int    `json:"attempts"`
		RowsIn          int64  `json:"rows_in"`
		RowsOut         int64  `json:"rows_out"`
		RowsQuarantined int64  `json:"rows_quarantined"`
		OutputSHA256    string `json:"output_sha256"`
	} `json:"tasks"`
	Attempts []struct {
		Task    string `json:"task"`
		Number  int    `json:"number"`
		Outcome string `json:"outcome"`
	} `json:"attempts"`
}

func decodeSummary(t *testing.T, r result) summaryJSON {
	t.Helper()
	var s summaryJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("decoding summary: %v\n%s", err, r)
	}
	return s
}

func TestDemoPipeline(t *testing.T) {
	t.Parallel()
	dir := copyExample(t, "customers")
	home := filepath.Join(t.TempDir(), "state")
	r := sluice(t, home, "run", "--date", "2026-01-31", filepath.Join(dir, "pipeline.yaml"))
	if r.code != 0 {
		t.Fatalf("demo run failed:\n%s", r)
	}
	for _, want := range []string{"extract", "clean", "count", "success", "TASK", "OUTPUT SHA-256", "quarantined"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	out := filepath.Join(dir, "out", "customers-2026-01-31.jsonl")
	lines := countLines(t, out)

	// The history agrees with the file, and every record is accounted for.
	runID := regexp.MustCompile(`run (\S+)`).FindStringSubmatch(r.stdout)[1]
	s := decodeSummary(t, sluice(t, home, "show", runID, "--output", "json"))
	if s.Run.State != "success" || len(s.Tasks) != 3 {
		t.Fatalf("show: %+v", s)
	}
	extract, clean := s.Tasks[0], s.Tasks[1]
	if extract.RowsIn != 1000 || extract.RowsQuarantined != 1 || extract.RowsOut != 999 {
		t.Errorf("extract rows: %+v", extract)
	}
	if len(extract.OutputSHA256) != 64 {
		t.Errorf("extract output checksum %q", extract.OutputSHA256)
	}
	if clean.RowsIn != 999 || clean.RowsQuarantined != 2 || clean.RowsOut != int64(lines) || lines == 0 {
		t.Errorf("clean rows: %+v, file has %d lines", clean, lines)
	}
	// The count task saw the committed file.
	logs := sluice(t, home, "logs", runID, "count")
	if !strings.Contains(logs.stdout, fmt.Sprint(lines)) {
		t.Errorf("count log does not show %d lines:\n%s", lines, logs)
	}
	// State directory and files are private.
	fi, err := os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "pipeline: ok\ntasks:\n  a:\n    shell: [\"true\"]\n")
	bad1 := writeFile(t, dir, "bad1.yaml", `pipeline: bad1
schedule: "61 * * * *"
tasks:
  a:
    needs: [nope]
    shell: ["true"]
    colour: blue
`)
	bad2 := writeFile(t, dir, "bad2.yaml", `pipeline: bad2
tasks:
  a:
    needs: [b]
    shell: ["true"]
  b:
    needs: [a]
    shell: ["true"]
`)
	r := sluice(t, filepath.Join(dir, "state"), "validate", good, bad1, bad2)
	if r.code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`good\.yaml: ok`),
		regexp.MustCompile(`bad1\.yaml:2:\d+: .*cron|bad1\.yaml:2:\d+: .*schedule`),
		regexp.MustCompile(`bad1\.yaml:5:\d+: .*nope`),
		regexp.MustCompile(`bad1\.yaml:7:\d+: .*colour`),
		regexp.MustCompile(`bad2\.yaml:\d+:\d+: cycle: (a -> b -> a|b -> a -> b)`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("output does not match %s:\n%s", want, r)
		}
	}
	j := sluice(t, filepath.Join(dir, "state"), "validate", "--output", "json", good, bad1)
	var views []struct {
		File     string `json:"file"`
		Valid    bool   `json:"valid"`
		Problems []struct {
			Line int `json:"line"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(j.stdout), &views); err != nil || len(views) != 2 {
		t.Fatalf("validate json: %v\n%s", err, j)
	}
	if !views[0].Valid || views[1].Valid || len(views[1].Problems) < 3 {
		t.Errorf("validate json: %+v", views)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"run"}, 2, "accepts 1 arg"},
		{"bad output", []string{"runs", "--output", "yaml"}, 2, "--output"},
		{"bad param", []string{"run", "-p", "novalue", "x.yaml"}, 2, "name=value"},
		{"bad date", []string{"run", "--date", "yesterday", "x.yaml"}, 2, "--date"},
		{"unknown run", []string{"show", "nope"}, 1, `no run "nope"`},
		{"missing file", []string{"run", "does-not-exist.yaml"}, 1, "does-not-exist.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sluice(t, home, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr+r.stdout, tc.want) {
				t.Errorf("want exit %d and %q:\n%s", tc.code, tc.want, r)
			}
		})
	}
}

func TestFailureRetriesAndLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", `pipeline: flaky
tasks:
  flaky:
    retries: 2
    retry_delay: 10ms
    retry_jitter: false
    script: |
      n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
      echo "attempt $n to stdout"; echo "attempt $n to stderr" >&2
      [ "$n" -ge 3 ]
  after:
    needs: [flaky]
    shell: ["echo", "{{ .Params.word }}"]
params:
  word: {type: string, default: "$(touch pwned); rm -rf /"}
`)
	home := filepath.Join(dir, "state")
	r := sluice(t, home, "run", "--output", "json", p)
	if r.code != 0 {
		t.Fatalf("run failed:\n%s", r)
	}
	s := decodeSummary(t, r)
	if s.Tasks[0].Attempts != 3 || s.Tasks[0].State != "success" {
		t.Errorf("flaky: %+v", s.Tasks[0])
	}
	logs := sluice(t, home, "logs", s.Run.ID, "flaky")
	for i := 1; i <= 3; i++ {
		for _, stream := range []string{"stdout", "stderr"} {
			if want := fmt.Sprintf("attempt %d to %s", i, stream); !strings.Contains(logs.stdout, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
	}
	after := sluice(t, home, "logs", s.Run.ID, "after")
	if !strings.Contains(after.stdout, "$(touch pwned); rm -rf /") {
		t.Errorf("argument was not passed literally:\n%s", after)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a templated value was interpreted by a shell")
	}

	// A failing run exits 1 and says why.
	fail := writeFile(t, dir, "fail.yaml", "pipeline: fail\ntasks:\n  boom:\n    shell: [\"false\"]\n  next:\n    needs: [boom]\n    shell: [\"true\"]\n")
	r = sluice(t, home, "run", fail)
	if r.code != 1 || !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, "skipped") {
		t.Errorf("failing run:\n%s", r)
	}
}

// TestKillAndResume kills the process with SIGKILL while a task is running
// and checks that its child dies with it, that the next `run` refuses to
// start over, that `resume` finishes the run, and that the interrupted
// attempt is on record.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", `pipeline: crashy
tasks:
  first:
    script: echo first >> trail
  slow:
    needs: [first]
    script: |
      echo slow >> trail
      touch started
      while [ ! -f proceed ]; do sleep 0.05; done
  last:
    needs: [slow]
    script: echo last >> trail
`)
	home := filepath.Join(dir, "state")
	cmd := exec.Command(binary, "--home", home, "run", p)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(dir, "started"), 30*time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitNoProcessIn(t, dir, 10*time.Second)

	r := sluice(t, home, "run", p)
	if r.code != 1 || !strings.Contains(r.stderr, "interrupted") || !strings.Contains(r.stderr, "sluice resume") {
		t.Fatalf("run after kill should point to resume:\n%s", r)
	}
	runID := regexp.MustCompile(`sluice resume (\S+)`).FindStringSubmatch(r.stderr)[1]

	original := readFile(t, p)
	writeFile(t, dir, "p.yaml", original+"# edited\n")
	r = sluice(t, home, "resume", runID)
	if r.code == 0 || !strings.Contains(r.stderr, "changed since the run started") {
		t.Fatalf("resume with an edited pipeline must refuse:\n%s", r)
	}
	writeFile(t, dir, "p.yaml", original)
	writeFile(t, dir, "proceed", "")
	r = sluice(t, home, "resume", runID)
	if r.code != 0 {
		t.Fatalf("resume failed:\n%s", r)
	}
	s := decodeSummary(t, sluice(t, home, "show", "--output", "json", runID))
	outcomes := map[string][]string{}
	for _, a := range s.Attempts {
		outcomes[a.Task] = append(outcomes[a.Task], a.Outcome)
	}
	if got := strings.Join(outcomes["slow"], ","); got != "interrupted,success" {
		t.Errorf("slow attempts: %s", got)
	}
	if got := strings.Join(outcomes["first"], ","); got != "success" {
		t.Errorf("first ran again after resume: %s", got)
	}
	if got := readFile(t, filepath.Join(dir, "trail")); got != "first\nslow\nslow\nlast\n" {
		t.Errorf("trail:\n%s", got)
	}
	if r := sluice(t, home, "resume", runID); r.code != 1 || !strings.Contains(r.stderr, "already ended") {
		t.Errorf("resuming a finished run:\n%s", r)
	}
}

// waitNoProcessIn waits until no process has dir as its working directory:
// the children of a killed sluice must not outlive it.
func waitNoProcessIn(t *testing.T, dir string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var left []string
		procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
		for _, c := range procs {
			if target, err := os.Readlink(c); err == nil && target == dir {
				left = append(left, c)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes outlived the killed sluice: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, path string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInterruptCancelsGracefully sends Ctrl-C (SIGINT) during a run: the
// task gets SIGTERM and may clean up, the run is recorded as cancelled, and
// sluice exits 130.
func TestInterruptCancelsGracefully(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", `pipeline: cancelme
tasks:
  wait:
    script: |
      trap 'echo got TERM; exit 143' TERM
      touch started
      while true; do sleep 0.05; done
  never:
    needs: [wait]
    shell: ["true"]
`)
	home := filepath.Join(dir, "state")
	cmd := exec.Command(binary, "--home", home, "run", "--output", "json", p)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(dir, "started"), 30*time.Second)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	r := result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	if err == nil || r.code != 130 {
		t.Fatalf("want exit 130:\n%s", r)
	}
	s := decodeSummary(t, r)
	if s.Run.State != "cancelled" || s.Tasks[0].State != "cancelled" || s.Tasks[1].State != "cancelled" {
		t.Errorf("states after Ctrl-C: %+v", s)
	}
	logs := sluice(t, home, "logs", s.Run.ID, "wait")
	if !strings.Contains(logs.stdout, "got TERM") {
		t.Errorf("the task did not get SIGTERM:\n%s", logs)
	}
	waitNoProcessIn(t, dir, 10*time.Second)
}

// TestKillAnywhereThenResume kills a data pipeline with SIGKILL at points
// spread over its run and resumes it each time: wherever it was killed, the
// run finishes with the same output as an uninterrupted one, and no partial
// file is ever visible at the output path.
func TestKillAnywhereThenResume(t *testing.T) {
	t.Parallel()
	dir := copyExample(t, "customers")
	// Enough records that a run lasts a while, so kills land mid-stream.
	src := readFile(t, filepath.Join(dir, "customers.csv"))
	header, body, _ := strings.Cut(src, "\n")
	var sb strings.Builder
	sb.WriteString(header + "\n")
	for i := 0; i < 60; i++ {
		sb.WriteString(body)
	}
	writeFile(t, dir, "customers.csv", sb.String())
	p := filepath.Join(dir, "pipeline.yaml")
	out := filepath.Join(dir, "out", "customers-2026-02-01.jsonl")

	began := time.Now()
	clean := sluice(t, filepath.Join(dir, "clean-state"), "run", "--date", "2026-02-01", p)
	if clean.code != 0 {
		t.Fatalf("clean run:\n%s", clean)
	}
	full := time.Since(began)
	want := readFile(t, out)
	os.Remove(out)

	for k := 1; k <= 7; k++ {
		delay := full * time.Duration(k) / 8
		home := filepath.Join(dir, fmt.Sprintf("state-%d", k))
		cmd := exec.Command(binary, "--home", home, "run", "--date", "2026-02-01", p)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		if b, err := os.ReadFile(out); err == nil && string(b) != want {
			t.Fatalf("kill after %s: a partial output is visible", delay)
		}
		runs := sluice(t, home, "runs", "--output", "json")
		var list []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(runs.stdout), &list); err != nil {
			t.Fatalf("runs: %v\n%s", err, runs)
		}
		if len(list) == 0 {
			t.Logf("kill after %s: before the run was recorded", delay)
			continue // nothing to resume
		}
		show := decodeSummary(t, sluice(t, home, "show", "--output", "json", list[0].ID))
		t.Logf("kill after %s: run %s, tasks %s", delay, list[0].State, taskStates(show))
		switch {
		case strings.HasSuffix(list[0].State, "(interrupted)"):
			if r := sluice(t, home, "resume", list[0].ID); r.code != 0 {
				t.Fatalf("kill after %s: resume failed:\n%s", delay, r)
			}
		case list[0].State != "success":
			t.Fatalf("kill after %s: run state %s", delay, list[0].State)
		}
		if got := readFile(t, out); got != want {
			t.Fatalf("kill after %s: output differs from an uninterrupted run", delay)
		}
		os.Remove(out)
	}
}

func taskStates(s summaryJSON) string {
	var parts []string
	for _, t := range s.Tasks {
		parts = append(parts, t.Task+"="+t.State)
	}
	return strings.Join(parts, ",")
}
