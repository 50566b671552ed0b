// Package pipeline is the pipeline spec: it parses YAML into an immutable
// Pipeline, reports every problem with its file:line:col, and plans the
// tasks as a DAG.
package pipeline

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// Pos is a position in a pipeline file.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Classification is how sensitive a pipeline's data is.
type Classification string

// The classifications, from least to most sensitive.
const (
	Public       Classification = "public"
	Internal     Classification = "internal"
	Confidential Classification = "confidential"
	Restricted   Classification = "restricted"
)

// Pipeline is a parsed, validated pipeline. It is immutable: nothing
// modifies a Pipeline after Parse returns it.
type Pipeline struct {
	Name           string
	Namespace      string // "default" when the file names none
	Description    string
	Schedule       string         // a validated cron expression, or ""
	Classification Classification // "internal" when the file names none
	Params         []Param
	Defaults       Policy
	MaxActiveTasks int // 0 means the engine's default
	// Scheduling is how the scheduler treats Schedule: catch-up, concurrent
	// runs and the deadline for lateness; defaults applied.
	Scheduling Scheduling
	// Tasks in the order the file declares them. Order gives a
	// topological order.
	Tasks []*Task

	// File is the path the pipeline was read from; Dir is its directory,
	// the base of relative paths in the spec.
	File string
	Dir  string
	// Hash is the hex SHA-256 of the file's bytes: the identity of this
	// version of the pipeline.
	Hash string
	// Secrets are the ${secret:NAME} references in the file, where they
	// are written; a name may appear more than once.
	Secrets []SecretRef
}

// SecretRef is a reference to a stored secret.
type SecretRef struct {
	Name string
	Pos  Pos
}

// Param is a declared pipeline parameter.
type Param struct {
	Name string
	Type ParamType
	// Default is the default value as written, already checked against
	// Type; "" with Required false means the empty value of the type.
	Default  string
	Required bool
	// Description says what the param is for; shown by the CLI and UI.
	Description string
	Pos         Pos
}

// ParamType is the type of a parameter.
type ParamType string

// The parameter types.
const (
	ParamString ParamType = "string"
	ParamInt    ParamType = "int"
	ParamFloat  ParamType = "float"
	ParamBool   ParamType = "bool"
	ParamDate   ParamType = "date" // YYYY-MM-DD
)

// Backoff is how the delay between attempts grows.
type Backoff string

// The backoff kinds.
const (
	BackoffConstant    Backoff = "constant"
	BackoffExponential Backoff = "exponential"
)

// Policy is the retry and timeout policy of a task. Task policies are
// resolved at parse time: a task's Policy already holds the pipeline
// defaults merged with its own overrides.
type Policy struct {
	// Retries is the number of retries after the first attempt.
	Retries int
	// Backoff, RetryDelay and MaxRetryDelay shape the wait before retry n
	// (1-based): constant waits RetryDelay; exponential waits
	// RetryDelay*2^(n-1), capped at MaxRetryDelay.
	Backoff       Backoff
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// Jitter, when true, draws the actual wait uniformly from [d/2, d].
	Jitter bool
	// Timeout bounds each attempt; 0 means no timeout.
	Timeout time.Duration
}

// TriggerRule says when a task runs, given the outcome of the tasks it needs.
type TriggerRule string

// The trigger rules.
const (
	AllSuccess TriggerRule = "all_success" // every upstream succeeded (the default)
	AllDone    TriggerRule = "all_done"    // every upstream finished, whatever the outcome
	OneFailed  TriggerRule = "one_failed"  // at least one upstream failed
	NoneFailed TriggerRule = "none_failed" // no upstream failed (success or skipped)
)

// Kind is what a task does.
type Kind string

// The task kinds.
const (
	KindShell  Kind = "shell"  // an argv, run directly with no shell
	KindScript Kind = "script" // a script for /bin/sh -c
	KindData   Kind = "data"   // extract and/or transform and/or load
)

// Task is one node of the DAG.
type Task struct {
	Name        string
	Pos         Pos
	Needs       []string
	TriggerRule TriggerRule
	Policy      Policy
	Kind        Kind

	// Shell and script tasks.
	Argv   []string          // KindShell: the command and its arguments, each a template
	Script string            // KindScript: the script; templates are not allowed in it
	Env    map[string]string // extra environment variables; values are templates
	Dir    string            // working directory, a template; relative to the pipeline's Dir

	// Data tasks: any non-empty combination, run as one stream.
	// With Extract nil, the input is the output of the upstream task Input.
	// With Load nil, the output is stored as an artifact for downstream tasks.
	Extract   *Endpoint
	Transform []Step
	Load      *Endpoint
	Input     string // the upstream task whose output this task reads

	// Contract, when not nil, is the schema the data task promises for its
	// output, and what to do when the real output drifts from it.
	Contract *Contract
	// MaxBadRows and MaxBadRatio, when not nil, bound the records a data
	// task may quarantine: more than MaxBadRows records, or more than
	// MaxBadRatio of the records read, fails the task. Nil means no bound:
	// every bad record is kept in quarantine and the task succeeds.
	MaxBadRows  *int64
	MaxBadRatio *float64

	// PIIColumns declares which columns of the data hold personal data,
	// of what type, and how sensitive they are (pii_columns: {email:
	// email, ssn: {type: national_id, sensitivity: restricted}}). The
	// guard at the sink refuses a declared column that no pii step
	// protected unless the sink's classification is at least the
	// column's sensitivity, whatever detection finds. A Sensitivity of ""
	// means none was declared: privacy.DefaultSensitivity.
	PIIColumns map[string]privacy.Declaration
	// AllowRawPII, when not nil, lets the listed columns reach the sink
	// unprotected, for the reason given (recorded in the task log).
	AllowRawPII *AllowRawPII
	// Retain, when not zero, is how long the task's output dataset is
	// kept; after it, the janitor deletes the artifact.
	Retain time.Duration
}

