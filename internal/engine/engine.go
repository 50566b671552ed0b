// Package engine drives runs: it creates a run of a pipeline, claims it
// with a lease, and executes its DAG of tasks to a final state, with
// trigger rules, retries, timeouts, cancellation and recovery of work left
// behind by a process that died.
//
// All state lives in the store and moves only through its compare-and-set
// transitions, so a run can be resumed by any engine after a crash: the
// engine's memory is a cache of the store, rebuilt by Execute.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/namerule"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/task"
)

// Sentinel errors.
var (
	// ErrRunActive: Execute found the run driven by another live owner
	// whose lease has not expired. The error names the owner.
	ErrRunActive = errors.New("run is being driven by another owner")
	// ErrLeaseLost: while driving a run, the engine could no longer renew
	// its lease because another owner took the run over. Execute stops
	// without recording anything more: the run is the new owner's.
	ErrLeaseLost = errors.New("lease on the run lost")
)

// Defaults for Options.
const (
	DefaultLeaseDuration  = 30 * time.Second
	DefaultHeartbeatEvery = 10 * time.Second
	DefaultMaxActiveTasks = 16
	// recordTimeout bounds the writes that make a cancellation or an
	// attempt's end durable after the caller's context is gone.
	recordTimeout = 30 * time.Second
)

// Least-privilege modes for task logs: they may hold data.
const (
	logDirMode  = 0o700
	logFileMode = 0o600
)

// Executor runs one attempt of a task. Implementations live in package
// task; the engine picks one per pipeline.Kind.
//
// Execute must return promptly once ctx is done (after whatever grace the
// executor gives a child process). A returned error fails the attempt; mark
// it task.Permanent when retrying cannot help.
type Executor interface {
	Execute(ctx context.Context, job *task.Job) (task.Result, error)
}

// Options configure an Engine. Store, Executors and StateDir are required;
// every other field has a default.
type Options struct {
	Store     store.Store
	Executors map[pipeline.Kind]Executor
	// Clock is the source of time for timestamps, leases, heartbeats and
	// retry waits; default clock.Real. Attempt timeouts are wall-clock
	// context deadlines, since they bound real processes.
	Clock clock.Clock
	// Logger receives the engine's own diagnostics; default discards.
	Logger *slog.Logger
	// StateDir is the state directory; task logs go to
	// StateDir/logs/<run>/<task>.<attempt>.log.
	StateDir string
	// Logs encrypts task logs at rest, each under a data key of its own
	// bound to its path (internal/keys implements it). Required: no log
	// is ever written in plaintext.
	Logs LogSealer
	// Secrets resolves a ${secret:NAME} reference when a task expands it,
	// at the last moment, inside the attempt; nil fails every reference.
	Secrets func(ctx context.Context, name string) ([]byte, error)
	// Redact removes resolved secret values from everything the engine
	// writes: task logs and recorded errors. Required.
	Redact Redactor
	// Observer, if set, receives every Event synchronously and never
	// concurrently, on the engine's critical path: it must be fast and
	// must not block (hand the event to a channel or buffer if it does
	// real work).
	Observer func(Event)
	// Owner identifies this engine in leases: "host:pid:nonce". The
	// default is built from the host name, the pid and a random nonce;
	// the format lets another engine on the same host prove this one dead.
	Owner string
	// LeaseDuration is how long a claim lasts without a heartbeat;
	// default 30s.
	LeaseDuration time.Duration
	// HeartbeatEvery is how often the lease is renewed; default 10s.
	HeartbeatEvery time.Duration
	// MaxActiveTasks caps concurrent attempts of a run when the pipeline
	// sets no max_active_tasks; default 16.
	MaxActiveTasks int
	// Rand draws retry jitter; default seeded from crypto/rand.
	Rand *mrand.Rand
}

// LogSealer encrypts a stream written to w under a fresh data key; the
// result must be closed to complete the stream.
type LogSealer interface {
	EncryptWriter(ctx context.Context, w io.Writer, purpose, ref string, aad []byte) (io.WriteCloser, error)
}

// Redactor replaces known secret values (and their common encodings) with
// a marker; internal/secrets implements it.
type Redactor interface {
	Writer(w io.Writer) io.WriteCloser
	String(s string) string
}

// LogAAD is the associated data a task log is bound to: its path relative
// to the state directory, so a log cannot be passed off as another's.
func LogAAD(rel string) []byte { return []byte("sluice/log/" + rel) }

