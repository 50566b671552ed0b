package main

// End-to-end tests of the real binary: built once, run as a user would,
// against a temporary state directory.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	_ "modernc.org/sqlite"
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

	// One state directory for every run: the pipeline pseudonymises with a
	// key of that directory's keyring, so outputs compare only within it.
	home := filepath.Join(dir, "state")
	began := time.Now()
	clean := sluice(t, home, "run", "--date", "2026-02-01", p)
	if clean.code != 0 {
		t.Fatalf("clean run:\n%s", clean)
	}
	full := time.Since(began)
	want := readFile(t, out)
	var first []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(sluice(t, home, "runs", "--output", "json").stdout), &first); err != nil || len(first) != 1 {
		t.Fatalf("runs after the clean run: %v %v", err, first)
	}
	os.Remove(out)

	seen := map[string]bool{first[0].ID: true}
	for k := 1; k <= 7; k++ {
		delay := full * time.Duration(k) / 8
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
		if len(list) == 0 || seen[list[0].ID] {
			t.Logf("kill after %s: before the run was recorded", delay)
			continue // nothing to resume
		}
		seen[list[0].ID] = true
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

// sluiceIn runs the binary with extra environment and stdin.
func sluiceIn(t *testing.T, home, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--home", home}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
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

// TestSecretsNeverLeak is the canary test: it plants a unique secret, runs
// pipelines that print it every way a task can (stdout, stderr, an error
// message, base64, an environment dump) and checks, by scanning bytes, that
// neither the value nor a common encoding of it appears in anything sluice
// printed or stored — and that sluice's own key-encryption key never
// reaches a task's environment.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	canary := fmt.Sprintf("canary-%d-Zq8u", time.Now().UnixNano())
	p := writeFile(t, dir, "p.yaml", `pipeline: canary
tasks:
  echo:
    shell: ["echo", "token=${secret:canary}"]
  env:
    env: {TOKEN: "${secret:canary}"}
    script: |
      echo "stderr $TOKEN" >&2
      printf %s "$TOKEN" | base64
      env
      echo "kek=${SLUICE_KEK:-absent}"
  fail:
    shell: ["/nonexistent/${secret:canary}"]
  data:
    extract: {csv: {path: "${secret:canary}.csv"}}
`)
	// The KEK is given through the environment, as an operator would.
	kekHome := filepath.Join(dir, "kek-source")
	if r := sluice(t, kekHome, "runs"); r.code != 0 {
		t.Fatalf("creating a keyset: %s", r)
	}
	kekJSON := readFile(t, filepath.Join(kekHome, "keys", "kek.json"))
	kekEnv := "SLUICE_KEK=" + base64.StdEncoding.EncodeToString([]byte(kekJSON))
	env := []string{kekEnv}

	var printed strings.Builder
	record := func(r result) result { printed.WriteString(r.stdout + r.stderr); return r }

	if r := record(sluiceIn(t, home, "", env, "validate", p)); r.code != 1 || !strings.Contains(r.stdout, `secret "canary" does not exist`) {
		t.Fatalf("validate before the secret exists:\n%s", r)
	}
	if r := record(sluiceIn(t, home, canary+"\n", env, "secret", "set", "canary")); r.code != 0 {
		t.Fatalf("secret set:\n%s", r)
	}
	r := record(sluiceIn(t, home, "", env, "run", "--output", "json", p))
	if r.code != 1 {
		t.Fatalf("the run should fail (task fail):\n%s", r)
	}
	s := decodeSummary(t, r)
	for _, args := range [][]string{
		{"logs", s.Run.ID}, {"logs", "--output", "json", s.Run.ID}, {"show", s.Run.ID}, {"show", "--output", "json", s.Run.ID},
		{"runs", "--output", "json"}, {"secret", "list"}, {"secret", "list", "--output", "json"},
	} {
		record(sluiceIn(t, home, "", env, args...))
	}
	logs := sluiceIn(t, home, "", env, "logs", s.Run.ID).stdout
	for _, want := range []string{"token=[REDACTED]", "stderr [REDACTED]", "TOKEN=[REDACTED]", "kek=absent", "/nonexistent/[REDACTED]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}

	forms := map[string]string{
		"plain":      canary,
		"base64":     base64.StdEncoding.EncodeToString([]byte(canary)),
		"base64-url": base64.RawURLEncoding.EncodeToString([]byte(canary)),
		"hex":        hex.EncodeToString([]byte(canary)),
		"url":        url.QueryEscape(canary + "/x")[:len(canary)],
	}
	check := func(where string, b []byte) {
		for name, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("the %s form of the secret is in %s", name, where)
			}
		}
		if bytes.Contains(b, []byte(kekJSON[:40])) {
			t.Errorf("the key-encryption key is in %s", where)
		}
	}
	check("sluice's output", []byte(printed.String()))
	filepath.WalkDir(home, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			check(path, b)
		}
		return nil
	})
}

