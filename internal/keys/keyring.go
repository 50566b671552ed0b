package keys

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/daead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sluicehq/sluice/internal/store"
)

// Data-key purposes, as recorded in store.DataKey.Purpose.
const (
	PurposeArtifact = store.PurposeArtifact
	PurposeLog      = store.PurposeLog
	PurposeSecret   = store.PurposeSecret
	PurposeFile     = store.PurposeFile
	// PurposeSigning seals the audit log's checkpoint signing keyset.
	PurposeSigning = store.PurposeSigning
	// PurposePRF keys pseudonymise values (HMAC-SHA256 PRF); see NamedKey.
	PurposePRF = store.PurposePRF
	// PurposeDAEAD keys tokenise values reversibly (AES-SIV); see
	// NamedKey and SubjectKey.
	PurposeDAEAD = store.PurposeDAEAD
)

// DefaultCacheSize is how many unwrapped data keys a Keyring keeps: enough
// for the artifacts and logs of many concurrent tasks, small enough that the
// key material held in memory stays bounded.
const DefaultCacheSize = 1024

// rewrapPage is how many data keys Rewrap re-wraps per store transaction.
const rewrapPage = 500

// Options tune a Keyring. The zero value is the default.
type Options struct {
	// CacheSize bounds the unwrapped data keys kept in memory; 0 means
	// DefaultCacheSize.
	CacheSize int
	// Now is the clock for CreatedAt and RewrappedAt; nil means time.Now.
	Now func() time.Time
}

// Keyring creates, wraps, unwraps and re-wraps data keys, and encrypts with
// them. It is safe for concurrent use.
type Keyring struct {
	st  store.Store
	kek KEK
	now func() time.Time
	// mu orders wrapping (read side) against rotation and retirement
	// (write side), so a data key is never wrapped by a key being retired
	// and the primary id recorded is the key that wrapped it.
	mu    sync.RWMutex
	cache *dekCache
}

// New returns a keyring over the data keys in st, wrapped by kek.
func New(st store.Store, kek KEK, opts Options) *Keyring {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Keyring{st: st, kek: kek, now: opts.Now, cache: newDEKCache(opts.CacheSize)}
}

// KEK returns the keyring's key-encryption key source.
func (kr *Keyring) KEK() KEK { return kr.kek }

// DataKey is an unwrapped data key: what it protects and the Tink primitive
// that encrypts with it. Artifact and log keys are streaming AEAD keys,
// secret keys plain AEAD keys.
type DataKey struct {
	ID       string
	Purpose  string
	Ref      string
	KEKKeyID uint32
	h        *keyset.Handle
	stream   tink.StreamingAEAD // artifact, log
	aead     tink.AEAD          // secret
	prf      *prf.Set           // prf
	hmacKey  []byte             // prf: its key, for DataKey.HMAC
	daead    tink.DeterministicAEAD
}

// templateFor is the DEK kind per purpose.
//
// Artifacts use AES256-GCM-HKDF with 1 MB segments: artifacts are large and
// read start to end, and a large segment keeps the per-segment cost (a tag
// and a nonce per segment, one AEAD call each) negligible; the price is a
// 1 MB buffer per open stream. Logs use 4 KB segments: a log is written
// in small pieces while a task runs, and a task killed mid-way leaves a log
// readable up to its last complete 4 KB segment instead of its last
// megabyte. Secrets are small values sealed at once: AES256-GCM.
func templateFor(purpose string) (*tinkpb.KeyTemplate, error) {
	switch purpose {
	case PurposeArtifact, PurposeFile:
		return streamingaead.AES256GCMHKDF1MBKeyTemplate(), nil
	case PurposeLog:
		return streamingaead.AES256GCMHKDF4KBKeyTemplate(), nil
	case PurposeSecret, PurposeSigning:
		return aead.AES256GCMKeyTemplate(), nil
	case PurposePRF:
		return prf.HMACSHA256PRFKeyTemplate(), nil
	case PurposeDAEAD:
		return daead.AESSIVKeyTemplate(), nil
	}
	return nil, fmt.Errorf("unknown data key purpose %q: want %q, %q, %q, %q or %q", purpose, PurposeArtifact, PurposeLog, PurposeFile, PurposeSecret, PurposeSigning)
}