// AllowRawPII is a task's documented exception to the guard at the sink.
type AllowRawPII struct {
	Columns []string
	Reason  string
	Pos     Pos
}

// Contract is the schema a data task declares for its output.
type Contract struct {
	// Columns are the promised columns; their order is not part of the
	// contract.
	Columns []data.Field
	OnDrift OnDrift
	Pos     Pos
}

// OnDrift says what a data task does when its output schema differs from
// its contract.
type OnDrift string

// The drift policies. Every policy reports the drift in the task's log.
const (
	DriftFail   OnDrift = "fail"   // fail the task (the default)
	DriftWarn   OnDrift = "warn"   // log a warning and continue
	DriftEvolve OnDrift = "evolve" // accept the new schema and record the change
)

// Endpoint is a connector with its decoded settings.
type Endpoint struct {
	Connector string
	Config    any // the value data.Connector.Config returned, decoded and validated
	Pos       Pos
	// Classification of the destination, for sinks (load: {csv: ...,
	// classification: restricted}); "" means the pipeline's. The guard at
	// the sink lets raw personal data into restricted destinations only.
	Classification Classification
}

// StepKind is the kind of a transform step.
type StepKind string

// The transform steps.
const (
	StepSelect StepKind = "select" // keep only Columns, in that order
	StepDrop   StepKind = "drop"   // remove Columns
	StepRename StepKind = "rename" // rename per Renames
	StepCast   StepKind = "cast"   // convert per Casts; a value that does not convert is quarantined
	StepFilter StepKind = "filter" // keep rows where Expr (CEL, bool) is true
	StepDerive StepKind = "derive" // add or replace columns computed by CEL, in order
	// StepDedupe drops records whose key repeats an earlier (or, with
	// keep: last, a later) record's key.
	StepDedupe StepKind = "dedupe"
	// StepAggregate groups records and computes measures per group; it
	// emits its rows once the input is exhausted.
	StepAggregate StepKind = "aggregate"
	// StepJoin looks each record up in the output dataset of an upstream
	// task and adds columns from the matching record.
	StepJoin StepKind = "join"
	// StepPII applies privacy operators (redact, mask, hmac, tokenize,
	// generalize, drop, mask_spans) to columns.
	StepPII StepKind = "pii"
)

// Step is one transform step. Which fields are set depends on Kind.
type Step struct {
	Kind    StepKind
	Pos     Pos
	Columns []string
	Renames []Rename
	Casts   []Cast
	Expr    string
	Derives []Derive

	Dedupe    *Dedupe    // StepDedupe
	Aggregate *Aggregate // StepAggregate
	Join      *Join      // StepJoin
	Check     *Check     // StepCheck
	Consent   *Consent   // StepConsent
	// PII are the privacy operators of a StepPII step, one per column, in
	// the order written.
	PII []privacy.Rule
}

// Keep says which of the records sharing a key a dedupe step keeps.
type Keep string

// The dedupe policies.
const (
	KeepFirst Keep = "first" // the first record of each key, streaming (the default)
	KeepLast  Keep = "last"  // the last record of each key, emitted at the end of the input
)

// Dedupe keeps one record per distinct Key (every column when Key is empty).
type Dedupe struct {
	Key  []string
	Keep Keep
}

// AggFunc is an aggregate function of a measure.
type AggFunc string

// The aggregate functions.
const (
	AggCount         AggFunc = "count"          // records; count(col) counts non-null values
	AggSum           AggFunc = "sum"            // int or float
	AggMin           AggFunc = "min"            // any type; keeps it
	AggMax           AggFunc = "max"            // any type; keeps it
	AggAvg           AggFunc = "avg"            // int or float; a float
	AggCountDistinct AggFunc = "count_distinct" // distinct non-null values
)

// Aggregate groups records by GroupBy (one group for everything when
// empty) and computes Measures per group.
type Aggregate struct {
	GroupBy  []string
	Measures []Measure
}

// Measure is one output column of an aggregate: Func over Column ("" for
// count()).
type Measure struct {
	Name   string
	Func   AggFunc
	Column string
}

// JoinHow is the kind of join.
type JoinHow string

// The join kinds.
const (
	JoinInner JoinHow = "inner" // records without a match are filtered out (the default)
	JoinLeft  JoinHow = "left"  // records without a match keep nulls in the added columns
)

// DefaultJoinMaxRows bounds the right side of a join unless max_rows says
// otherwise: it is held in memory.
const DefaultJoinMaxRows = 1_000_000

// Join is a lookup join of the stream against the output dataset of the
// upstream task With.
type Join struct {
	With string
	On   []JoinKey
	How  JoinHow
	// Select are the columns of the right side to add; empty means all
	// but its key columns.
	Select  []string
	MaxRows int
}

// JoinKey pairs a column of the stream (Left) with one of the right side.
type JoinKey struct{ Left, Right string }

// Rename renames column From to To.
type Rename struct{ From, To string }

// Cast converts Column to Type.
type Cast struct {
	Column string
	Type   data.Type
}

// Derive sets Column to the value of the CEL expression Expr.
type Derive struct {
	Column string
	Expr   string
	Pos    Pos
}
