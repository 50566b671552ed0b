package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// EraseKeyring is what erasure needs from the keyring; *keys.Keyring
// implements it.
type EraseKeyring interface {
	Keyring
	DestroySubjectKey(ctx context.Context, subject string) (bool, error)
	KeyDestroyer
	Wrapper(ctx context.Context, purpose, ref string, aad []byte) func(io.Writer) (io.WriteCloser, error)
	Unwrapper(ctx context.Context, aad []byte) func(io.Reader) (io.Reader, error)
}

// KeyDestroyer destroys data keys (crypto-shredding); *keys.Keyring
// implements it. st is the transaction the destruction joins, or nil for
// the keyring's own store (see keys.Keyring.DestroyDataKey).
type KeyDestroyer interface {
	DestroyDataKey(ctx context.Context, st store.KeyStore, id string) (bool, error)
}

// Eraser carries out erasure requests (the right to be forgotten) over
// the datasets sluice manages.
type Eraser struct {
	Store store.Store
	Keys  EraseKeyring
	// StateDir is the state directory artifact paths are relative to.
	StateDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// EraseRequest names the data subject to erase.
type EraseRequest struct {
	// Subject is the subject's id, as the tokenize subject column and the
	// Columns hold it.
	Subject string
	// Columns hold the subject id in datasets (e.g. customer_id): a row
	// whose column holds the id, its pseudonym (hmac) or its token
	// (tokenize) is removed. Rows holding a per-subject token of the
	// subject are removed whatever the columns.
	Columns []string
	// Actor is who asked, for the evidence.
	Actor string
}

// artifactPage is how many artifacts erasure reads from the store at once.
const artifactPage = 200

// Erase destroys the subject's key (every per-subject token of the
// subject, wherever it is copied, becomes unreadable), rewrites every
// output and quarantine dataset holding the subject's rows without them,
// each under a new data key, destroys the data key of each replaced file
// (so a backup of the old file can never be decrypted again), and records
// the evidence. The evidence's KeysDestroyed counts every key destroyed:
// the subject's and the replaced files'. Running it again is harmless:
// nothing is left to find.
func (e *Eraser) Erase(ctx context.Context, req EraseRequest) (store.Erasure, error) {
	if strings.TrimSpace(req.Subject) == "" {
		return store.Erasure{}, errors.New("erasing: empty subject id")
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	tok, err := NewTokenizer(ctx, e.Keys)
	if err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	hash, err := tok.SubjectHash(req.Subject)
	if err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	m, err := newMatcher(tok, req, hash)
	if err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	destroyed, err := e.Keys.DestroySubjectKey(ctx, hash)
	if err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	ev := store.Erasure{SubjectHash: hash, Actor: req.Actor}
	if destroyed {
		ev.KeysDestroyed = 1
	}
	after := ""
	for {
		page, err := e.Store.ListAllArtifacts(ctx, after, artifactPage)
		if err != nil {
			return store.Erasure{}, fmt.Errorf("erasing: %w", err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		for _, a := range page {
			if (a.Kind != "output" && a.Kind != "quarantine") || a.Format != artifact.Format {
				continue
			}
			n, shredded, err := e.rewrite(ctx, a, m)
			if err != nil {
				return store.Erasure{}, fmt.Errorf("erasing: artifact %s: %w", a.ID, err)
			}
			if n > 0 {
				ev.Artifacts = append(ev.Artifacts, a.ID)
				ev.Rows += n
			}
			if shredded {
				ev.KeysDestroyed++
			}
		}
	}
	id, err := newErasureID()
	if err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	ev.ID, ev.At = id, now().UTC()
	if err := e.Store.RecordErasure(ctx, ev); err != nil {
		return store.Erasure{}, fmt.Errorf("erasing: %w", err)
	}
	return ev, nil
}

func newErasureID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating erasure id: %w", err)
	}
	return "er_" + hex.EncodeToString(b[:]), nil
}

// matcher recognises the subject's rows.
type matcher struct {
	columns      []string
	values       map[string]bool // the id, its pseudonym, its token
	tokenPrefix  string          // per-subject tokens
	rawSubstring string          // the id, for quarantined raw lines that are not JSON
}

func newMatcher(tok *Tokenizer, req EraseRequest, hash string) (*matcher, error) {
	p, err := tok.Pseudonym(req.Subject)
	if err != nil {
		return nil, err
	}
	t, err := tok.Token(req.Subject)
	if err != nil {
		return nil, err
	}
	return &matcher{
		columns:      req.Columns,
		values:       map[string]bool{req.Subject: true, p: true, t: true},
		tokenPrefix:  SubjectTokenPrefix + hash + "_",
		rawSubstring: req.Subject,
	}, nil
}

// row reports whether row r of b is the subject's.
func (m *matcher) row(b *data.Batch, r int, quarantine bool) bool {
	for i, f := range b.Schema.Fields {
		c := &b.Cols[i]
		if c.IsNull(r) {
			continue
		}
		v := ValueString(c, r)
		if f.Type == data.String && strings.Contains(v, m.tokenPrefix) {
			return true
		}
		if slices.Contains(m.columns, f.Name) && m.values[v] {
			return true
		}
		if quarantine && f.Name == "raw" && m.raw(v) {
			return true
		}
	}
	return false
}

// raw matches a quarantined record: by column when it is a JSON object, by
// substring otherwise (a line the source could not parse; erring towards
// erasing it).
func (m *matcher) raw(v string) bool {
	var obj map[string]any
	if err := json.Unmarshal([]byte(v), &obj); err != nil {
		return m.rawSubstring != "" && strings.Contains(v, m.rawSubstring)
	}
	for _, c := range m.columns {
		if x, ok := obj[c]; ok && x != nil && m.values[fmt.Sprint(x)] {
			return true
		}
	}
	return false
}

// rewrite removes the subject's rows from one artifact: it reads the
// verified artifact, and if any row is the subject's, writes the others
// to a new file under a new data key, then, once that file is durable,
// points the store's record at it and destroys the old file's data key in
// one transaction, and removes the old file. It returns the rows removed
// and whether the old file's data key was destroyed.
//
// The order is what makes an interruption safe: until the transaction
// commits, the record names the old file and its key exists (a re-run
// finds the rows again); after it, the record names the new file and the
// old key is gone, so the old file, or any copy of it, is unreadable even
// if removing it fails.
func (e *Eraser) rewrite(ctx context.Context, a store.Artifact, m *matcher) (int64, bool, error) {
	open := func() (*artifact.Reader, error) {
		return artifact.Open(filepath.Join(e.StateDir, a.Path), a.SHA256, artifact.Options{
			Unwrap: e.Keys.Unwrapper(ctx, artifact.AAD(a.ID)), PlainSHA256: a.PlainSHA256,
		})
	}
	// First pass: count, so that untouched artifacts are not rewritten.
	src, err := open()
	if err != nil {
		return 0, false, err
	}
	quarantine := a.Kind == "quarantine"
	var hits int64
	err = eachBatch(ctx, src, func(b *data.Batch) error {
		for r := 0; r < b.Len; r++ {
			if m.row(b, r, quarantine) {
				hits++
			}
		}
		return nil
	})
	src.Close()
	if err != nil || hits == 0 {
		return 0, false, err
	}
	oldKey, err := fileKeyID(filepath.Join(e.StateDir, a.Path))
	if err != nil {
		return 0, false, err
	}

	src, err = open()
	if err != nil {
		return 0, false, err
	}
	defer src.Close()
	rel := erasedPath(a.Path, time.Now())
	w, err := artifact.Create(filepath.Join(e.StateDir, rel), src.Schema(), artifact.Options{
		Wrap: e.Keys.Wrapper(ctx, store.PurposeArtifact, a.ID, artifact.AAD(a.ID)),
	})
	if err != nil {
		return 0, false, fmt.Errorf("creating rewritten dataset: %w", err)
	}
	keep := data.NewBatch(src.Schema(), data.DefaultBatchSize)
	err = eachBatch(ctx, src, func(b *data.Batch) error {
		resetBatch(keep)
		for r := 0; r < b.Len; r++ {
			if !m.row(b, r, quarantine) {
				appendRow(keep, b, r)
			}
		}
		if keep.Len == 0 {
			return nil
		}
		return w.Write(ctx, keep)
	})
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		w.Abort()
		return 0, false, fmt.Errorf("rewriting: %w", err)
	}
	info := w.Info()
	a2 := a
	a2.Path, a2.Rows, a2.Bytes, a2.SHA256, a2.PlainSHA256, a2.Schema = rel, info.Rows, info.Bytes, info.SHA256, info.PlainSHA256, info.Schema
	// Commit synced the new file: it is durable before the old key goes.
	shredded := false
	err = e.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.ReplaceArtifact(ctx, a2); err != nil {
			return err
		}
		if oldKey == "" {
			return nil
		}
		var err error
		shredded, err = e.Keys.DestroyDataKey(ctx, tx, oldKey)
		return err
	})
	if err != nil {
		os.Remove(filepath.Join(e.StateDir, rel))
		return 0, false, err
	}
	if oldKey != "" {
		// Evicts a copy a concurrent reader cached before the commit.
		if _, err := e.Keys.DestroyDataKey(ctx, nil, oldKey); err != nil {
			return 0, false, err
		}
	}
	if err := os.Remove(filepath.Join(e.StateDir, a.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, false, fmt.Errorf("removing the old dataset file: %w", err)
	}
	return hits, shredded, nil
}