func newDataKey(id, purpose, ref string, kekID uint32, h *keyset.Handle) (*DataKey, error) {
	k := &DataKey{ID: id, Purpose: purpose, Ref: ref, KEKKeyID: kekID, h: h}
	var err error
	switch purpose {
	case PurposeArtifact, PurposeLog, PurposeFile:
		k.stream, err = streamingaead.New(h)
	case PurposeSecret, PurposeSigning:
		k.aead, err = aead.New(h)
	case PurposePRF:
		if k.prf, err = prf.NewPRFSet(h); err == nil {
			k.hmacKey, err = hmacKeyOf(h)
		}
	case PurposeDAEAD:
		k.daead, err = daead.New(h)
	default:
		err = fmt.Errorf("unknown purpose %q", purpose)
	}
	if err != nil {
		return nil, fmt.Errorf("data key %q: %w", id, err)
	}
	return k, nil
}

// wrapAAD binds a wrapped data key to its identity: a wrapped key moved to
// another row, purpose or ref does not unwrap. Each field is length-prefixed
// so no two identities encode alike.
func wrapAAD(id, purpose, ref string) []byte {
	b := []byte("sluice data key v1")
	for _, s := range []string{id, purpose, ref} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating data key id: %w", err)
	}
	return "dk_" + hex.EncodeToString(b[:]), nil
}

// wrap encrypts h with the KEK primary. The caller holds kr.mu (read).
func (kr *Keyring) wrap(h *keyset.Handle, id, purpose, ref string) ([]byte, uint32, error) {
	primary, ok := primaryOf(kr.kek.Info())
	if !ok {
		return nil, 0, fmt.Errorf("KEK from %s has no primary key", kr.kek.Source())
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kr.kek.AEAD(), wrapAAD(id, purpose, ref)); err != nil {
		return nil, 0, fmt.Errorf("wrapping data key %q: %w", id, err)
	}
	return buf.Bytes(), primary, nil
}

// unwrap decrypts a stored data key with whichever KEK key wrapped it.
func (kr *Keyring) unwrap(k store.DataKey) (*DataKey, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(k.Wrapped)), kr.kek.AEAD(),
		wrapAAD(k.ID, k.Purpose, k.Ref))
	if err != nil {
		held := slices.ContainsFunc(kr.kek.Info(), func(i KeyInfo) bool { return i.ID == k.KEKKeyID })
		if !held {
			return nil, fmt.Errorf("data key %q: wrapped by KEK key %d, which the KEK from %s does not hold (retired, or another keyset): %w",
				k.ID, k.KEKKeyID, kr.kek.Source(), ErrKeyUnavailable)
		}
		return nil, fmt.Errorf("data key %q: %w: %w", k.ID, ErrKeyUnavailable, err)
	}
	return newDataKey(k.ID, k.Purpose, k.Ref, k.KEKKeyID, h)
}

// NewDataKey generates a data key for purpose (PurposeArtifact, PurposeLog
// or PurposeSecret) protecting ref, wraps it with the KEK primary and
// stores it. The key is cached, so the writer that asked for it uses it
// without an unwrap.
func (kr *Keyring) NewDataKey(ctx context.Context, purpose, ref string) (*DataKey, error) {
	tmpl, err := templateFor(purpose)
	if err != nil {
		return nil, fmt.Errorf("creating data key: %w", err)
	}
	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("creating data key: %w", err)
	}
	h, err := keyset.NewHandle(tmpl)
	if err != nil {
		return nil, fmt.Errorf("creating data key: generating: %w", err)
	}
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	wrapped, kekID, err := kr.wrap(h, id, purpose, ref)
	if err != nil {
		return nil, fmt.Errorf("creating data key: %w", err)
	}
	if err := kr.st.PutDataKey(ctx, store.DataKey{ID: id, Purpose: purpose, Ref: ref, KEKKeyID: kekID,
		Wrapped: wrapped, CreatedAt: kr.now()}); err != nil {
		return nil, fmt.Errorf("creating data key: %w", err)
	}
	k, err := newDataKey(id, purpose, ref, kekID, h)
	if err != nil {
		return nil, fmt.Errorf("creating data key: %w", err)
	}
	kr.cache.put(k)
	return k, nil
}

// DataKey returns the unwrapped data key id, from the cache or by loading
// and unwrapping it. Errors wrap store.ErrNotFound for an unknown id and
// ErrKeyUnavailable when the KEK cannot unwrap it.
func (kr *Keyring) DataKey(ctx context.Context, id string) (*DataKey, error) {
	if k, ok := kr.cache.get(id); ok {
		return k, nil
	}
	sk, err := kr.st.GetDataKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading data key: %w", err)
	}
	k, err := kr.unwrap(sk)
	if err != nil {
		return nil, fmt.Errorf("loading data key: %w", err)
	}
	kr.cache.put(k)
	return k, nil
}

