package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// DefaultKeyName is the name of the persistent keys the hmac and tokenize
// operators use: one PRF key and one deterministic-AEAD key per store.
const DefaultKeyName = "pii"

// Token prefixes. A token names the key that can read it: "tok_" tokens are
// under the shared tokenize key; "tok_s_<subject hash>_" tokens are under
// the key of one data subject, so erasing the subject destroys exactly
// those.
const (
	TokenPrefix        = "tok_"
	SubjectTokenPrefix = "tok_s_"
)

// tokenAAD binds every token ciphertext to its use; it is the same for
// every column so that equal values give equal tokens whatever the column
// is called (joins across differently named columns work).
var tokenAAD = []byte("sluice token v1")

// Sentinel errors of Detokenize.
var (
	// ErrBadToken: the string is not a sluice token, or not one any key
	// of this store produced.
	ErrBadToken = errors.New("not a valid token")
	// ErrErased: the token belongs to a data subject whose key was
	// destroyed (erased), or never existed in this store.
	ErrErased = errors.New("the token's subject key does not exist (erased)")
)

// Keyring is what the privacy operators need from the keyring;
// *keys.Keyring implements it.
type Keyring interface {
	NamedKey(ctx context.Context, purpose, name string) (*keys.DataKey, error)
	SubjectKey(ctx context.Context, subject string) (*keys.DataKey, error)
	LookupSubjectKey(ctx context.Context, subject string) (*keys.DataKey, error)
}

var _ Keyring = (*keys.Keyring)(nil)

// Tokenizer computes pseudonyms and tokens with the store's persistent
// privacy keys. It is safe for concurrent use.
type Tokenizer struct {
	kr     Keyring
	prf    *keys.DataKey
	shared *keys.DataKey
	// macs are keyed HMAC states for Pseudonym, one per goroutine at a
	// time: reusing the keyed state is what makes a pseudonym cheap.
	macs sync.Pool
}

// NewTokenizer loads (creating on first use) the named keys DefaultKeyName.
func NewTokenizer(ctx context.Context, kr Keyring) (*Tokenizer, error) {
	p, err := kr.NamedKey(ctx, store.PurposePRF, DefaultKeyName)
	if err != nil {
		return nil, fmt.Errorf("loading pseudonym key: %w", err)
	}
	s, err := kr.NamedKey(ctx, store.PurposeDAEAD, DefaultKeyName)
	if err != nil {
		return nil, fmt.Errorf("loading token key: %w", err)
	}
	return &Tokenizer{kr: kr, prf: p, shared: s}, nil
}

// Pseudonym is the hmac operator: the hex HMAC-SHA256 of value under the
// pseudonym key. Stable across runs and datasets, not reversible, and not
// computable without the key (so a dictionary of likely values does not
// undo it, as it would an unkeyed hash).
func (t *Tokenizer) Pseudonym(value string) (string, error) {
	st, ok := t.macs.Get().(*macState)
	if !ok {
		var err error
		if st, err = t.newMAC(); err != nil {
			return "", err
		}
	}
	out := string(st.pseudonym(value))
	t.macs.Put(st)
	return out, nil
}

// newMAC returns a new keyed state for pseudonyms.
func (t *Tokenizer) newMAC() (*macState, error) {
	h, err := t.prf.HMAC()
	if err != nil {
		return nil, fmt.Errorf("computing pseudonym: %w", err)
	}
	return &macState{h: h}, nil
}

// macState is one keyed HMAC state with the buffers a pseudonym needs, so
// that computing one allocates nothing but the returned string: the
// message is copied into buf (a hash.Hash takes bytes, and converting the
// string would allocate on every call), and the sum and its hex form have
// room of their own.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// pseudonymPrefix separates pseudonyms from every other use of the PRF
// key (SubjectHash prefixes "subject\x00").
const pseudonymPrefix = "hmac\x00"

// pseudonym returns the hex HMAC of value in st.hex; valid until the next
// call.
func (st *macState) pseudonym(value string) []byte {
	st.buf = append(append(st.buf[:0], pseudonymPrefix...), value...)
	st.h.Reset()
	st.h.Write(st.buf)
	hex.Encode(st.hex[:], st.h.Sum(st.sum[:0]))
	if cap(st.buf) > 64<<10 {
		st.buf = nil // one huge value must not stay pinned in the pool
	}
	return st.hex[:]
}

// SubjectHash is the keyed hash of a subject id: the name of the
// subject's key and the subject in erasure evidence, so that neither the
// store nor a token holds the raw id.
func (t *Tokenizer) SubjectHash(subject string) (string, error) {
	out, err := t.prf.PRF([]byte("subject\x00" + subject))
	if err != nil {
		return "", fmt.Errorf("hashing subject: %w", err)
	}
	return hex.EncodeToString(out), nil
}

// Token is the tokenize operator: a deterministic encryption of value
// under the shared token key, "tok_<base64url>". Equal values give equal
// tokens, so tokenised columns still join and group.
func (t *Tokenizer) Token(value string) (string, error) {
	ct, err := t.shared.EncryptDeterministically([]byte(value), tokenAAD)
	if err != nil {
		return "", fmt.Errorf("tokenizing: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(ct), nil
}

// SubjectToken tokenises value under the key of subject (created on first
// use): "tok_s_<subject hash>_<base64url>".
func (t *Tokenizer) SubjectToken(ctx context.Context, subject, value string) (string, error) {
	h, err := t.SubjectHash(subject)
	if err != nil {
		return "", err
	}
	k, err := t.kr.SubjectKey(ctx, h)
	if err != nil {
		return "", fmt.Errorf("tokenizing: %w", err)
	}
	ct, err := k.EncryptDeterministically([]byte(value), tokenAAD)
	if err != nil {
		return "", fmt.Errorf("tokenizing: %w", err)
	}
	return SubjectTokenPrefix + h + "_" + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Detokenize returns the value a token stands for. Errors wrap ErrBadToken
// for a malformed or foreign token and ErrErased for a token whose subject
// was erased. It never creates a key.
func (t *Tokenizer) Detokenize(ctx context.Context, token string) (string, error) {
	var (
		k    *keys.DataKey
		body string
	)
	switch {
	case strings.HasPrefix(token, SubjectTokenPrefix):
		rest := token[len(SubjectTokenPrefix):]
		h, b, ok := strings.Cut(rest, "_")
		if !ok || len(h) != 64 {
			return "", fmt.Errorf("detokenizing %q: %w", short(token), ErrBadToken)
		}
		if _, err := hex.DecodeString(h); err != nil {
			return "", fmt.Errorf("detokenizing %q: %w", short(token), ErrBadToken)
		}
		sk, err := t.kr.LookupSubjectKey(ctx, h)
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("detokenizing %q: %w", short(token), ErrErased)
		}
		if err != nil {
			return "", fmt.Errorf("detokenizing %q: %w", short(token), err)
		}
		k, body = sk, b
	case strings.HasPrefix(token, TokenPrefix):
		k, body = t.shared, token[len(TokenPrefix):]
	default:
		return "", fmt.Errorf("detokenizing %q: no %q prefix: %w", short(token), TokenPrefix, ErrBadToken)
	}
	ct, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", fmt.Errorf("detokenizing %q: %w", short(token), ErrBadToken)
	}
	pt, err := k.DecryptDeterministically(ct, tokenAAD)
	if err != nil {
		return "", fmt.Errorf("detokenizing %q: %w: %w", short(token), ErrBadToken, err)
	}
	return string(pt), nil
}

// short shortens a token for an error message.
func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
