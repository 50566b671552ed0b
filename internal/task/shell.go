package task

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// EnvAttempt is the environment variable holding the attempt number, from 1,
// next to the run variables of pipeline.Environ.
const EnvAttempt = "SLUICE_ATTEMPT"

// DefaultGrace is how long a cancelled child gets between SIGTERM and
// SIGKILL when NewShell is given no positive grace period.
const DefaultGrace = 10 * time.Second

// inheritedEnv is the only part of sluice's own environment a child sees.
// Everything else (credentials, SLUICE_* settings, tokens of the operator's
// shell) stays with sluice: a task states the variables it needs in env:.
var inheritedEnv = [...]string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"}

// Shell runs shell tasks (an argv, executed directly) and script tasks
// (a script for /bin/sh -c). It holds no state between jobs and is safe for
// concurrent use.
type Shell struct {
	grace time.Duration
}

// NewShell returns a Shell executor. When an attempt's context ends (the run
// is cancelled, or the attempt timed out), the child's whole process group
// gets SIGTERM, and SIGKILL grace later if anything is still running.
func NewShell(grace time.Duration) *Shell {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Shell{grace: grace}
}

// Execute runs the job's task as a child process and waits for it.
//
// Argv elements and env values are templates rendered with job.Vars; each
// argv element stays exactly one argument whatever it contains, since no
// shell is involved. A script is passed to /bin/sh -c verbatim: it reads
// run values from the SLUICE_* variables, never from text substituted into
// the script, so a parameter value can never become shell code.
//
// Errors: a non-zero exit is an error with Result.ExitCode set; a missing
// executable, an unknown working directory, a template error are Permanent.
func (s *Shell) Execute(ctx context.Context, job *Job) (Result, error) {
	t := job.Task
	var res Result
	var argv []string
	switch t.Kind {
	case pipeline.KindShell:
		if len(t.Argv) == 0 {
			return res, Permanent(fmt.Errorf("task %q: empty command", t.Name))
		}
		argv = make([]string, len(t.Argv))
		for i, a := range t.Argv {
			v, err := pipeline.Expand(a, job.Vars)
			if err != nil {
				return res, Permanent(fmt.Errorf("task %q: rendering argument %d: %w", t.Name, i, err))
			}
			argv[i] = v
		}
	case pipeline.KindScript:
		argv = []string{"/bin/sh", "-c", t.Script}
	default:
		return res, Permanent(fmt.Errorf("task %q: kind %q is not a shell or script task", t.Name, t.Kind))
	}

	env, err := childEnv(job)
	if err != nil {
		return res, Permanent(err)
	}
	dir, err := workDir(job)
	if err != nil {
		return res, Permanent(err)
	}
	path, err := lookPath(argv[0], env, dir)
	if err != nil {
		return res, Permanent(fmt.Errorf("task %q: %w", t.Name, err))
	}

	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = job.Log
	cmd.Stderr = job.Log
	// Its own process group, so cancellation reaches its children too; and
	// SIGKILL if sluice itself dies (kill -9, out of memory), so that a
	// resumed run never races a leftover of the interrupted attempt. (The
	// kernel sends it when the thread that started the child exits; the Go
	// runtime only retires threads that a goroutine left locked, which
	// sluice never does.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Go's own pipe copying (when Log is not a file) must not outlive a
	// child that left grandchildren holding the pipe.
	cmd.WaitDelay = s.grace

	if err := cmd.Start(); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, exec.ErrNotFound) {
			return res, Permanent(fmt.Errorf("task %q: starting %q: %w", t.Name, argv[0], err))
		}
		return res, fmt.Errorf("task %q: starting %q: %w", t.Name, argv[0], err)
	}
	pgid := cmd.Process.Pid

	// Cancellation: SIGTERM to the group at once, SIGKILL to the group
	// after the grace period. exec.Cmd's Cancel/WaitDelay would only kill
	// the leader, leaving its children behind, so the group is signalled here.
	waited := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-waited:
			return
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		timer := time.NewTimer(s.grace)
		defer timer.Stop()
		select {
		case <-waited:
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	werr := cmd.Wait()
	close(waited)
	<-stopped
	// Whatever the leader left in its group dies with it: a task must not
	// leave processes running behind the orchestrator's back.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	if werr == nil {
		code := 0
		res.ExitCode = &code
		return res, nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
			res.ExitCode = &code
			return res, fmt.Errorf("task %q: %q killed by signal %s", t.Name, argv[0], ws.Signal())
		}
		res.ExitCode = &code
		return res, fmt.Errorf("task %q: %q exited with code %d", t.Name, argv[0], code)
	}
	if errors.Is(werr, exec.ErrWaitDelay) {
		// The child exited but something it started held its output open.
		code := cmd.ProcessState.ExitCode()
		res.ExitCode = &code
		if code == 0 {
			return res, nil
		}
		return res, fmt.Errorf("task %q: %q exited with code %d", t.Name, argv[0], code)
	}
	return res, fmt.Errorf("task %q: waiting for %q: %w", t.Name, argv[0], werr)
}

// childEnv builds the child's environment: the inherited safe set, the
// task's env (rendered), then the SLUICE_* run variables, which a task
// cannot override. Sorted, so the environment is deterministic.
func childEnv(job *Job) ([]string, error) {
	m := make(map[string]string, len(inheritedEnv)+len(job.Task.Env)+6+len(job.Vars.Params))
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	for k, tmpl := range job.Task.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("task %q: env: invalid variable name %q", job.Task.Name, k)
		}
		v, err := pipeline.Expand(tmpl, job.Vars)
		if err != nil {
			return nil, fmt.Errorf("task %q: env %s: %w", job.Task.Name, k, err)
		}
		m[k] = v
	}
	for _, kv := range pipeline.Environ(job.Vars) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	m[EnvAttempt] = strconv.Itoa(job.Attempt)
	env := make([]string, 0, len(m))
	for k, v := range m {
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("task %q: env %s: value contains a NUL byte", job.Task.Name, k)
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, nil
}

// workDir renders the task's Dir, relative to the pipeline's directory.
func workDir(job *Job) (string, error) {
	base := job.Pipeline.Dir
	dir := base
	if job.Task.Dir != "" {
		d, err := pipeline.Expand(job.Task.Dir, job.Vars)
		if err != nil {
			return "", fmt.Errorf("task %q: rendering dir: %w", job.Task.Name, err)
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(base, d)
		}
		dir = d
	}
	if dir == "" {
		return "", nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("task %q: working directory: %w", job.Task.Name, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("task %q: working directory %q is not a directory", job.Task.Name, dir)
	}
	return dir, nil
}

// lookPath finds name the way the child's environment would: a bare name
// through the child's PATH (which a task's env may set), a path with a
// separator relative to the working directory.
func lookPath(name string, env []string, dir string) (string, error) {
	if name == "" {
		return "", errors.New("empty command name")
	}
	if strings.ContainsRune(name, filepath.Separator) {
		p := name
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("executable %q: %w", name, err)
		}
		return p, nil
	}
	var pathVar string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range filepath.SplitList(pathVar) {
		if d == "" || !filepath.IsAbs(d) {
			// Relative PATH entries would resolve against the working
			// directory: a planted binary there must not win.
			continue
		}
		p := filepath.Join(d, name)
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH: %w", name, exec.ErrNotFound)
}