// sealAAD binds a sealed value to its data key as well as the caller's
// associated data.
func sealAAD(dataKeyID string, aad []byte) []byte {
	b := []byte("sluice sealed v1")
	b = binary.AppendUvarint(b, uint64(len(dataKeyID)))
	b = append(b, dataKeyID...)
	return append(b, aad...)
}

// Seal encrypts a small value (a secret) under a new data key of purpose
// for ref, with aad as associated data (the record's identity, e.g. the
// secret's name and version): Open must be given the same aad.
func (kr *Keyring) Seal(ctx context.Context, purpose, ref string, plaintext, aad []byte) (ciphertext []byte, dataKeyID string, err error) {
	if purpose != PurposeSecret && purpose != PurposeSigning {
		return nil, "", fmt.Errorf("sealing: purpose %q: Seal takes %q or %q keys; streams use EncryptWriter", purpose, PurposeSecret, PurposeSigning)
	}
	k, err := kr.NewDataKey(ctx, purpose, ref)
	if err != nil {
		return nil, "", fmt.Errorf("sealing: %w", err)
	}
	ct, err := k.aead.Encrypt(plaintext, sealAAD(k.ID, aad))
	if err != nil {
		return nil, "", fmt.Errorf("sealing with data key %q: %w", k.ID, err)
	}
	return ct, k.ID, nil
}

// Open decrypts what Seal returned. A wrong aad, or an altered or
// substituted ciphertext, is an error wrapping ErrIntegrity.
func (kr *Keyring) Open(ctx context.Context, dataKeyID string, ciphertext, aad []byte) ([]byte, error) {
	k, err := kr.DataKey(ctx, dataKeyID)
	if err != nil {
		return nil, fmt.Errorf("opening sealed value: %w", err)
	}
	if k.aead == nil {
		return nil, fmt.Errorf("opening sealed value: data key %q is a %s key, not a %s key", k.ID, k.Purpose, PurposeSecret)
	}
	pt, err := k.aead.Decrypt(ciphertext, sealAAD(k.ID, aad))
	if err != nil {
		return nil, fmt.Errorf("opening sealed value with data key %q: %w: %w", k.ID, ErrIntegrity, err)
	}
	return pt, nil
}

