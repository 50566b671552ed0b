package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// ErrEmptyLog: there is no event to checkpoint yet.
var ErrEmptyLog = errors.New("the audit log is empty")

// DefaultCheckpointEvery is how many events may follow the last checkpoint
// before Checkpointer.Maybe signs a new one. A checkpoint bounds what an
// attacker with write access to the store can cut from the tail unnoticed;
// signing one is a few tens of microseconds.
const DefaultCheckpointEvery = 100

// checkpointDomain prefixes every signed checkpoint message, so a
// signature made for anything else never verifies as a checkpoint.
const checkpointDomain = "sluice-audit-checkpoint-v1\n"

// CheckpointMessage is the byte string a checkpoint signature covers:
//
//	"sluice-audit-checkpoint-v1\n" + {"hash":"<hex>","seq":<n>,"time":"<RFC 3339>"}
//
// with the JSON in the canonical form of events (sorted keys, no
// whitespace), the hash in lowercase hex and the time in UTC with
// microsecond precision at most.
func CheckpointMessage(seq int64, hash []byte, at time.Time) []byte {
	b := []byte(checkpointDomain)
	b = append(b, `{"hash":"`...)
	b = append(b, hex.EncodeToString(hash)...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = append(b, at.UTC().Format(time.RFC3339Nano)...)
	b = append(b, `"}`...)
	return b
}

// CheckpointOptions tune a Checkpointer. The zero value is the default.
type CheckpointOptions struct {
	// Every is how many events Maybe lets pass between checkpoints; 0
	// means DefaultCheckpointEvery.
	Every int64
	// Now is the clock of checkpoint times; nil means time.Now.
	Now func() time.Time
}

// Checkpointer signs checkpoints of the audit log with an Ed25519 Tink key
// whose private half is sealed by the keyring (data-key purpose
// keys.PurposeSigning) and whose public half is stored in clear. It is safe
// for concurrent use.
type Checkpointer struct {
	st    store.Store
	kr    *keys.Keyring
	every int64
	now   func() time.Time

	mu     sync.Mutex
	keyID  string
	signer tink.Signer
}

// NewCheckpointer returns a Checkpointer over the log in st, sealing its
// signing key with kr.
func NewCheckpointer(st store.Store, kr *keys.Keyring, opts CheckpointOptions) *Checkpointer {
	if opts.Every <= 0 {
		opts.Every = DefaultCheckpointEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checkpointer{st: st, kr: kr, every: opts.Every, now: opts.Now}
}

// signingKeyAAD binds a sealed private keyset to its id and to the public
// keyset stored beside it: a public key swapped in the store no longer
// matches a private key that opens.
func signingKeyAAD(id string, public []byte) []byte {
	b := []byte("sluice audit signing key v1\n" + id + "\n")
	return append(b, public...)
}

// loadSigner returns the newest signing key's signer, creating the key on
// first use. It writes through the keyring's store, so it must not run
// inside a transaction.
func (c *Checkpointer) loadSigner(ctx context.Context) (string, tink.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signer != nil {
		return c.keyID, c.signer, nil
	}
	k, err := c.st.LastAuditSigningKey(ctx)
	if errors.Is(err, store.ErrNotFound) {
		k, err = c.createKey(ctx)
	}
	if err != nil {
		return "", nil, err
	}
	priv, err := c.kr.Open(ctx, k.DataKeyID, k.Sealed, signingKeyAAD(k.ID, k.PublicKeyset))
	if err != nil {
		return "", nil, fmt.Errorf("opening audit signing key %s: %w", k.ID, err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(priv)))
	if err != nil {
		return "", nil, fmt.Errorf("reading audit signing key %s: %w", k.ID, err)
	}
	s, err := signature.NewSigner(h)
	if err != nil {
		return "", nil, fmt.Errorf("audit signing key %s: %w", k.ID, err)
	}
	c.keyID, c.signer = k.ID, s
	return k.ID, s, nil
}

func (c *Checkpointer) createKey(ctx context.Context) (store.AuditSigningKey, error) {
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("generating audit signing key: %w", err)
	}
	pub, err := h.Public()
	if err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("generating audit signing key: %w", err)
	}
	var pubJSON, privJSON bytes.Buffer
	if err := pub.WriteWithNoSecrets(keyset.NewJSONWriter(&pubJSON)); err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("encoding audit signing key: %w", err)
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&privJSON)); err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("encoding audit signing key: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("generating audit signing key id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	sealed, dkID, err := c.kr.Seal(ctx, keys.PurposeSigning, "audit-signing-key:"+id, privJSON.Bytes(),
		signingKeyAAD(id, pubJSON.Bytes()))
	if err != nil {
		return store.AuditSigningKey{}, fmt.Errorf("sealing audit signing key: %w", err)
	}
	k := store.AuditSigningKey{ID: id, PublicKeyset: pubJSON.Bytes(), Sealed: sealed, DataKeyID: dkID, CreatedAt: c.now().UTC()}
	if err := c.st.PutAuditSigningKey(ctx, k); err != nil {
		return store.AuditSigningKey{}, err
	}
	return k, nil
}

