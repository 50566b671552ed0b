package task

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// syncBuffer is a log that tests read while a child may still write.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // pinged after each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until the log contains substr.
func (s *syncBuffer) waitFor(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for !strings.Contains(s.String(), substr) {
		select {
		case <-s.wrote:
		case <-timeout:
			t.Fatalf("log never contained %q: %q", substr, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newJob(t *testing.T, tk *pipeline.Task) (*Job, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if tk.Name == "" {
		tk.Name = "t"
	}
	p := &pipeline.Pipeline{Name: "p", Namespace: "ns", Dir: dir, Tasks: []*pipeline.Task{tk}}
	log := newSyncBuffer()
	return &Job{
		Run:      store.Run{ID: "r1", Pipeline: "p", Namespace: "ns", LogicalDate: "2026-11-25"},
		Pipeline: p,
		Task:     tk,
		Attempt:  2,
		Vars: pipeline.Vars{
			LogicalDate: "2026-11-25", RunID: "r1", Pipeline: "p", Namespace: "ns", Task: tk.Name,
			Params: map[string]string{"day": "mon", "max-rows": "10"},
		},
		Log:      log,
		StateDir: t.TempDir(),
	}, log
}

func TestShellEnvHygiene(t *testing.T) {
	t.Setenv("SLUICE_SECRET_TOKEN", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
	t.Setenv("TZ", "Europe/Paris")

	job, log := newJob(t, &pipeline.Task{
		Name: "env", Kind: pipeline.KindShell, Argv: []string{"env"},
		Env: map[string]string{"GREETING": "hello {{ .Params.day }}"},
	})
	res, err := NewShell(time.Second).Execute(context.Background(), job)
	if err != nil {
		t.Fatalf("Execute: %v\n%s", err, log)
	}
	if res.ExitCode == nil || *res.ExitCode != 0 {
		t.Fatalf("ExitCode = %v, want 0", res.ExitCode)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "TZ": true, "TMPDIR": true, "USER": true, "PWD": true}
	want := map[string]string{
		"GREETING":              "hello mon",
		"SLUICE_RUN_ID":         "r1",
		"SLUICE_LOGICAL_DATE":   "2026-11-25",
		"SLUICE_PIPELINE":       "p",
		"SLUICE_NAMESPACE":      "ns",
		"SLUICE_TASK":           "env",
		"SLUICE_ATTEMPT":        "2",
		"SLUICE_PARAM_DAY":      "mon",
		"SLUICE_PARAM_MAX_ROWS": "10",
		"TZ":                    "Europe/Paris",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("child env %s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("child sees unexpected variable %s", k)
		}
	}
	if strings.Contains(log.String(), "hunter2") || strings.Contains(log.String(), "also-secret") {
		t.Errorf("a secret of the parent's environment reached the child:\n%s", log)
	}
}

func TestShellArgvIsNeverShellInterpreted(t *testing.T) {
	t.Parallel()
	evil := `$(touch pwned); rm -rf / ; echo "x" | cat > pwned2 && ` + "`touch pwned3`"
	job, log := newJob(t, &pipeline.Task{
		Kind: pipeline.KindShell,
		Argv: []string{"printf", "[%s]\n", "{{ .Params.evil }}", "{{ .LogicalDate }}"},
	})
	job.Vars.Params["evil"] = evil
	if _, err := NewShell(time.Second).Execute(context.Background(), job); err != nil {
		t.Fatalf("Execute: %v\n%s", err, log)
	}
	want := "[" + evil + "]\n[2026-11-25]\n"
	if diff := cmp.Diff(want, log.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(filepath.Join(job.Pipeline.Dir, f)); err == nil {
			t.Errorf("%s exists: an argument was interpreted by a shell", f)
		}
	}
}

func TestShellScriptIsNotTemplated(t *testing.T) {
	t.Parallel()
	job, log := newJob(t, &pipeline.Task{
		Kind:   pipeline.KindScript,
		Script: `echo '{{ .LogicalDate }}' "$SLUICE_LOGICAL_DATE" "$SLUICE_PARAM_DAY"; pwd`,
	})
	if _, err := NewShell(time.Second).Execute(context.Background(), job); err != nil {
		t.Fatalf("Execute: %v\n%s", err, log)
	}
	dir, err := filepath.EvalSymlinks(job.Pipeline.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "{{ .LogicalDate }} 2026-11-25 mon\n" + dir + "\n"
	if diff := cmp.Diff(want, log.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestShellWorkingDirectory(t *testing.T) {
	t.Parallel()
	job, log := newJob(t, &pipeline.Task{
		Kind: pipeline.KindShell, Argv: []string{"pwd"}, Dir: "sub/{{ .Params.day }}",
	})
	sub := filepath.Join(job.Pipeline.Dir, "sub", "mon")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := NewShell(time.Second).Execute(context.Background(), job); err != nil {
		t.Fatalf("Execute: %v\n%s", err, log)
	}
	want, _ := filepath.EvalSymlinks(sub)
	if got := strings.TrimSpace(log.String()); got != want {
		t.Errorf("pwd = %q, want %q", got, want)
	}

	job.Task.Dir = "nowhere"
	_, err := NewShell(time.Second).Execute(context.Background(), job)
	if !IsPermanent(err) {
		t.Errorf("missing working directory: err = %v, want a permanent error", err)
	}
}

func TestShellExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		code    int
		wantErr string
	}{
		{"zero", "exit 0", 0, ""},
		{"one", "exit 1", 1, "exited with code 1"},
		{"seventy", "echo oops >&2; exit 70", 70, "exited with code 70"},
		{"signal", "kill -KILL $$", 128 + int(syscall.SIGKILL), "killed by signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, log := newJob(t, &pipeline.Task{Kind: pipeline.KindScript, Script: tt.script})
			res, err := NewShell(time.Second).Execute(context.Background(), job)
			if res.ExitCode == nil || *res.ExitCode != tt.code {
				t.Fatalf("ExitCode = %v, want %d (err %v)", res.ExitCode, tt.code, err)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if IsPermanent(err) {
				t.Errorf("a non-zero exit must stay retryable: %v", err)
			}
			if tt.code == 70 && !strings.Contains(log.String(), "oops") {
				t.Errorf("stderr not in the log: %q", log.String())
			}
		})
	}
}

func TestShellMissingExecutable(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"sluice-no-such-command", "./no-such-script.sh", "/no/such/binary"} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			t.Parallel()
			job, _ := newJob(t, &pipeline.Task{Kind: pipeline.KindShell, Argv: []string{name, "x"}})
			res, err := NewShell(time.Second).Execute(context.Background(), job)
			if !IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %q", err, name)
			}
			if res.ExitCode != nil {
				t.Errorf("ExitCode = %d, want none", *res.ExitCode)
			}
		})
	}
}

func TestShellTemplateErrorIsPermanent(t *testing.T) {
	t.Parallel()
	job, _ := newJob(t, &pipeline.Task{Kind: pipeline.KindShell, Argv: []string{"echo", "{{ .Params.nope }}"}})
	_, err := NewShell(time.Second).Execute(context.Background(), job)
	if !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
}

// pidAlive reports whether pid is a live (not zombie) process.
func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitGone waits for the OS to reap pid: a killed orphan is reaped by init
// asynchronously, which no channel can signal.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

func TestShellCancellation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		// wantInLog is what the graceful handler prints.
		wantInLog  string
		minElapsed time.Duration
	}{
		{
			name: "graceful",
			// The child reports ready, then waits; on SIGTERM it cleans up.
			script:    `trap 'echo cleaned up; exit 3' TERM; sleep 30 & echo $! > grandchild.pid; echo ready; wait`,
			wantInLog: "cleaned up",
		},
		{
			name:       "ignores_sigterm",
			script:     `trap '' TERM; sleep 30 & echo $! > grandchild.pid; echo ready; while :; do wait; done`,
			minElapsed: 300 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, log := newJob(t, &pipeline.Task{Kind: pipeline.KindScript, Script: tt.script})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			var res Result
			go func() {
				var err error
				res, err = NewShell(300*time.Millisecond).Execute(ctx, job)
				done <- err
			}()
			log.waitFor(t, "ready")
			start := time.Now()
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Execute did not return after cancellation")
			}
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("err = nil after cancellation")
			}
			if elapsed < tt.minElapsed {
				t.Errorf("returned after %v, want at least the grace period %v", elapsed, tt.minElapsed)
			}
			if tt.wantInLog != "" && !strings.Contains(log.String(), tt.wantInLog) {
				t.Errorf("log %q lacks %q", log.String(), tt.wantInLog)
			}
			if tt.name == "ignores_sigterm" && (res.ExitCode == nil || *res.ExitCode != 128+int(syscall.SIGKILL)) {
				t.Errorf("ExitCode = %v, want SIGKILL's %d", res.ExitCode, 128+int(syscall.SIGKILL))
			}
			waitGone(t, readPid(t, filepath.Join(job.Pipeline.Dir, "grandchild.pid")))
		})
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad config")
	p := Permanent(base)
	wrapped := errors.Join(errors.New("ctx"), p)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"permanent", p, true},
		{"wrapped", wrapped, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent = %v, want %v", got, tt.want)
			}
		})
	}
	if !errors.Is(p, base) {
		t.Error("Permanent hides the cause from errors.Is")
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}