// List describes the KEK keys with how many data keys each wraps. KEK key
// ids that stored data keys name but the keyset lacks are listed with
// StatusMissing.
func (kr *Keyring) List(ctx context.Context) ([]KeyInfo, error) {
	kr.mu.RLock()
	infos := kr.kek.Info()
	kr.mu.RUnlock()
	counts, err := kr.st.CountDataKeysByKEK(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing KEK keys: %w", err)
	}
	for i := range infos {
		infos[i].DataKeys = counts[infos[i].ID]
		delete(counts, infos[i].ID)
	}
	for id, n := range counts {
		infos = append(infos, KeyInfo{ID: id, Status: StatusMissing, DataKeys: n})
	}
	slices.SortFunc(infos, func(a, b KeyInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return infos, nil
}

func (kr *Keyring) managed(what string) (ManagedKEK, error) {
	m, ok := kr.kek.(ManagedKEK)
	if !ok {
		return nil, fmt.Errorf("%s: the KEK comes from %s: %w; rotate the keyset (or KMS key) where it is managed, deploy it, restart sluice, then run rewrap",
			what, kr.kek.Source(), ErrReadOnlyKEK)
	}
	return m, nil
}

// Rotate adds a new primary KEK key. Data keys wrapped before stay
// readable (their KEK key stays in the set); new data keys use the new
// primary. Other processes sharing the keyset file pick it up when
// restarted. ErrReadOnlyKEK for a KEK sluice does not manage.
func (kr *Keyring) Rotate(ctx context.Context) (KeyInfo, error) {
	m, err := kr.managed("rotating KEK")
	if err != nil {
		return KeyInfo{}, err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	k, err := m.Rotate(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	return k, nil
}

// Rewrap re-wraps every data key not wrapped by the KEK primary, paging
// through the store by id. Ciphertexts are untouched: the data keys are the
// same keys, only their wrapping changes. Each update is a compare-and-set
// on the wrapping KEK key, so Rewrap is safe while runs create and read
// data keys, and concurrently with another Rewrap (a key re-wrapped by the
// other is skipped). progress, if not nil, is called after each page with
// the count so far. It returns how many data keys this call re-wrapped.
func (kr *Keyring) Rewrap(ctx context.Context, progress func(done int)) (int, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	primary, ok := primaryOf(kr.kek.Info())
	if !ok {
		return 0, fmt.Errorf("re-wrapping: KEK from %s has no primary key", kr.kek.Source())
	}
	type update struct {
		id      string
		from    uint32
		wrapped []byte
	}
	done, after := 0, ""
	for {
		page, err := kr.st.ListDataKeys(ctx, after, rewrapPage)
		if err != nil {
			return done, fmt.Errorf("re-wrapping: %w", err)
		}
		if len(page) == 0 {
			return done, nil
		}
		after = page[len(page)-1].ID
		var ups []update
		for _, sk := range page {
			if sk.KEKKeyID == primary {
				continue
			}
			k, err := kr.unwrap(sk)
			if err != nil {
				return done, fmt.Errorf("re-wrapping: %w", err)
			}
			wrapped, _, err := kr.wrap(k.h, sk.ID, sk.Purpose, sk.Ref)
			if err != nil {
				return done, fmt.Errorf("re-wrapping: %w", err)
			}
			ups = append(ups, update{id: sk.ID, from: sk.KEKKeyID, wrapped: wrapped})
		}
		if len(ups) > 0 {
			at, n := kr.now(), 0
			err := kr.st.InTx(ctx, func(tx store.Store) error {
				n = 0
				for _, u := range ups {
					err := tx.RewrapDataKey(ctx, u.id, u.from, primary, u.wrapped, at)
					switch {
					case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
						// Re-wrapped or deleted meanwhile: nothing to do.
					case err != nil:
						return err
					default:
						n++
					}
				}
				return nil
			})
			if err != nil {
				return done, fmt.Errorf("re-wrapping: %w", err)
			}
			done += n
		}
		if progress != nil {
			progress(done)
		}
	}
}

// Retire removes a KEK key from the keyset: ciphertexts whose data keys it
// wraps could no longer be read, so it refuses (ErrKeyInUse) while any
// stored data key refers to it, naming how many, and refuses the primary.
// Run it after Rewrap, once every process uses the rotated keyset.
// ErrReadOnlyKEK for a KEK sluice does not manage.
func (kr *Keyring) Retire(ctx context.Context, keyID uint32) error {
	m, err := kr.managed("retiring KEK key")
	if err != nil {
		return err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	infos := kr.kek.Info()
	i := slices.IndexFunc(infos, func(k KeyInfo) bool { return k.ID == keyID })
	if i < 0 {
		return fmt.Errorf("retiring KEK key %d: no such key in the KEK from %s", keyID, kr.kek.Source())
	}
	if infos[i].Status == StatusPrimary {
		return fmt.Errorf("retiring KEK key %d: it is the primary: %w; rotate first", keyID, ErrKeyInUse)
	}
	counts, err := kr.st.CountDataKeysByKEK(ctx)
	if err != nil {
		return fmt.Errorf("retiring KEK key %d: %w", keyID, err)
	}
	if n := counts[keyID]; n > 0 {
		return fmt.Errorf("retiring KEK key %d: it still wraps %d data keys: %w; run rewrap first", keyID, n, ErrKeyInUse)
	}
	if err := m.Remove(ctx, keyID); err != nil {
		return fmt.Errorf("retiring KEK key %d: %w", keyID, err)
	}
	return nil
}

// dekCache is a bounded LRU of unwrapped data keys.
type dekCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *DataKey, most recent first
	byID  map[string]*list.Element
}

func newDEKCache(max int) *dekCache {
	return &dekCache{max: max, order: list.New(), byID: make(map[string]*list.Element)}
}

func (c *dekCache) get(id string) (*DataKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*DataKey), true
}

func (c *dekCache) put(k *DataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[k.ID]; ok {
		e.Value = k
		c.order.MoveToFront(e)
		return
	}
	c.byID[k.ID] = c.order.PushFront(k)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*DataKey).ID)
	}
}

// remove forgets a data key (it was destroyed).
func (c *dekCache) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.Remove(e)
		delete(c.byID, id)
	}
}

func (c *dekCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