// TestTamperedDatasetsAreIntegrityFailures flips a byte of, truncates, or
// swaps the stored datasets between two tasks while the run waits, and
// checks that the reading task fails with an integrity failure naming the
// dataset, recorded apart from ordinary failures and not retried.
func TestTamperedDatasetsAreIntegrityFailures(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"flip", "truncate", "swap"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "a.csv", "id,name\n1,Ada\n2,Bo\n")
			writeFile(t, dir, "b.csv", "id,name\n3,Cy\n4,Di\n")
			p := writeFile(t, dir, "p.yaml", `pipeline: tamper
defaults: {retries: 2, retry_delay: 10ms}
tasks:
  a:
    extract: {csv: {path: a.csv}}
  b:
    extract: {csv: {path: b.csv}}
  gate:
    needs: [a, b]
    script: |
      touch started
      while [ ! -f go ]; do sleep 0.02; done
  use:
    needs: [a, b, gate]
    input: a
    load: {jsonl: {path: out.jsonl}}
`)
			home := filepath.Join(dir, "state")
			cmd := exec.Command(binary, "--home", home, "run", "--output", "json", p)
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, filepath.Join(dir, "started"), 30*time.Second)
			arts, _ := filepath.Glob(filepath.Join(home, "artifacts", "*", "[ab].1.arrow"))
			if len(arts) != 2 {
				t.Fatalf("datasets: %v", arts)
			}
			a, b := readFile(t, arts[0]), readFile(t, arts[1])
			switch mode {
			case "flip":
				raw := []byte(a)
				raw[len(raw)-20] ^= 0x40
				writeFile(t, filepath.Dir(arts[0]), filepath.Base(arts[0]), string(raw))
			case "truncate":
				writeFile(t, filepath.Dir(arts[0]), filepath.Base(arts[0]), a[:len(a)/2])
			case "swap":
				writeFile(t, filepath.Dir(arts[0]), filepath.Base(arts[0]), b)
				writeFile(t, filepath.Dir(arts[1]), filepath.Base(arts[1]), a)
			}
			writeFile(t, dir, "go", "")
			cmd.Wait()
			s := decodeSummary(t, result{stdout: out.String()})
			use := s.Tasks[3]
			if use.Task != "use" || use.State != "failed" || use.Attempts != 1 {
				t.Fatalf("use: %+v", use)
			}
			show := decodeSummary(t, sluice(t, home, "show", "--output", "json", s.Run.ID))
			for _, at := range show.Attempts {
				if at.Task == "use" && at.Outcome != "integrity_failed" {
					t.Errorf("attempt outcome %s, want integrity_failed", at.Outcome)
				}
			}
			r := sluice(t, home, "show", s.Run.ID)
			if !strings.Contains(r.stdout, "integrity failure") || !strings.Contains(r.stdout, ".out") {
				t.Errorf("the error does not name an integrity failure of the dataset:\n%s", r)
			}
			if _, err := os.Stat(filepath.Join(dir, "out.jsonl")); err == nil {
				t.Error("a tampered dataset reached the sink")
			}
		})
	}
}

