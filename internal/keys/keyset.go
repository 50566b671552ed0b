package keys

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// keysetKEK is a KEK held as a Tink AEAD keyset in memory. The keyset file
// source adds persistence and rotation on top; the environment source is
// one of these, read-only.
type keysetKEK struct {
	source string
	mu     sync.RWMutex
	h      *keyset.Handle
	a      tink.AEAD
}

func newKeysetKEK(source string, h *keyset.Handle) (*keysetKEK, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("%s: not an AEAD keyset: %w", source, err)
	}
	return &keysetKEK{source: source, h: h, a: a}, nil
}

// parseJSONKeyset reads a cleartext JSON keyset. Cleartext is the point of
// the file and environment sources; see docs/keys.md for the trade-off.
func parseJSONKeyset(source string, b []byte) (*keyset.Handle, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: reading JSON keyset: %w", source, err)
	}
	return h, nil
}

func marshalJSONKeyset(h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, fmt.Errorf("writing JSON keyset: %w", err)
	}
	return buf.Bytes(), nil
}

// newKEKKeyset is a fresh keyset of one AES256-GCM key.
func newKEKKeyset() (*keyset.Handle, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generating KEK keyset: %w", err)
	}
	return h, nil
}

func (k *keysetKEK) AEAD() tink.AEAD {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.a
}

func (k *keysetKEK) Source() string { return k.source }

func (k *keysetKEK) Info() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return keysetInfo(k.h)
}

func (k *keysetKEK) handle() *keyset.Handle {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.h
}

// swap installs a new keyset (after it was persisted).
func (k *keysetKEK) swap(h *keyset.Handle) error {
	a, err := aead.New(h)
	if err != nil {
		return fmt.Errorf("%s: %w", k.source, err)
	}
	k.mu.Lock()
	k.h, k.a = h, a
	k.mu.Unlock()
	return nil
}

func keysetInfo(h *keyset.Handle) []KeyInfo {
	ki := h.KeysetInfo()
	out := make([]KeyInfo, 0, len(ki.GetKeyInfo()))
	for _, k := range ki.GetKeyInfo() {
		st := StatusDisabled
		switch {
		case k.GetKeyId() == ki.GetPrimaryKeyId():
			st = StatusPrimary
		case k.GetStatus() == tinkpb.KeyStatusType_ENABLED:
			st = StatusEnabled
		}
		out = append(out, KeyInfo{ID: k.GetKeyId(), Status: st})
	}
	return out
}
