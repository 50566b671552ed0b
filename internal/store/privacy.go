package store

import (
	"context"
	"time"
)

// Data-key purposes of the privacy operators.
const (
	// PurposePRF: an HMAC-SHA256 PRF keyset, a named key that pseudonymises
	// values (the hmac operator) and hashes subject ids in evidence.
	PurposePRF = "prf"
	// PurposeDAEAD: a deterministic AEAD (AES-SIV) keyset, a named key or a
	// per-subject key that tokenises values reversibly.
	PurposeDAEAD = "daead"
)

// Erasure is the evidence of one erasure of a data subject: what was
// destroyed and rewritten, never who the subject was.
type Erasure struct {
	ID string
	// SubjectHash is a keyed hash (HMAC) of the subject id: it proves which
	// subject was erased to someone who knows the id and holds the key,
	// without the store keeping the id itself.
	SubjectHash string
	At          time.Time
	Actor       string
	// KeysDestroyed is how many data keys were deleted: the subject's key
	// (0 or 1) plus the key of each dataset file the erasure replaced.
	KeysDestroyed int
	// Artifacts are the ids of the artifacts rewritten without the
	// subject's rows.
	Artifacts []string
	// Rows is how many rows were removed, over all Artifacts.
	Rows int64
}

// ArtifactDeletion records an artifact deleted by retention (or by hand):
// the record of the artifact is gone, this stays.
type ArtifactDeletion struct {
	ArtifactID string
	RunID      string
	Task       string
	Path       string
	Reason     string // e.g. "retention: expired 2025-01-01T00:00:00Z"
	At         time.Time
}

// PrivacyStore persists per-subject keys, consent records, erasure evidence and retention.
// Store embeds it, so transaction-bound stores have these methods too.
type PrivacyStore interface {
	// RecordErasure records erasure evidence. ErrConflict if the id exists.
	RecordErasure(ctx context.Context, e Erasure) error
	// ListErasures returns every erasure, oldest first.
	ListErasures(ctx context.Context) ([]Erasure, error)

	// ListAllArtifacts returns up to limit artifacts with id > afterID,
	// ordered by id, across every run: pass the last id of a page to get
	// the next. Erasure walks every dataset with it.
	ListAllArtifacts(ctx context.Context, afterID string, limit int) ([]Artifact, error)
	// ReplaceArtifact updates the content fields of a recorded artifact
	// (Path, Format, Schema, Rows, Bytes, SHA256, PlainSHA256) after it
	// was rewritten; its identity (run, task, attempt, kind) is kept.
	// ErrNotFound if it does not exist.
	ReplaceArtifact(ctx context.Context, a Artifact) error

	// SetArtifactExpiry records when an artifact's retention ends.
	// ErrNotFound if the artifact does not exist.
	SetArtifactExpiry(ctx context.Context, artifactID string, expiresAt time.Time) error
	// ArtifactExpiry returns when an artifact expires; the zero time
	// (and no error) if it has no expiry.
	ArtifactExpiry(ctx context.Context, artifactID string) (time.Time, error)
	// ListExpiredArtifacts returns up to limit artifacts whose expiry is
	// at or before now, soonest expired first.
	ListExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]Artifact, error)
	// DeleteArtifact deletes an artifact's record (and expiry) and records
	// d, in one transaction. ErrNotFound if the artifact does not exist.
	DeleteArtifact(ctx context.Context, d ArtifactDeletion) error
	// ListArtifactDeletions returns every recorded deletion, oldest first.
	ListArtifactDeletions(ctx context.Context) ([]ArtifactDeletion, error)
}