// TestEncryptedSinkAndDecrypt: a file sink with encrypt: true writes no
// plaintext, `sluice decrypt` gives back exactly what an unencrypted sink
// writes, and an altered file fails to decrypt.
func TestEncryptedSinkAndDecrypt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "in.csv", "id,product\n1,blue widget\n2,red gadget\n")
	p := writeFile(t, dir, "p.yaml", `pipeline: enc
tasks:
  plain:
    extract: {csv: {path: in.csv}}
    load: {jsonl: {path: plain.jsonl}}
  sealed:
    extract: {csv: {path: in.csv}}
    load: {jsonl: {path: sealed.jsonl.gz, encrypt: true}}
`)
	home := filepath.Join(dir, "state")
	if r := sluice(t, home, "run", p); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	sealed := readFile(t, filepath.Join(dir, "sealed.jsonl.gz"))
	if strings.Contains(sealed, "widget") || !strings.HasPrefix(sealed, "SLK1") {
		t.Fatalf("the encrypted sink wrote %q", sealed[:min(40, len(sealed))])
	}
	r := sluice(t, home, "decrypt", filepath.Join(dir, "sealed.jsonl.gz"), "--out", filepath.Join(dir, "back.jsonl.gz"))
	if r.code != 0 {
		t.Fatalf("decrypt:\n%s", r)
	}
	gz := exec.Command("gzip", "-dc", filepath.Join(dir, "back.jsonl.gz"))
	back, err := gz.Output()
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if want := readFile(t, filepath.Join(dir, "plain.jsonl")); string(back) != want {
		t.Errorf("decrypted %q, want %q", back, want)
	}
	raw := []byte(sealed)
	raw[len(raw)-5] ^= 1
	writeFile(t, dir, "sealed.jsonl.gz", string(raw))
	r = sluice(t, home, "decrypt", filepath.Join(dir, "sealed.jsonl.gz"), "--out", filepath.Join(dir, "bad.gz"))
	if r.code != 1 || !strings.Contains(r.stderr, "integrity") {
		t.Errorf("decrypting an altered file:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.gz")); err == nil {
		t.Error("a failed decryption left a file behind")
	}
	// Another state directory (another keyring) cannot read it.
	r = sluice(t, filepath.Join(dir, "other"), "decrypt", filepath.Join(dir, "back.jsonl.gz"))
	if r.code == 0 {
		t.Errorf("a foreign keyring decrypted the file:\n%s", r)
	}
}

// TestConfidentialDataNeedsTLS: a confidential pipeline may not read a
// database over a connection that disables TLS, unless the host is loopback.
func TestConfidentialDataNeedsTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := func(class, host string) string {
		return fmt.Sprintf(`pipeline: tls
classification: %s
tasks:
  read:
    extract: {postgres: {dsn: "postgres://reader@%s/crm?sslmode=disable", query: "SELECT 1"}}
`, class, host)
	}
	for _, tc := range []struct {
		class, host string
		ok          bool
	}{
		{"confidential", "db.example.com", false},
		{"restricted", "db.example.com", false},
		{"internal", "db.example.com", true},
		{"confidential", "127.0.0.1", true},
	} {
		p := writeFile(t, dir, tc.class+"-"+tc.host+".yaml", spec(tc.class, tc.host))
		r := sluice(t, filepath.Join(dir, "state"), "validate", p)
		if (r.code == 0) != tc.ok {
			t.Errorf("%s pipeline reading %s without TLS: valid = %v, want %v\n%s", tc.class, tc.host, r.code == 0, tc.ok, r)
		}
		if !tc.ok && !strings.Contains(r.stdout, ":5:") {
			t.Errorf("the error is not positioned at the connector settings:\n%s", r)
		}
	}
}

