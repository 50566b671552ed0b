package store

import (
	"context"
	"time"
)

// PurposeSigning is the data-key purpose of the key that seals the audit
// log's checkpoint signing keyset.
const PurposeSigning = "signing"

// AuditRecord is one stored audit event. Event holds the event's canonical
// JSON exactly as it was hashed (internal/audit defines the encoding); the
// other columns repeat some of its fields so the log can be filtered, and
// are checked against Event by verification.
type AuditRecord struct {
	Seq      int64 // from 1, without gaps
	Time     time.Time
	Actor    string
	Action   string
	Resource string
	Outcome  string
	Event    []byte // canonical JSON of the event
	PrevHash []byte // SHA-256 of the previous record, 32 zero bytes for Seq 1
	Hash     []byte // SHA-256(PrevHash ‖ Event)
}

// AuditFilter selects audit records for ListAudit. Zero fields do not
// filter.
type AuditFilter struct {
	Actor    string
	Action   string
	Resource string
	Since    time.Time // Time >= Since
	Until    time.Time // Time < Until
	AfterSeq int64     // Seq > AfterSeq: pass the last Seq of a page for the next
	// Limit caps the number returned (in Seq order); 0 means 1000.
	Limit int
}

// AuditCheckpoint is a signed statement that the audit log's event Seq had
// hash Hash at Time. Signature is made by the signing key KeyID over the
// encoding internal/audit defines.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	Time      time.Time
	KeyID     string
	Signature []byte
}

// AuditSigningKey is a checkpoint signing keyset: the private half sealed by
// the keyring (data key DataKeyID, purpose PurposeSigning), the public half
// in clear so anyone with the store can verify signatures.
type AuditSigningKey struct {
	ID           string
	PublicKeyset []byte // Tink JSON keyset without secrets
	Sealed       []byte
	DataKeyID    string
	CreatedAt    time.Time
}

// AuditStore persists the hash-chained audit log and its signed checkpoints.
// Store embeds it, so transaction-bound stores have these methods too.
//
// It is append-only on purpose: there is no method to change or delete a
// record, a checkpoint or a signing key.
type AuditStore interface {
	// AppendAudit adds r at the end of the log. ErrConflict if r.Seq is
	// not the last Seq + 1 (another writer appended first); the caller
	// reads the tail and appends in one transaction.
	AppendAudit(ctx context.Context, r AuditRecord) error
	// LastAudit returns the record with the highest Seq, or ErrNotFound
	// when the log is empty.
	LastAudit(ctx context.Context) (AuditRecord, error)
	// ListAudit returns records in Seq order.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)

	// PutAuditCheckpoint records a checkpoint. ErrConflict if one exists
	// for c.Seq.
	PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// LastAuditCheckpoint returns the checkpoint with the highest Seq, or
	// ErrNotFound.
	LastAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error)
	// ListAuditCheckpoints returns every checkpoint in Seq order.
	ListAuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)

	// PutAuditSigningKey records a signing key. ErrConflict if the id
	// exists.
	PutAuditSigningKey(ctx context.Context, k AuditSigningKey) error
	// GetAuditSigningKey returns a signing key by id, or ErrNotFound.
	GetAuditSigningKey(ctx context.Context, id string) (AuditSigningKey, error)
	// LastAuditSigningKey returns the newest signing key, or ErrNotFound.
	LastAuditSigningKey(ctx context.Context) (AuditSigningKey, error)
}
