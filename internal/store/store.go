// Package store is the persistence seam of sluice: runs, task runs, attempts
// and artifacts, and the transactional state transitions between them.
//
// The embedded implementation is store/sqlite; a PostgreSQL one joins later.
// Both must pass the conformance suite in store/storetest, which is the
// executable definition of this contract.
//
// Every transition is a compare-and-set executed in one transaction: the
// caller names the state it expects to move from, and gets ErrConflict when
// somebody else moved first. That is what lets several engines (or an engine
// and a crashed predecessor's leftovers) share one store without a lock.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Methods document which they return; check with errors.Is.
var (
	// ErrNotFound: the run, task run, attempt or artifact does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record is not in the state the caller expected
	// (another actor changed it first, or the lease is held by another).
	ErrConflict = errors.New("conflict")
)

// RunState is the state of a run.
type RunState string

// Run states.
const (
	RunQueued    RunState = "queued"
	RunRunning   RunState = "running"
	RunSuccess   RunState = "success"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// Done reports whether s is final.
func (s RunState) Done() bool { return s == RunSuccess || s == RunFailed || s == RunCancelled }

// TaskState is the state of a task within a run.
//
//	pending ─▶ queued ─▶ running ─▶ success
//	   │          │         ├─────▶ failed
//	   │          │         ├─────▶ up_for_retry ─▶ queued ─▶ ...
//	   │          │         └─────▶ cancelled
//	   └──────────┴────────────────▶ skipped | cancelled
type TaskState string

// Task states.
const (
	TaskPending    TaskState = "pending"
	TaskQueued     TaskState = "queued"
	TaskRunning    TaskState = "running"
	TaskSuccess    TaskState = "success"
	TaskFailed     TaskState = "failed"
	TaskUpForRetry TaskState = "up_for_retry"
	TaskSkipped    TaskState = "skipped"
	TaskCancelled  TaskState = "cancelled"
)

// Done reports whether s is final.
func (s TaskState) Done() bool {
	switch s {
	case TaskSuccess, TaskFailed, TaskSkipped, TaskCancelled:
		return true
	}
	return false
}

// Outcome is how one attempt ended.
type Outcome string

// Attempt outcomes.
const (
	OutcomeRunning     Outcome = "running"     // not ended yet
	OutcomeSuccess     Outcome = "success"     // the task succeeded
	OutcomeFailed      Outcome = "failed"      // the task failed (non-zero exit, error)
	OutcomeTimedOut    Outcome = "timed_out"   // the attempt exceeded its timeout
	OutcomeCancelled   Outcome = "cancelled"   // the run was cancelled during the attempt
	OutcomeInterrupted Outcome = "interrupted" // its process died; found orphaned by a later resume
	// OutcomeIntegrity: a dataset the attempt read failed verification
	// (tampered, truncated, swapped, or undecryptable). Kept apart from
	// ordinary failures because it means the stored data cannot be
	// trusted, not that the task went wrong; never retried.
	OutcomeIntegrity Outcome = "integrity_failed"
)

// Run is one execution of a pipeline version for a logical date.
type Run struct {
	ID           string
	Namespace    string
	Pipeline     string
	PipelineHash string // the version run: SHA-256 of the pipeline file
	PipelineFile string // where the file was read from
	LogicalDate  string // YYYY-MM-DD
	Params       map[string]string
	Trigger      string // "manual", "schedule", "backfill"
	State        RunState
	Error        string
	CreatedAt    time.Time
	StartedAt    time.Time // zero until running
	EndedAt      time.Time // zero until done
	// Owner is the engine driving the run ("host:pid:nonce") while its
	// lease, renewed by heartbeats, has not expired.
	Owner          string
	LeaseExpiresAt time.Time
}

// TaskRun is the state of one task within a run.
type TaskRun struct {
	RunID    string
	Task     string
	Seq      int // position of the task in the pipeline file, from 0
	State    TaskState
	Attempts int // attempts started so far
	// NextAttemptAt is when an up_for_retry task may be queued again.
	NextAttemptAt time.Time
	StartedAt     time.Time // of the first attempt
	EndedAt       time.Time // when it reached a final state
	Error         string    // why the last attempt failed, or why it was skipped
	// Outcome of the last attempt, with its figures.
	ExitCode        *int
	RowsIn          int64
	RowsOut         int64
	RowsQuarantined int64
	Output          string // artifact id of the task's output dataset, if any
}

// Attempt is one try at running a task.
type Attempt struct {
	RunID           string
	Task            string
	Number          int // from 1
	Outcome         Outcome
	Owner           string
	StartedAt       time.Time
	EndedAt         time.Time
	ExitCode        *int
	Error           string
	RowsIn          int64
	RowsOut         int64
	RowsQuarantined int64
	Output          string // artifact id
	LogPath         string // relative to the state directory
}

// Artifact is a dataset file written by a task attempt.
type Artifact struct {
	ID      string
	RunID   string
	Task    string
	Attempt int
	Kind    string // "output" or "quarantine"
	Path    string // relative to the state directory
	Format  string // e.g. "arrow-ipc-stream", "jsonl"
	Schema  string // the schema, as the artifact package encodes it
	Rows    int64
	Bytes   int64
	SHA256  string // hex digest of the file's bytes (ciphertext when encrypted)
	// PlainSHA256 is the hex digest of the plaintext stream, for artifacts
	// sluice encrypts; "" where it is the same as SHA256 or unknown.
	PlainSHA256 string
	Created     time.Time
	// ExpiresAt, when set on PutArtifact, records the end of the
	// artifact's retention (PrivacyStore.SetArtifactExpiry); it is not
	// read back by GetArtifact (see ArtifactExpiry).
	ExpiresAt time.Time
}

// NewRun creates a run with one pending task run per task.
type NewRun struct {
	ID           string
	Namespace    string
	Pipeline     string
	PipelineHash string
	PipelineFile string
	LogicalDate  string
	Params       map[string]string
	Trigger      string
	Tasks        []string // in file order; Seq follows it
	CreatedAt    time.Time
}

// RunFilter selects runs for ListRuns. Zero fields do not filter.
type RunFilter struct {
	Namespace string
	Pipeline  string
	States    []RunState
	// Before, when set, returns only runs that come after it in the
	// listing order: created earlier, or at the same instant with a
	// smaller id. Passing the key of the last run of a page gets the next
	// page (keyset paging), which costs the same however deep the page is
	// and neither repeats nor skips a run when new ones are created
	// meanwhile.
	Before *RunKey
	// Limit caps the number returned (newest first); 0 means 100.
	Limit int
}

// RunKey is a run's position in ListRuns' order: newest CreatedAt first,
// then the greater ID first.
type RunKey struct {
	CreatedAt time.Time
	ID        string
}

// KeyOf returns the listing position of run.
func KeyOf(run Run) RunKey { return RunKey{CreatedAt: run.CreatedAt, ID: run.ID} }

// ClaimRun asks to drive a run.
type ClaimRun struct {
	RunID      string
	Owner      string
	LeaseUntil time.Time
	Now        time.Time
	// Steal takes the run even if another owner's lease has not expired.
	// The engine sets it only when it has proof that owner is dead (same
	// host, process gone).
	Steal bool
}

// StartAttempt moves a task run from From to running and opens an attempt.
type StartAttempt struct {
	RunID   string
	Task    string
	From    TaskState // usually queued
	Owner   string
	At      time.Time
	LogPath string
}

// FinishAttempt closes the current attempt of a running task run and moves
// the task run to State (success, failed, up_for_retry or cancelled).
type FinishAttempt struct {
	RunID           string
	Task            string
	Number          int // the attempt being closed; ErrConflict if it is not the current one
	Outcome         Outcome
	State           TaskState
	NextAttemptAt   time.Time // for up_for_retry
	At              time.Time
	ExitCode        *int
	Error           string
	RowsIn          int64
	RowsOut         int64
	RowsQuarantined int64
	Output          string
}

// SetTaskState moves a task run between states outside an attempt
// (pending→queued, pending→skipped, up_for_retry→queued, →cancelled).
type SetTaskState struct {
	RunID string
	Task  string
	From  []TaskState // allowed current states
	To    TaskState
	At    time.Time
	Error string // reason, for skipped/cancelled; kept otherwise
}

// SetRunState moves a run between states.
type SetRunState struct {
	RunID string
	From  []RunState
	To    RunState
	At    time.Time
	Error string
}

// Store is the persistence seam. Implementations are safe for concurrent use.
type Store interface {
	UserStore
	AccessStore
	AuditStore
	PrivacyStore
	QualityStore
	ScheduleStore

	// CreateRun inserts a run in state queued with its task runs pending.
	// ErrConflict if the id exists.
	CreateRun(ctx context.Context, p NewRun) (Run, error)
	// GetRun returns a run by id, or ErrNotFound.
	GetRun(ctx context.Context, id string) (Run, error)
	// ListRuns returns runs newest first: by CreatedAt descending, then
	// by ID descending among runs created in the same microsecond.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// SetRunState is a compare-and-set on the run's state; ErrConflict if
	// it is not in one of From, ErrNotFound if it does not exist. Moving
	// to running sets StartedAt (once); moving to a final state sets EndedAt.
	SetRunState(ctx context.Context, p SetRunState) (Run, error)
	// ClaimRun makes Owner the run's driver until LeaseUntil: allowed when
	// the run has no owner, the same owner, an expired lease, or Steal.
	// ErrConflict otherwise (the returned Run shows the holder).
	ClaimRun(ctx context.Context, p ClaimRun) (Run, error)
	// HeartbeatRun extends the lease of owner; ErrConflict if owner no
	// longer holds it.
	HeartbeatRun(ctx context.Context, runID, owner string, until time.Time) error
	// ReleaseRun clears the owner if it is owner.
	ReleaseRun(ctx context.Context, runID, owner string) error

	// ListTaskRuns returns a run's task runs in Seq order.
	ListTaskRuns(ctx context.Context, runID string) ([]TaskRun, error)
	// GetTaskRun returns one task run, or ErrNotFound.
	GetTaskRun(ctx context.Context, runID, task string) (TaskRun, error)
	// SetTaskState is a compare-and-set on a task run's state.
	SetTaskState(ctx context.Context, p SetTaskState) (TaskRun, error)
	// StartAttempt moves the task run from p.From to running, increments
	// its attempt count and records the new attempt, in one transaction.
	StartAttempt(ctx context.Context, p StartAttempt) (Attempt, error)
	// FinishAttempt records the end of the current attempt and the task
	// run's new state, in one transaction. ErrConflict if the task run is
	// not running or p.Number is not its current attempt.
	FinishAttempt(ctx context.Context, p FinishAttempt) (TaskRun, error)
	// ListAttempts returns the attempts of a run (one task if task != ""),
	// ordered by task Seq then attempt number.
	ListAttempts(ctx context.Context, runID, task string) ([]Attempt, error)

	// PutArtifact records an artifact. ErrConflict if the id exists.
	PutArtifact(ctx context.Context, a Artifact) error
	// GetArtifact returns an artifact by id, or ErrNotFound.
	GetArtifact(ctx context.Context, id string) (Artifact, error)
	// ListArtifacts returns a run's artifacts in creation order.
	ListArtifacts(ctx context.Context, runID string) ([]Artifact, error)

	// KeyStore: wrapped data keys and sealed secrets.
	KeyStore

	// InTx runs fn with a Store whose operations all join one transaction,
	// committed if fn returns nil and rolled back otherwise.
	InTx(ctx context.Context, fn func(tx Store) error) error
	// Close releases the store's resources.
	Close() error
}

// Data-key purposes: what a DataKey protects.
const (
	PurposeArtifact = "artifact"
	PurposeLog      = "log"
	PurposeSecret   = "secret"
	PurposeFile     = "file" // a file a sink wrote with encrypt: true
)

// DataKey is a data-encryption key (DEK), stored only wrapped (encrypted) by
// a key-encryption key (KEK) that never reaches the store. One DEK protects
// one thing (an artifact, a task log, a secret version), so losing or
// retiring one exposes or destroys nothing else.
type DataKey struct {
	ID      string
	Purpose string // PurposeArtifact, PurposeLog or PurposeSecret
	Ref     string // what it protects, e.g. the artifact id
	// KEKKeyID is the id, within the KEK keyset, of the key that wrapped
	// it: rotation re-wraps DEKs until no DEK names a retiring key.
	KEKKeyID    uint32
	Wrapped     []byte
	CreatedAt   time.Time
	RewrappedAt time.Time // zero until re-wrapped
}

// Secret is one version of a named secret. Sealed is ciphertext (sealed with
// the data key DataKeyID); the store never sees the value.
type Secret struct {
	Name      string
	Version   int // from 1
	Sealed    []byte
	DataKeyID string
	SetBy     string
	SetAt     time.Time
}

// KeyStore is the part of Store that keeps wrapped data keys and sealed
// secrets. It is part of Store (so a transaction-bound store has it too)
// and named so the keyring can declare the narrower dependency.
type KeyStore interface {
	// PutDataKey records a wrapped data key. ErrConflict if the id exists.
	PutDataKey(ctx context.Context, k DataKey) error
	// GetDataKey returns a data key by id, or ErrNotFound.
	GetDataKey(ctx context.Context, id string) (DataKey, error)
	// ListDataKeys returns up to limit data keys with id > afterID, ordered
	// by id: pass the last id of a page to get the next.
	ListDataKeys(ctx context.Context, afterID string, limit int) ([]DataKey, error)
	// RewrapDataKey replaces the wrapped bytes of a data key, a
	// compare-and-set on its KEKKeyID: ErrConflict if it is no longer
	// fromKEK (somebody re-wrapped it first), ErrNotFound if it does not
	// exist.
	RewrapDataKey(ctx context.Context, id string, fromKEK, toKEK uint32, wrapped []byte, at time.Time) error
	// CountDataKeysByKEK counts data keys per wrapping KEK key id; ids with
	// no data key are absent.
	CountDataKeysByKEK(ctx context.Context) (map[uint32]int64, error)
	// DeleteDataKey deletes a wrapped data key for good: whatever it
	// encrypted can never be decrypted again (crypto-shredding).
	// ErrNotFound if it does not exist.
	DeleteDataKey(ctx context.Context, id string) error

	// PutSecret stores a new version of s.Name, assigning Version =
	// latest+1 (1 for a new name) in one transaction; s.Version is
	// ignored. It returns the stored secret.
	PutSecret(ctx context.Context, s Secret) (Secret, error)
	// GetSecret returns the latest version of a secret, or ErrNotFound.
	GetSecret(ctx context.Context, name string) (Secret, error)
	// ListSecrets returns the latest version of each secret, ordered by
	// name, with Sealed left empty.
	ListSecrets(ctx context.Context) ([]Secret, error)
	// DeleteSecret deletes every version of a secret; ErrNotFound if it has
	// none.
	DeleteSecret(ctx context.Context, name string) error
}