// TestAuditTrail: privileged commands leave audit events; verify passes on
// the untouched log and names the event an edit of the database file hit.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	home := filepath.Join(t.TempDir(), "state")
	for _, step := range []struct {
		stdin string
		args  []string
	}{
		{"a-long-enough-secret-value", []string{"secret", "set", "crm_dsn"}},
		{"another-long-secret-value", []string{"secret", "set", "crm_dsn"}},
		{"", []string{"key", "rotate"}},
		{"", []string{"secret", "rm", "crm_dsn"}},
		{"", []string{"audit", "checkpoint"}},
	} {
		if r := sluiceIn(t, home, step.stdin, nil, step.args...); r.code != 0 {
			t.Fatalf("sluice %v: %s", step.args, r)
		}
	}
	r := sluice(t, home, "audit", "log", "--output", "json")
	if r.code != 0 {
		t.Fatalf("audit log: %s", r)
	}
	var events []struct {
		Seq      int64  `json:"seq"`
		Actor    string `json:"actor"`
		Action   string `json:"action"`
		Resource string `json:"resource"`
		Outcome  string `json:"outcome"`
		Source   string `json:"source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil {
		t.Fatalf("audit log output: %v\n%s", err, r)
	}
	var got []string
	for _, ev := range events {
		if !strings.HasPrefix(ev.Actor, "local:") || ev.Source != "cli" || ev.Outcome != "success" {
			t.Errorf("event %+v: want a successful cli event by local:<user>", ev)
		}
		got = append(got, ev.Action+" "+ev.Resource)
	}
	want := "secret.set secret:crm_dsn|secret.set secret:crm_dsn|key.rotate kek|secret.rm secret:crm_dsn"
	if strings.Join(got, "|") != want {
		t.Fatalf("audited actions:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
	r = sluice(t, home, "audit", "log", "--action", "secret.set", "--output", "json")
	if r.code != 0 || strings.Count(r.stdout, `"seq"`) != 2 {
		t.Fatalf("audit log --action secret.set: want 2 events: %s", r)
	}
	if r := sluice(t, home, "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "4 events") {
		t.Fatalf("audit verify on an untouched log: %s", r)
	}
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	if r := sluice(t, home, "audit", "export", "--format", "jsonl", "--out", out); r.code != 0 {
		t.Fatalf("audit export: %s", r)
	}
	if n := countLines(t, out); n != 4 {
		t.Fatalf("export has %d lines, want 4", n)
	}

	// Somebody with the file drops the guard triggers and edits event 2.
	db, err := sql.Open("sqlite", filepath.Join(home, "sluice.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`DROP TRIGGER audit_events_no_update`,
		`UPDATE audit_events SET event = CAST(replace(CAST(event AS TEXT), 'secret:crm_dsn', 'secret:other') AS BLOB) WHERE seq = 2`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	r = sluice(t, home, "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stderr, "event 2") {
		t.Fatalf("audit verify after tampering: want exit 1 naming event 2: %s", r)
	}
}

// auditEvents returns the audit log of home filtered by action.
func auditEvents(t *testing.T, home, action string) []struct {
	Actor    string `json:"actor"`
	Resource string `json:"resource"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason"`
} {
	t.Helper()
	// Read the records themselves: once access control is on, 'sluice
	// audit log' needs a signed-in security engineer, and these checks are
	// about what was recorded, whoever is signed in.
	db, err := sql.Open("sqlite", filepath.Join(home, "sluice.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT event FROM audit_events WHERE action = ? ORDER BY seq", action)
	if err != nil {
		t.Fatalf("reading audit events %s: %v", action, err)
	}
	defer rows.Close()
	var evs []struct {
		Actor    string `json:"actor"`
		Resource string `json:"resource"`
		Outcome  string `json:"outcome"`
		Reason   string `json:"reason"`
	}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Actor    string `json:"actor"`
			Resource string `json:"resource"`
			Outcome  string `json:"outcome"`
			Reason   string `json:"reason"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("audit event %s: %v", raw, err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestIdentityLifecycle follows an installation from bootstrap mode through
// 'sluice init', a forced password change, MFA enrolment of the security
// engineer, a data engineer's audited secret, and a narrow API token.
func TestIdentityLifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	// Each person signs in from their own configuration directory, as
	// from their own account; SLUICE_TOKEN is cleared unless given.
	as := func(who string) []string {
		return []string{"SLUICE_CONFIG_DIR=" + filepath.Join(dir, "config-"+who), "SLUICE_TOKEN="}
	}
	run := func(who, stdin string, args ...string) result {
		t.Helper()
		return sluiceIn(t, home, stdin, as(who), args...)
	}
	must := func(r result, what string) result {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: %s", what, r)
		}
		return r
	}

	// Bootstrap mode: no users, the local operator may act.
	must(run("op", "a-long-enough-secret-value", "secret", "set", "boot_dsn"), "secret set in bootstrap mode")
	var who struct {
		Actor     string `json:"actor"`
		Bootstrap bool   `json:"bootstrap"`
		MFA       bool   `json:"mfa"`
	}
	if err := json.Unmarshal([]byte(must(run("op", "", "whoami", "--output", "json"), "whoami").stdout), &who); err != nil {
		t.Fatal(err)
	}
	if !who.Bootstrap || !strings.HasPrefix(who.Actor, "local:") {
		t.Fatalf("whoami before init: got %+v, want the local operator in bootstrap mode", who)
	}

	// init prints each password once, and only the first time.
	var initOut struct {
		Users []struct{ Username, Password string } `json:"users"`
	}
	r := must(run("op", "", "init", "--admin", "alice", "--admin", "bob", "--output", "json"), "init")
	if err := json.Unmarshal([]byte(r.stdout), &initOut); err != nil || len(initOut.Users) != 2 || len(initOut.Users[0].Password) < 20 {
		t.Fatalf("init output: %v\n%s", err, r)
	}
	alicePW := initOut.Users[0].Password
	if r := run("op", "", "init", "--admin", "mallory"); r.code != 1 || strings.Contains(r.stdout, "password") {
		t.Fatalf("second init: want exit 1 and no password: %s", r)
	}

	// Before login every command is refused, even for the host's operator.
	for _, args := range [][]string{{"secret", "set", "x"}, {"runs"}, {"key", "list"}, {"user", "list"}} {
		if r := run("op", "another-long-secret-value", args...); r.code != 1 || !strings.Contains(r.stderr, "sluice login") {
			t.Errorf("sluice %v before login: want exit 1 asking to sign in: %s", args, r)
		}
	}

	// A wrong password fails and is audited.
	if r := run("alice", "not-the-password\n", "login", "alice"); r.code != 1 || !strings.Contains(r.stderr, "invalid credentials") {
		t.Fatalf("login with a wrong password: %s", r)
	}
	failed := false
	for _, ev := range auditEvents(t, home, "auth.login") {
		failed = failed || (ev.Outcome == "failure" && ev.Resource == "user:alice" && ev.Reason == "bad_password")
	}
	if !failed {
		t.Fatal("no failed auth.login for user:alice in the audit log")
	}

	// First login: the password must be changed, then the security
	// engineer must enrol an authenticator before a session is saved.
	newPW := "correct horse battery staple 42"
	r = run("alice", alicePW+"\n"+newPW+"\n", "login", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, "--code") {
		t.Fatalf("first login without a TOTP code: want exit 1 asking to confirm the enrolment: %s", r)
	}
	m := regexp.MustCompile(`otpauth://\S+`).FindString(r.stdout)
	u, err := url.Parse(m)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("no otpauth URI in the enrolment output: %v\n%s", err, r)
	}
	if r := run("alice", newPW+"\n", "whoami"); r.code != 1 {
		t.Fatalf("whoami with no session saved: %s", r)
	}
	code, err := totp.GenerateCode(u.Query().Get("secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	must(run("alice", newPW+"\n", "login", "alice", "--code", code), "login confirming the TOTP enrolment")
	if err := json.Unmarshal([]byte(must(run("alice", "", "whoami", "--output", "json"), "whoami").stdout), &who); err != nil {
		t.Fatal(err)
	}
	if who.Actor != "user:alice" || !who.MFA || who.Bootstrap {
		t.Fatalf("whoami after login: got %+v, want user:alice with MFA", who)
	}

	// alice adds a data engineer, who signs in (no MFA needed) and sets a
	// secret; the record names them.
	var added struct{ Password string }
	if err := json.Unmarshal([]byte(must(run("alice", "", "user", "add", "carol", "--output", "json"), "user add").stdout), &added); err != nil {
		t.Fatal(err)
	}
	must(run("alice", "", "binding", "grant", "carol", "data-engineer", "--reason", "pipelines"), "binding grant")
	carolPW := "a fresh passphrase 7 for pipelines"
	must(run("carol", added.Password+"\n"+carolPW+"\n", "login", "carol"), "carol's first login")
	if r := run("alice", "a-long-enough-secret-value", "secret", "set", "crm_dsn"); r.code != 1 || !strings.Contains(r.stderr, "secret.write") {
		t.Fatalf("secret set by a security engineer: want a denial: %s", r)
	}
	must(run("carol", "a-long-enough-secret-value", "secret", "set", "crm_dsn"), "secret set by carol")
	sets := auditEvents(t, home, "secret.set")
	if len(sets) != 2 || sets[1].Actor != "user:carol" || sets[1].Outcome != "success" {
		t.Fatalf("secret.set records: got %+v, want the last by user:carol", sets)
	}

	// A token scoped to run.read is refused secret.write, and that is audited.
	var tok struct{ Token string }
	r = must(run("carol", "", "token", "create", "--name", "ci", "--expires", "1d", "--scope", "run.read", "--output", "json"), "token create")
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create output: %v\n%s", err, r)
	}
	withToken := []string{"SLUICE_CONFIG_DIR=" + filepath.Join(dir, "config-ci"), "SLUICE_TOKEN=" + tok.Token}
	if r := sluiceIn(t, home, "", withToken, "runs"); r.code != 0 {
		t.Fatalf("runs with a run.read token: %s", r)
	}
	r = sluiceIn(t, home, "another-long-secret-value", withToken, "secret", "set", "crm_dsn")
	if r.code != 1 || !strings.Contains(r.stderr, "token scope does not include secret.write") {
		t.Fatalf("secret set with a run.read token: want a denial naming the scope: %s", r)
	}
	denied := false
	for _, ev := range auditEvents(t, home, "access.decide") {
		denied = denied || (ev.Actor == "user:carol" && ev.Outcome == "denied" && strings.Contains(ev.Reason, "token scope"))
	}
	if !denied {
		t.Fatal("the token's denial is not in the audit log")
	}

	// Signing out ends the session; the chain is intact throughout.
	must(run("carol", "", "logout"), "logout")
	if r := run("carol", "", "whoami"); r.code != 1 {
		t.Fatalf("whoami after logout: %s", r)
	}
	if r := sluice(t, home, "audit", "verify"); r.code != 1 {
		t.Fatalf("audit verify without signing in: want a refusal: %s", r)
	}
	must(run("alice", "", "audit", "verify"), "audit verify")
}

// TestAccessCommands follows the people of an installation through the
// access commands: two security engineers from 'sluice init', two data
// engineers who push and approve each other's pipeline versions, an
// analyst who may not push, a privileged role granted only on a request
// approved by the other security engineer, a grant refused under a
// segregation-of-duties rule, and an access review.
func TestAccessCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	run := func(who, stdin string, args ...string) result {
		t.Helper()
		env := []string{"SLUICE_CONFIG_DIR=" + filepath.Join(dir, "config-"+who), "SLUICE_TOKEN="}
		return sluiceIn(t, home, stdin, env, args...)
	}
	must := func(r result, what string) result {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: %s", what, r)
		}
		return r
	}
	decode := func(r result, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("decoding the output: %v\n%s", err, r)
		}
	}
	refused := func(r result, what string, want ...string) {
		t.Helper()
		if r.code != 1 {
			t.Fatalf("%s: want exit 1: %s", what, r)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr does not say %q: %s", what, w, r)
			}
		}
	}

	// Before 'sluice init' there are no people: only the role list works.
	if r := must(run("op", "", "role", "list"), "role list in bootstrap mode"); !strings.Contains(r.stdout, "security-engineer") {
		t.Errorf("role list in bootstrap mode: %s", r)
	}
	refused(run("op", "", "binding", "list"), "binding list in bootstrap mode", "sluice init")

	// Two security engineers sign in, enrolling their authenticators.
	var initOut struct {
		Users []struct{ Username, Password string } `json:"users"`
	}
	decode(must(run("op", "", "init", "--admin", "alice", "--admin", "bob", "--output", "json"), "init"), &initOut)
	for i, u := range initOut.Users {
		pw := fmt.Sprintf("a passphrase %d for the security desk", i)
		r := run(u.Username, u.Password+"\n"+pw+"\n", "login", u.Username)
		uri, err := url.Parse(regexp.MustCompile(`otpauth://\S+`).FindString(r.stdout))
		if err != nil || uri.Query().Get("secret") == "" {
			t.Fatalf("login %s: no otpauth URI: %v\n%s", u.Username, err, r)
		}
		code, err := totp.GenerateCode(uri.Query().Get("secret"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		must(run(u.Username, pw+"\n", "login", u.Username, "--code", code), "login "+u.Username+" with MFA")
	}

	// alice adds the others and grants the non-privileged roles directly.
	for i, p := range []struct{ user, role string }{
		{"dave", "data-engineer"}, {"erin", "data-engineer"}, {"ann", "data-analyst"}, {"carl", ""},
	} {
		var added struct{ Password string }
		decode(must(run("alice", "", "user", "add", p.user, "--output", "json"), "user add "+p.user), &added)
		if p.role != "" {
			r := must(run("alice", "", "binding", "grant", p.user, p.role, "--namespace", "crm", "--output", "json"), "grant "+p.role)
			var b struct {
				GrantedBy string `json:"granted_by"`
				Role      string `json:"role"`
				Namespace string `json:"namespace"`
			}
			decode(r, &b)
			if b.GrantedBy != "alice" || b.Role != p.role || b.Namespace != "crm" {
				t.Fatalf("binding grant %s %s: got %+v", p.user, p.role, b)
			}
		}
		must(run(p.user, added.Password+"\n"+fmt.Sprintf("the new passphrase number %d\n", i), "login", p.user), "login "+p.user)
	}

	// dave pushes two versions of a pipeline; each is validated first.
	src := t.TempDir()
	bad := writeFile(t, src, "bad.yaml", "pipeline: orders\nnamespace: crm\ntasks:\n  a:\n    shel: [\"true\"]\n")
	refused(run("dave", "", "pipeline", "push", bad), "push of an invalid file", "bad.yaml")
	v1 := "pipeline: orders\nnamespace: crm\ntasks:\n  a:\n    shell: [\"true\"]\n"
	file := writeFile(t, src, "orders.yaml", v1)
	must(run("dave", "", "pipeline", "push", file), "push v1")
	v2 := strings.Replace(v1, `["true"]`, `["echo", "two"]`, 1)
	writeFile(t, src, "orders.yaml", v2)
	r := must(run("dave", "", "pipeline", "push", file), "push v2")
	sum := sha256.Sum256([]byte(v2))
	for _, want := range []string{"crm/orders@2", "version 2", hex.EncodeToString(sum[:]), `-    shell: ["true"]`, `+    shell: ["echo", "two"]`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("push v2 output lacks %q:\n%s", want, r)
		}
	}
	if r := must(run("dave", "", "pipeline", "push", file), "push again"); !strings.Contains(r.stdout, "unchanged") {
		t.Errorf("pushing the same content again: want it reported unchanged: %s", r)
	}

	// The author may not approve; a second data engineer may.
	refused(run("dave", "", "pipeline", "approve", "crm/orders", "2"), "dave approving his own version",
		"sod.self-approve-version", "dave is the author")
	must(run("erin", "", "pipeline", "approve", "crm/orders", "2"), "erin approving dave's version")
	var versions []struct {
		Version  int    `json:"version"`
		Author   string `json:"author"`
		Approver string `json:"approver"`
	}
	decode(must(run("erin", "", "pipeline", "versions", "crm/orders", "--output", "json"), "versions"), &versions)
	if got := fmt.Sprint(versions); got != "[{1 dave } {2 dave erin}]" {
		t.Errorf("pipeline versions: got %s, want v1 unapproved and v2 approved by erin", got)
	}
	if r := must(run("erin", "", "pipeline", "diff", "crm/orders", "1", "2"), "diff"); !strings.Contains(r.stdout, `+    shell: ["echo", "two"]`) {
		t.Errorf("pipeline diff 1 2: %s", r)
	}
	if r := must(run("erin", "", "pipeline", "diff", "crm/orders", "2", "1"), "diff backwards"); !strings.Contains(r.stdout, `+    shell: ["true"]`) ||
		!strings.Contains(r.stdout, `-    shell: ["echo", "two"]`) {
		t.Errorf("pipeline diff 2 1: %s", r)
	}
	refused(run("erin", "", "pipeline", "diff", "crm/orders", "1", "9"), "diff with a missing version", "no version 9")

	// The analyst may not push; the denial is in the audit log.
	refused(run("ann", "", "pipeline", "push", file), "ann pushing", "no binding grants pipeline.write in namespace crm")
	var events []struct {
		Actor, Resource, Outcome, Reason string
		Details                          map[string]string
	}
	decode(must(run("alice", "", "audit", "log", "--action", "access.decide", "--output", "json"), "audit log"), &events)
	denied := false
	for _, ev := range events {
		denied = denied || (ev.Actor == "user:ann" && ev.Outcome == "denied" && ev.Details["permission"] == "pipeline.write")
	}
	if !denied {
		t.Errorf("ann's denied pipeline.write is not in the audit log: %+v", events)
	}

	// A privileged role: no direct grant; a request by alice, refused to
	// alice's own approval, approved by bob.
	must(run("alice", "", "role", "create", "raw-reader", "--permission", "dataset.read_raw"), "role create")
	var roles []struct {
		Name       string `json:"name"`
		BuiltIn    bool   `json:"built_in"`
		Privileged bool   `json:"privileged"`
	}
	decode(must(run("dave", "", "role", "list", "--output", "json"), "role list"), &roles)
	if len(roles) != 7 || roles[6].Name != "raw-reader" || roles[6].BuiltIn || !roles[6].Privileged {
		t.Errorf("role list: got %+v, want the six built-in roles and the privileged custom raw-reader", roles)
	}
	refused(run("alice", "", "binding", "grant", "carl", "raw-reader"), "direct grant of a privileged role",
		"sod.two-person", "sluice access request raw-reader --for carl")
	var req struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	decode(must(run("alice", "", "access", "request", "raw-reader", "--for", "carl", "--namespace", "crm",
		"--expires", "10d", "--reason", "incident 42", "--output", "json"), "access request"), &req)
	refused(run("alice", "", "access", "approve", req.ID), "the requester approving", "sod.two-person")
	var pending []struct{ ID, Requester string }
	decode(must(run("bob", "", "access", "requests", "--output", "json"), "access requests"), &pending)
	if len(pending) != 1 || pending[0].ID != req.ID || pending[0].Requester != "alice" {
		t.Fatalf("pending requests: got %+v, want %s by alice", pending, req.ID)
	}
	var granted struct {
		ID        string `json:"id"`
		GrantedBy string `json:"granted_by"`
		RequestID string `json:"request_id"`
	}
	decode(must(run("bob", "", "access", "approve", req.ID, "--output", "json"), "bob approving"), &granted)
	if granted.GrantedBy != "bob" || granted.RequestID != req.ID {
		t.Errorf("approved binding: got %+v", granted)
	}

	// A security engineer cannot be made a data engineer.
	refused(run("alice", "", "binding", "grant", "bob", "data-engineer"), "data-engineer for a security engineer",
		"sod.security-pipeline-write")
	refused(run("bob", "", "access", "request", "data-engineer", "--for", "alice", "--reason", "x"),
		"requesting data-engineer for a security engineer", "sod.security-pipeline-write")

	// A conflict reached through a group is granted (the group's grant
	// cannot see it) but flagged in the review.
	must(run("alice", "", "user", "add", "sam", "--group", "ops"), "user add sam")
	decode(must(run("alice", "", "access", "request", "security-engineer", "--for", "sam", "--reason", "on call",
		"--output", "json"), "request for sam"), &req)
	must(run("bob", "", "access", "approve", req.ID), "approving sam")
	must(run("alice", "", "binding", "grant", "--group", "ops", "data-analyst"), "group grant")

	// The review lists every binding with its flags, then records verdicts.
	var items []struct {
		ID         string     `json:"id"`
		Subject    string     `json:"subject"`
		Role       string     `json:"role"`
		GrantedBy  string     `json:"granted_by"`
		LastUsedAt *time.Time `json:"last_used_at"`
		ExpiresAt  *time.Time `json:"expires_at"`
		Flags      []string   `json:"flags"`
	}
	decode(must(run("alice", "", "access", "review", "--output", "json"), "access review"), &items)
	got := map[string]string{}
	ids := map[string]string{}
	for _, it := range items {
		got[it.Subject+" "+it.Role] = it.GrantedBy + " " + strings.Join(it.Flags, ",")
		ids[it.Subject] = it.ID
		if it.Subject == "dave" && it.LastUsedAt == nil {
			t.Errorf("dave's binding has no last use after his pushes")
		}
		if it.Subject == "carl" && it.ExpiresAt == nil {
			t.Errorf("carl's binding has no expiry")
		}
	}
	want := map[string]string{
		"alice security-engineer": "bootstrap ",
		"bob security-engineer":   "bootstrap ",
		"dave data-engineer":      "alice ",
		"erin data-engineer":      "alice ",
		"ann data-analyst":        "alice ",
		"carl raw-reader":         "bob expiring,privileged-without-mfa",
		"sam security-engineer":   "bob sod-conflict,privileged-without-mfa",
		"ops data-analyst":        "alice ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("review:\n got %v\nwant %v", got, want)
	}
	if r := must(run("alice", "", "access", "review"), "review table"); !strings.Contains(r.stdout, "sod-conflict,privileged-without-mfa (sod.security-data-read)") {
		t.Errorf("review table lacks the flags: %s", r)
	}
	refused(run("alice", "", "access", "review", "--confirm", ids["alice"]), "confirming one's own binding", "sod.self-review")
	must(run("alice", "", "access", "review", "--confirm", ids["dave"], "--revoke", ids["carl"]), "record review")
	var left []struct{ Subject string }
	decode(must(run("bob", "", "binding", "list", "--output", "json"), "binding list"), &left)
	for _, b := range left {
		if b.Subject == "carl" {
			t.Errorf("carl's binding survived its revocation in the review")
		}
	}
	if len(left) != 7 {
		t.Errorf("binding list after the review: got %d bindings, want 7", len(left))
	}
	refused(run("dave", "", "namespace", "protect", "crm"), "a data engineer protecting a namespace", "namespace.protect")
	must(run("alice", "", "namespace", "protect", "crm"), "namespace protect")
	must(run("alice", "", "namespace", "unprotect", "crm"), "namespace unprotect")
	must(run("alice", "", "audit", "verify"), "audit verify")
}
