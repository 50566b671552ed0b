// Package audit is the audit log of sluice: an append-only, hash-chained
// record of privileged actions, with signed checkpoints, verification and
// export.
//
// Producers (the CLI, the API, the engine, the identity and access
// services) build an Event and hand it to Record or Do together with the
// store (or transaction) the action writes through, so that an action and
// its audit record commit or roll back together: an action whose audit
// record cannot be written does not happen.
//
// Every event is stored with a sequence number, the hash of the event
// before it and its own hash:
//
//	hash(n) = SHA-256( hash(n-1) ‖ canonical JSON of event n )
//
// with hash(0) being 32 zero bytes. Periodic checkpoints sign {seq, hash,
// time} with a Tink signature key, so that rewriting the whole chain or
// cutting its tail is detected too. docs/audit.md defines the canonical
// encoding precisely, so that a third party can re-verify an export.
package audit

import "time"

// Outcome is how the audited action ended.
type Outcome string

// Outcomes.
const (
	// OutcomeSuccess: the action was allowed and done.
	OutcomeSuccess Outcome = "success"
	// OutcomeDenied: the action was refused by a permission, policy or
	// authentication check before anything happened.
	OutcomeDenied Outcome = "denied"
	// OutcomeFailure: the action was allowed but failed (an error); what
	// it changed was rolled back.
	OutcomeFailure Outcome = "failure"
)

// Source is the entry point through which the action was requested.
type Source string

// Sources.
const (
	SourceCLI    Source = "cli"    // a sluice command on the host
	SourceAPI    Source = "api"    // the HTTP API or the UI
	SourceEngine Source = "engine" // the scheduler or a worker, on its own
)

// Event is one audited action. Producers fill it; Record adds the sequence
// number and hashes. Every field is part of the hashed canonical encoding,
// so none may change once recorded.
type Event struct {
	// Time is when the action was decided; zero means now (Record sets
	// it). Kept to the nanosecond, in UTC.
	Time time.Time
	// Actor is who acted, "kind:name": "user:alice", "token:ci-deploy",
	// "local:root" for the operator of the host before identities
	// exist, "system:scheduler" for the engine acting on its own.
	Actor string
	// Action is what was done, "area.verb": "secret.set", "key.rotate",
	// "run.trigger", "auth.login", "role.grant", "data.decrypt".
	Action string
	// Resource is what it was done to, "kind:name": "secret:crm_dsn",
	// "run:01H...", "user:bob"; "" when the action has no object.
	Resource string
	// Outcome is success, denied or failure.
	Outcome Outcome
	// Reason says why a denial or failure happened (or why an action was
	// allowed, when a rule decided it); free text, never a secret value.
	Reason string
	// Source is the entry point: cli, api or engine.
	Source Source
	// Address is the network address of the caller (API), or "" (CLI).
	Address string
	// RequestID ties the event to a request's log lines (API), or "".
	RequestID string
	// Details holds further facts as strings ("version": "3",
	// "key_id": "1234"). Never put a secret or personal data value here:
	// the log is kept forever and cannot be edited.
	Details map[string]string
}

// Entry is a recorded event with its place in the chain.
type Entry struct {
	Event
	// Seq is the event's position in the log, from 1, without gaps.
	Seq int64
	// PrevHash is the hash of the event before (32 zero bytes for the
	// first); Hash is this event's hash.
	PrevHash []byte
	Hash     []byte
}