// Engine creates and executes runs. It is safe for concurrent use; several
// runs may execute at once.
type Engine struct {
	store     store.Store
	executors map[pipeline.Kind]Executor
	clock     clock.Clock
	log       *slog.Logger
	stateDir  string
	logs      LogSealer
	secrets   func(ctx context.Context, name string) ([]byte, error)
	redact    Redactor
	observer  func(Event)
	obsMu     sync.Mutex
	owner     string
	host      string
	lease     time.Duration
	heartbeat time.Duration
	maxActive int

	randMu sync.Mutex
	rand   *mrand.Rand

	// running are the runs Execute is driving, for Cancel.
	running runs
}

// New returns an Engine for opts.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("engine options: no store")
	}
	if opts.StateDir == "" {
		return nil, errors.New("engine options: no state directory")
	}
	if opts.Logs == nil {
		return nil, errors.New("engine options: no log encryption")
	}
	if opts.Redact == nil {
		return nil, errors.New("engine options: no redactor")
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("engine options: reading host name: %w", err)
	}
	e := &Engine{
		store:     opts.Store,
		executors: opts.Executors,
		clock:     opts.Clock,
		log:       opts.Logger,
		stateDir:  opts.StateDir,
		logs:      opts.Logs,
		secrets:   opts.Secrets,
		redact:    opts.Redact,
		observer:  opts.Observer,
		owner:     opts.Owner,
		host:      host,
		lease:     opts.LeaseDuration,
		heartbeat: opts.HeartbeatEvery,
		maxActive: opts.MaxActiveTasks,
		rand:      opts.Rand,
	}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.owner == "" {
		e.owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), randomHex(4))
	}
	if e.lease <= 0 {
		e.lease = DefaultLeaseDuration
	}
	if e.heartbeat <= 0 {
		e.heartbeat = DefaultHeartbeatEvery
	}
	if e.heartbeat >= e.lease {
		return nil, fmt.Errorf("engine options: heartbeat interval %s must be shorter than the lease %s", e.heartbeat, e.lease)
	}
	if e.maxActive <= 0 {
		e.maxActive = DefaultMaxActiveTasks
	}
	if e.rand == nil {
		var seed [16]byte
		if _, err := rand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("engine options: seeding jitter: %w", err)
		}
		e.rand = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	return e, nil
}

// Owner returns the identity this engine claims runs with.
func (e *Engine) Owner() string { return e.owner }

// RunRequest asks for a new run.
type RunRequest struct {
	// ID of the run; default a sortable id: the creation time
	// (20261125T083000Z) and 6 random hex digits.
	ID string
	// LogicalDate is the date the run is for, YYYY-MM-DD; default today (UTC).
	LogicalDate string
	// Params are the run's parameter values, already resolved and checked
	// against the pipeline's declarations by the caller.
	Params map[string]string
	// Trigger is what asked for the run: "manual" (the default),
	// "schedule" or "backfill".
	Trigger string
}

// validID is what run ids may look like: they name a log directory.
var validID = namerule.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 128)

// CreateRun records a new run of p, queued, with every task pending.
// The store's ErrConflict is returned if the id exists.
func (e *Engine) CreateRun(ctx context.Context, p *pipeline.Pipeline, req RunRequest) (store.Run, error) {
	return e.CreateRunIn(ctx, e.store, p, req)
}

// CreateRunIn is CreateRun recording the run through st, a transaction of
// the caller's: the run then commits with what else the caller writes in
// it, such as the audit record of the trigger (see audit.Do).
func (e *Engine) CreateRunIn(ctx context.Context, st store.Store, p *pipeline.Pipeline, req RunRequest) (store.Run, error) {
	now := e.clock.Now().UTC()
	if req.ID == "" {
		req.ID = now.Format("20060102T150405Z") + "-" + randomHex(3)
	}
	if !validID.Match(req.ID) {
		return store.Run{}, fmt.Errorf("creating run of %s: invalid run id %q (letters, digits, '.', '_', '-'; up to 128)", p.Name, req.ID)
	}
	if req.LogicalDate == "" {
		req.LogicalDate = now.Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, req.LogicalDate); err != nil {
		return store.Run{}, fmt.Errorf("creating run of %s: logical date %q is not YYYY-MM-DD", p.Name, req.LogicalDate)
	}
	if req.Trigger == "" {
		req.Trigger = "manual"
	}
	names := make([]string, len(p.Tasks))
	for i, t := range p.Tasks {
		if err := checkTaskName(t.Name); err != nil {
			return store.Run{}, fmt.Errorf("creating run of %s: %w", p.Name, err)
		}
		names[i] = t.Name
	}
	run, err := st.CreateRun(ctx, store.NewRun{
		ID:           req.ID,
		Namespace:    p.Namespace,
		Pipeline:     p.Name,
		PipelineHash: p.Hash,
		PipelineFile: p.File,
		LogicalDate:  req.LogicalDate,
		Params:       req.Params,
		Trigger:      req.Trigger,
		Tasks:        names,
		CreatedAt:    now,
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("creating run of %s: %w", p.Name, err)
	}
	return run, nil
}

// checkTaskName refuses names that cannot be a log file name.
func checkTaskName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("task name %q cannot name a log file", name)
	}
	return nil
}