// Checkpoint signs the current tail of the log and stores the checkpoint;
// if the tail is already checkpointed it returns that checkpoint. It runs
// its own transactions: do not call it inside InTx. ErrEmptyLog if there is
// no event.
func (c *Checkpointer) Checkpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	keyID, signer, err := c.loadSigner(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("checkpointing the audit log: %w", err)
	}
	var cp store.AuditCheckpoint
	err = c.st.InTx(ctx, func(tx store.Store) error {
		last, err := tx.LastAudit(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return ErrEmptyLog
		}
		if err != nil {
			return err
		}
		prev, err := tx.LastAuditCheckpoint(ctx)
		switch {
		case err == nil && prev.Seq == last.Seq:
			cp = prev
			return nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		at := c.now().UTC().Truncate(time.Microsecond)
		sig, err := signer.Sign(CheckpointMessage(last.Seq, last.Hash, at))
		if err != nil {
			return fmt.Errorf("signing: %w", err)
		}
		cp = store.AuditCheckpoint{Seq: last.Seq, Hash: last.Hash, Time: at, KeyID: keyID, Signature: sig}
		return tx.PutAuditCheckpoint(ctx, cp)
	})
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("checkpointing the audit log: %w", err)
	}
	return cp, nil
}

// Maybe signs a checkpoint if at least Every events follow the last one
// (or there is none and the log has Every events). Call it after an
// audited action commits; it reports whether it made a checkpoint.
func (c *Checkpointer) Maybe(ctx context.Context) (store.AuditCheckpoint, bool, error) {
	last, err := c.st.LastAudit(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return store.AuditCheckpoint{}, false, nil
	}
	if err != nil {
		return store.AuditCheckpoint{}, false, fmt.Errorf("checking for a due checkpoint: %w", err)
	}
	var since int64
	prev, err := c.st.LastAuditCheckpoint(ctx)
	switch {
	case err == nil:
		since = prev.Seq
	case !errors.Is(err, store.ErrNotFound):
		return store.AuditCheckpoint{}, false, fmt.Errorf("checking for a due checkpoint: %w", err)
	}
	if last.Seq-since < c.every {
		return store.AuditCheckpoint{}, false, nil
	}
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, false, err
	}
	return cp, true, nil
}

// publicVerifier parses a stored public keyset.
func publicVerifier(k store.AuditSigningKey) (tink.Verifier, error) {
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(k.PublicKeyset)))
	if err != nil {
		return nil, fmt.Errorf("reading public key %s: %w", k.ID, err)
	}
	v, err := signature.NewVerifier(h)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", k.ID, err)
	}
	return v, nil
}