// fileKeyID is the id of the data key an artifact file is encrypted
// under, from its envelope header; "" for a file sluice did not encrypt.
func fileKeyID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading the data key id of %s: %w", path, err)
	}
	defer f.Close()
	id, err := keys.EnvelopeKeyID(f)
	switch {
	case errors.Is(err, keys.ErrNotEnvelope):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading the data key id of %s: %w", path, err)
	}
	return id, nil
}

// erasedPath is where the rewritten copy of an artifact goes, beside it.
func erasedPath(p string, now time.Time) string {
	base := strings.TrimSuffix(p, ".arrow")
	if i := strings.LastIndex(base, ".erased-"); i >= 0 {
		base = base[:i]
	}
	return fmt.Sprintf("%s.erased-%d.arrow", base, now.UnixNano())
}

func eachBatch(ctx context.Context, src data.Source, fn func(*data.Batch) error) error {
	for {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

func resetBatch(b *data.Batch) {
	for i := range b.Cols {
		reset(&b.Cols[i], b.Cols[i].Type, 0)
	}
	b.Len = 0
}

// appendRow copies row r of src to the end of dst (same schema).
func appendRow(dst, src *data.Batch, r int) {
	for i := range src.Cols {
		dst.Cols[i].AppendValue(&src.Cols[i], r)
	}
	dst.Len++
}