// claim takes the lease on a run through st, stealing it from a dead owner
// on this host.
func (e *Engine) claim(ctx context.Context, st store.Store, runID string) (store.Run, error) {
	now := e.clock.Now()
	req := store.ClaimRun{RunID: runID, Owner: e.owner, LeaseUntil: now.Add(e.lease), Now: now}
	run, err := st.ClaimRun(ctx, req)
	if err == nil {
		return run, nil
	}
	if !errors.Is(err, store.ErrConflict) {
		return store.Run{}, fmt.Errorf("claiming run %s: %w", runID, err)
	}
	if run.Owner == "" {
		if run, err = st.GetRun(ctx, runID); err != nil {
			return store.Run{}, fmt.Errorf("claiming run %s: %w", runID, err)
		}
	}
	holder := run.Owner
	if !e.ownerDead(holder) {
		return store.Run{}, fmt.Errorf("run %s is driven by %s until %s: %w",
			runID, holder, run.LeaseExpiresAt.UTC().Format(time.RFC3339), ErrRunActive)
	}
	e.log.Info("taking over run from a dead owner", slog.String("run", runID), slog.String("owner", holder))
	req.Steal = true
	run, err = st.ClaimRun(ctx, req)
	if err != nil {
		return store.Run{}, fmt.Errorf("taking over run %s from dead owner %s: %w", runID, holder, err)
	}
	return run, nil
}

// Active reports whether run is being driven right now: it is unfinished,
// claimed, its lease has not expired, and its owner, when on this host, is
// a live process. An unfinished run that is not active was interrupted (or
// never started) and can be taken over by Execute.
func (e *Engine) Active(run store.Run) bool {
	if run.State.Done() || run.Owner == "" || e.ownerDead(run.Owner) {
		return false
	}
	return e.clock.Now().Before(run.LeaseExpiresAt)
}

// ownerDead reports whether owner ("host:pid:nonce") is a process on this
// host that no longer runs. An owner on another host, or one whose format
// is unknown, is presumed alive: only its lease expiring frees the run.
func (e *Engine) ownerDead(owner string) bool {
	i := strings.LastIndexByte(owner, ':')
	if i < 0 {
		return false
	}
	j := strings.LastIndexByte(owner[:i], ':')
	if j < 0 {
		return false
	}
	host, pidStr := owner[:j], owner[j+1:i]
	if host != e.host {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false // another engine in this very process
	}
	return !processAlive(pid)
}

// processAlive reports whether pid is a live process (a zombie is dead).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		s := string(b)
		if k := strings.LastIndexByte(s, ')'); k >= 0 && k+2 < len(s) && s[k+2] == 'Z' {
			return false
		}
	}
	return true // alive, or not ours to signal (EPERM): alive either way
}

// backoff returns the wait before retry n (from 1) under pol.
func (e *Engine) backoff(pol pipeline.Policy, n int) time.Duration {
	d := pol.RetryDelay
	if pol.Backoff == pipeline.BackoffExponential && n > 1 {
		for i := 1; i < n; i++ {
			d *= 2
			if pol.MaxRetryDelay > 0 && d >= pol.MaxRetryDelay {
				break
			}
			if d <= 0 { // overflow
				d = pol.MaxRetryDelay
				break
			}
		}
	}
	if pol.MaxRetryDelay > 0 && d > pol.MaxRetryDelay {
		d = pol.MaxRetryDelay
	}
	if d < 0 {
		d = 0
	}
	if pol.Jitter && d > 1 {
		half := d / 2
		e.randMu.Lock()
		d = half + time.Duration(e.rand.Int64N(int64(d-half)+1))
		e.randMu.Unlock()
	}
	return d
}

// emit sends ev to the observer, one event at a time.
func (e *Engine) emit(ev Event) {
	if e.observer == nil {
		return
	}
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
	e.observer(ev)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read does not fail on supported platforms.
		panic(fmt.Sprintf("reading random bytes: %s", err))
	}
	return hex.EncodeToString(b)
}

// noFollow refuses to open a task log through a symbolic link planted in
// the state directory.
const noFollow = syscall.O_NOFOLLOW
