// Package secrets keeps credentials out of pipeline files, run records and
// logs: values are sealed by the keyring before they reach the store,
// referenced from pipelines as ${secret:NAME}, resolved only when a task
// executes, and redacted from every log line and task output.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/namerule"
	"github.com/sluicehq/sluice/internal/store"
)

// Sentinel errors returned by the Service (besides store.ErrNotFound, which
// Resolve and Delete wrap for an unknown name, and store.ErrConflict, which
// Set wraps when another writer stored a version of the same name at the
// same moment).
var (
	// ErrInvalidName: the name does not match NamePattern.
	ErrInvalidName = errors.New("invalid secret name")
	// ErrValueTooShort: the value is shorter than MinRedactLen bytes, so the
	// Redactor could not keep it out of logs.
	ErrValueTooShort = errors.New("secret value too short")
)

// NamePattern is the rule for secret names: an identifier that may also
// contain dots and dashes, at most 128 bytes. It excludes ':' so that the
// associated data "secret:NAME:vN" is unambiguous, and '}' and spaces so that
// a reference ${secret:NAME} always ends at the first '}'.
const NamePattern = `^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`

// nameRule is NamePattern with its length bound kept apart (see
// internal/namerule): compiled with {0,127}, the pattern would cost every
// start of the binary about 0.1 ms and 100 KB.
var nameRule = namerule.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`, 128)

// ValidName returns nil if name is a valid secret name, and an error
// wrapping ErrInvalidName saying what is wrong otherwise.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if !nameRule.Match(name) {
		return fmt.Errorf("%w %q: want a letter or '_' then up to 127 letters, digits, '_', '.' or '-'", ErrInvalidName, name)
	}
	return nil
}

// PurposeSecret is the data-key purpose the Service seals with.
const PurposeSecret = store.PurposeSecret

// Sealer is the part of the keyring the Service uses: envelope encryption
// with a fresh data key per sealed value. purpose and ref say what the data
// key protects; aad is bound to the ciphertext and must be presented again
// to Open.
type Sealer interface {
	Seal(ctx context.Context, purpose, ref string, plaintext, aad []byte) (ciphertext []byte, dataKeyID string, err error)
	Open(ctx context.Context, dataKeyID string, ciphertext, aad []byte) ([]byte, error)
}

// Shredder destroys data keys (crypto-shredding); *keys.Keyring
// implements it. st is the transaction the destruction joins, or nil for
// the keyring's own store. A Sealer that is also a Shredder keeps its data
// keys in the store, and Delete destroys them through it; for any other
// Sealer, Delete deletes the keys' rows through the store itself.
type Shredder interface {
	DestroyDataKey(ctx context.Context, st store.KeyStore, id string) (bool, error)
}

// Store is the part of store.Store the Service uses.
type Store interface {
	PutSecret(ctx context.Context, s store.Secret) (store.Secret, error)
	GetSecret(ctx context.Context, name string) (store.Secret, error)
	ListSecrets(ctx context.Context) ([]store.Secret, error)
	DeleteSecret(ctx context.Context, name string) error
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Meta describes a secret without its value: all that List ever returns.
type Meta struct {
	Name    string
	Version int
	SetBy   string
	SetAt   time.Time
}

// Service sets, lists, deletes and resolves secrets. The store only ever
// holds sealed values; the plaintext exists in memory between Resolve and
// the task that needs it. Safe for concurrent use.
type Service struct {
	store    Store
	sealer   Sealer
	redactor *Redactor
	clock    clock.Clock
}

// setAttempts bounds how often Set retries when a concurrent Set of the same
// name takes the version it sealed for.
const setAttempts = 3

// NewService returns a Service. Every value it resolves is registered with
// redactor, so that the logs and task outputs redacted by it never show the
// value. st, sealer and redactor must not be nil; a nil clk means the wall
// clock.
func NewService(st Store, sealer Sealer, redactor *Redactor, clk clock.Clock) *Service {
	if st == nil || sealer == nil || redactor == nil {
		panic("secrets.NewService: nil store, sealer or redactor")
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Service{store: st, sealer: sealer, redactor: redactor, clock: clk}
}

// sealAAD is the associated data of a sealed secret: it binds the
// ciphertext to its name and version, so that a sealed value copied to
// another name, or an old version written back over a newer one, fails to
// open instead of silently resolving.
func sealAAD(name string, version int) []byte {
	return fmt.Appendf(nil, "secret:%s:v%d", name, version)
}

// Set stores a new version of the secret name with value, set by actor.
//
// The store assigns versions, but the version is sealed into the
// ciphertext's associated data, so it must be known before sealing: Set
// reads the latest version, seals for latest+1 (outside any transaction,
// since the keyring writes its data key through the store), then in one
// transaction checks that the latest is still the one it read and stores
// the new version. If a concurrent Set won the race, Set seals again for
// the next version, up to three times, then returns an error wrapping
// store.ErrConflict.
//
// Errors: ErrInvalidName, ErrValueTooShort (empty or shorter than
// MinRedactLen bytes).
func (s *Service) Set(ctx context.Context, name string, value []byte, actor string) (store.Secret, error) {
	if err := ValidName(name); err != nil {
		return store.Secret{}, err
	}
	if len(value) < MinRedactLen {
		return store.Secret{}, fmt.Errorf("%w: secret %q needs at least %d bytes", ErrValueTooShort, name, MinRedactLen)
	}
	var err error
	for range setAttempts {
		var sec store.Secret
		sec, err = s.trySet(ctx, name, value, actor)
		if err == nil {
			return sec, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	return store.Secret{}, fmt.Errorf("setting secret %q: %w", name, err)
}

func (s *Service) trySet(ctx context.Context, name string, value []byte, actor string) (store.Secret, error) {
	latest, err := s.latestVersion(ctx, s.store, name)
	if err != nil {
		return store.Secret{}, err
	}
	version := latest + 1
	sealed, keyID, err := s.sealer.Seal(ctx, PurposeSecret, "secret:"+name, value, sealAAD(name, version))
	if err != nil {
		return store.Secret{}, fmt.Errorf("sealing: %w", err)
	}
	var stored store.Secret
	err = s.store.InTx(ctx, func(tx store.Store) error {
		now, err := s.latestVersion(ctx, tx, name)
		if err != nil {
			return err
		}
		if now != latest {
			return fmt.Errorf("version %d was stored meanwhile: %w", now, store.ErrConflict)
		}
		if _, ok := s.sealer.(Shredder); ok {
			// A Delete running meanwhile destroys every key sealed for
			// the name, this one included: storing the version would
			// keep a value nothing can open.
			if _, err := tx.GetDataKey(ctx, keyID); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("data key %q was destroyed by a deletion meanwhile: %w", keyID, store.ErrConflict)
			} else if err != nil {
				return fmt.Errorf("checking data key %q: %w", keyID, err)
			}
		}
		stored, err = tx.PutSecret(ctx, store.Secret{
			Name:      name,
			Sealed:    sealed,
			DataKeyID: keyID,
			SetBy:     actor,
			SetAt:     s.clock.Now().UTC(),
		})
		if err != nil {
			return fmt.Errorf("storing: %w", err)
		}
		if stored.Version != version {
			// Rolling back keeps a row whose AAD does not match out of the store.
			return fmt.Errorf("store assigned version %d, sealed for %d: %w", stored.Version, version, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.Secret{}, err
	}
	stored.Sealed = nil
	return stored, nil
}

// latestVersion is the latest stored version of name, 0 if there is none.
func (s *Service) latestVersion(ctx context.Context, st interface {
	GetSecret(context.Context, string) (store.Secret, error)
}, name string) (int, error) {
	sec, err := st.GetSecret(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading latest version: %w", err)
	}
	return sec.Version, nil
}

// List returns the name, latest version and provenance of every secret,
// ordered by name. It never returns values, sealed or not.
func (s *Service) List(ctx context.Context) ([]Meta, error) {
	all, err := s.store.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	out := make([]Meta, len(all))
	for i, sec := range all {
		out[i] = Meta{Name: sec.Name, Version: sec.Version, SetBy: sec.SetBy, SetAt: sec.SetAt}
	}
	return out, nil
}

// Delete removes every version of the secret name and destroys their
// data keys, in one transaction (see DeleteIn), and returns the ids of the
// keys destroyed. Errors: ErrInvalidName, or store.ErrNotFound (wrapped) if
// there is no such secret.
func (s *Service) Delete(ctx context.Context, name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	var destroyed []string
	err := s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		destroyed, err = s.DeleteIn(ctx, tx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.Evict(ctx, destroyed); err != nil {
		return destroyed, fmt.Errorf("deleting secret %q: %w", name, err)
	}
	return destroyed, nil
}

// keyScanPage is how many data keys one page of DeleteIn's scan reads.
const keyScanPage = 500

// DeleteIn deletes every version of the secret name within tx, a
// transaction-bound store, and destroys the data keys they were sealed
// under, so that neither the store nor any backup of it can open them
// again; it returns the ids of the keys destroyed, for the audit record
// the caller writes in the same transaction (audit.Do). After the commit
// the caller passes them to Evict.
//
// The keys are the latest version's and every key the keyring made for
// the name (data key ref "secret:NAME"), which covers the older versions
// and values sealed by a Set that then lost a race. Finding them reads the
// whole data-key table once, inside the transaction: the store keeps no
// index of a secret's versions, and deleting a secret is rare.
//
// Errors: ErrInvalidName, or store.ErrNotFound (wrapped) if there is no
// such secret.
func (s *Service) DeleteIn(ctx context.Context, tx store.Store, name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	latest, err := tx.GetSecret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("deleting secret %q: %w", name, err)
	}
	candidates := []string{latest.DataKeyID}
	ref := "secret:" + name
	after := ""
	for {
		page, err := tx.ListDataKeys(ctx, after, keyScanPage)
		if err != nil {
			return nil, fmt.Errorf("deleting secret %q: finding its data keys: %w", name, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		for _, k := range page {
			if k.Purpose == PurposeSecret && k.Ref == ref && k.ID != latest.DataKeyID {
				candidates = append(candidates, k.ID)
			}
		}
	}
	if err := tx.DeleteSecret(ctx, name); err != nil {
		return nil, fmt.Errorf("deleting secret %q: %w", name, err)
	}
	var destroyed []string
	for _, id := range candidates {
		ok, err := s.destroy(ctx, tx, id)
		if err != nil {
			return nil, fmt.Errorf("deleting secret %q: %w", name, err)
		}
		if ok {
			destroyed = append(destroyed, id)
		}
	}
	return destroyed, nil
}

// destroy destroys data key id within tx, through the Sealer when it is a
// Shredder.
func (s *Service) destroy(ctx context.Context, tx store.Store, id string) (bool, error) {
	if sh, ok := s.sealer.(Shredder); ok {
		return sh.DestroyDataKey(ctx, tx, id)
	}
	err := tx.DeleteDataKey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("destroying data key %q: %w", id, err)
	}
	return true, nil
}

// Evict drops the data keys DeleteIn destroyed from the Sealer's cache
// once the transaction has committed: a Resolve racing the deletion may
// have cached one before the commit. It does nothing for a Sealer that is
// not a Shredder.
func (s *Service) Evict(ctx context.Context, ids []string) error {
	sh, ok := s.sealer.(Shredder)
	if !ok {
		return nil
	}
	for _, id := range ids {
		if _, err := sh.DestroyDataKey(ctx, nil, id); err != nil {
			return err
		}
	}
	return nil
}

// Resolve returns the latest value of the secret name, after registering it
// with the Service's Redactor: by the time the caller holds the value, no
// log line or redacted output can show it. Call it only where the value is
// used, at the last moment (the worker, while executing the task).
//
// Errors: ErrInvalidName, store.ErrNotFound (wrapped) for an unknown name,
// or the keyring's error if the sealed value fails to open (tampered with,
// moved to another name or version, or its key destroyed).
func (s *Service) Resolve(ctx context.Context, name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	sec, err := s.store.GetSecret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("resolving secret %q: %w", name, err)
	}
	// The AAD uses the name asked for, not the name the store reports: a
	// store serving another secret's whole row must not be believed.
	value, err := s.sealer.Open(ctx, sec.DataKeyID, sec.Sealed, sealAAD(name, sec.Version))
	if err != nil {
		return nil, fmt.Errorf("opening secret %q version %d: %w", name, sec.Version, err)
	}
	s.redactor.Add(string(value))
	return value, nil
}

// Resolver returns Resolve bound to ctx, in the shape Expand takes.
func (s *Service) Resolver(ctx context.Context) func(name string) ([]byte, error) {
	return func(name string) ([]byte, error) { return s.Resolve(ctx, name) }
}
