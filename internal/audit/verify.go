package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// ProblemKind classifies what verification found.
type ProblemKind string

// Problem kinds.
const (
	// ProblemModified: the event's bytes do not hash to its stored hash.
	ProblemModified ProblemKind = "modified"
	// ProblemMalformed: the event's bytes are not a canonical event, or
	// the columns kept for filtering differ from the hashed event.
	ProblemMalformed ProblemKind = "malformed"
	// ProblemMissing: a sequence number is absent (an event deleted).
	ProblemMissing ProblemKind = "missing"
	// ProblemInserted: the event is not part of the chain: the next event
	// links to the one before it.
	ProblemInserted ProblemKind = "inserted"
	// ProblemBrokenLink: the event does not link to the event before it
	// (events deleted and renumbered, reordered, or replaced).
	ProblemBrokenLink ProblemKind = "broken_link"
	// ProblemCheckpointMismatch: the chain's hash at a signed checkpoint
	// differs from the signed hash: events up to it were rewritten.
	ProblemCheckpointMismatch ProblemKind = "checkpoint_mismatch"
	// ProblemTruncated: a signed checkpoint names an event past the end
	// of the log: the tail was cut.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemBadSignature: a checkpoint's signature does not verify.
	ProblemBadSignature ProblemKind = "bad_signature"
	// ProblemSigningKey: a signing key's public half was not sealed with
	// its private half by this keyring (substituted).
	ProblemSigningKey ProblemKind = "signing_key"
)

// Problem is one finding. Seq is the event (or checkpoint) concerned.
type Problem struct {
	Kind   ProblemKind `json:"kind"`
	Seq    int64       `json:"seq"`
	Detail string      `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("event %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// Report is the result of a verification.
type Report struct {
	// Events is how many events were checked; LastSeq and LastHash are
	// those of the last one (the head the chain vouches for).
	Events   int64  `json:"events"`
	LastSeq  int64  `json:"last_seq"`
	LastHash []byte `json:"-"`
	// Checkpoints is how many signed checkpoints were checked;
	// LastCheckpoint is the highest checkpointed seq (0 if none): events
	// after it could be cut without trace.
	Checkpoints    int   `json:"checkpoints"`
	LastCheckpoint int64 `json:"last_checkpoint"`
	// Problems lists what is wrong, first bad event first; empty when the
	// log verifies. The chain walk stops at the first break.
	Problems []Problem `json:"problems"`
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// FirstBad is the seq of the first bad event (or checkpoint), 0 if none.
func (r Report) FirstBad() int64 {
	if len(r.Problems) == 0 {
		return 0
	}
	return r.Problems[0].Seq
}

// verifyPage is how many events Verify reads per query.
const verifyPage = 5000

// Verify checks the whole audit log in st: every event hashes to its
// stored hash, links to the one before, has no gap in its sequence, is in
// canonical form with filter columns matching; every checkpoint's signature
// verifies with its stored public key and its hash matches the chain; no
// checkpoint names an event past the end. Problems are reported, not
// returned as errors; the error is for failing to read the store.
//
// Verify trusts the public keys in the store; Checkpointer.Verify also
// checks them against the keyring.
func Verify(ctx context.Context, st store.Store) (Report, error) {
	return verify(ctx, st, nil)
}

// Verify is the package's Verify plus a check that every signing key's
// public half was sealed together with its private half by this keyring, so
// a public key substituted in the store (to sign a rewritten log with a key
// of the attacker's) is found.
func (c *Checkpointer) Verify(ctx context.Context) (Report, error) {
	return verify(ctx, c.st, c.kr)
}

func verify(ctx context.Context, st store.Store, kr *keys.Keyring) (Report, error) {
	var rep Report
	cps, err := st.ListAuditCheckpoints(ctx)
	if err != nil {
		return rep, fmt.Errorf("verifying the audit log: %w", err)
	}
	sigProblems, err := verifyCheckpoints(ctx, st, kr, cps)
	if err != nil {
		return rep, fmt.Errorf("verifying the audit log: %w", err)
	}
	rep.Checkpoints = len(cps)
	bySeq := make(map[int64]store.AuditCheckpoint, len(cps))
	for _, c := range cps {
		bySeq[c.Seq] = c
		rep.LastCheckpoint = max(rep.LastCheckpoint, c.Seq)
	}

	chain, err := walk(ctx, st, bySeq, &rep)
	if err != nil {
		return rep, fmt.Errorf("verifying the audit log: %w", err)
	}
	if chain == nil && rep.LastCheckpoint > rep.LastSeq {
		chain = &Problem{Kind: ProblemTruncated, Seq: rep.LastSeq + 1, Detail: fmt.Sprintf(
			"the log ends at event %d but a signed checkpoint covers event %d", rep.LastSeq, rep.LastCheckpoint)}
	}
	if chain != nil {
		rep.Problems = append(rep.Problems, *chain)
	}
	rep.Problems = append(rep.Problems, sigProblems...)
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int { return int(a.Seq - b.Seq) })
	return rep, nil
}

// walk follows the chain from event 1 and returns its first break.
func walk(ctx context.Context, st store.Store, cps map[int64]store.AuditCheckpoint, rep *Report) (*Problem, error) {
	prev, prevPrev := genesis, []byte(nil)
	want := int64(1)
	for {
		page, err := st.ListAudit(ctx, store.AuditFilter{AfterSeq: want - 1, Limit: verifyPage})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if p := checkRecord(r, want, prev, prevPrev); p != nil {
				return p, nil
			}
			if c, ok := cps[r.Seq]; ok && !bytes.Equal(c.Hash, r.Hash) {
				return &Problem{Kind: ProblemCheckpointMismatch, Seq: r.Seq, Detail: fmt.Sprintf(
					"hash %s differs from the signed checkpoint's %s: events up to %d were rewritten", Hex(r.Hash), Hex(c.Hash), r.Seq)}, nil
			}
			prevPrev, prev = prev, r.Hash
			rep.Events++
			rep.LastSeq, rep.LastHash = r.Seq, r.Hash
			want++
		}
		if len(page) < verifyPage {
			return nil, nil
		}
	}
}

// checkRecord checks one record against the chain so far.
func checkRecord(r store.AuditRecord, want int64, prev, prevPrev []byte) *Problem {
	if r.Seq != want {
		return &Problem{Kind: ProblemMissing, Seq: want, Detail: fmt.Sprintf("event %d is missing (the next is %d)", want, r.Seq)}
	}
	if !bytes.Equal(r.PrevHash, prev) {
		if prevPrev != nil && bytes.Equal(r.PrevHash, prevPrev) {
			return &Problem{Kind: ProblemInserted, Seq: r.Seq - 1, Detail: fmt.Sprintf(
				"event %d links to event %d: event %d was inserted", r.Seq, r.Seq-2, r.Seq-1)}
		}
		return &Problem{Kind: ProblemBrokenLink, Seq: r.Seq, Detail: fmt.Sprintf(
			"its previous hash is not the hash of event %d: events were deleted, moved or replaced", r.Seq-1)}
	}
	if h := ChainHash(prev, r.Event); !bytes.Equal(h, r.Hash) {
		return &Problem{Kind: ProblemModified, Seq: r.Seq, Detail: "its content does not match its hash: it was modified"}
	}
	ev, err := ParseCanonical(r.Event)
	if err != nil {
		return &Problem{Kind: ProblemMalformed, Seq: r.Seq, Detail: err.Error()}
	}
	if ev.Actor != r.Actor || ev.Action != r.Action || ev.Resource != r.Resource || string(ev.Outcome) != r.Outcome ||
		ev.Time.UnixMicro() != r.Time.UnixMicro() {
		return &Problem{Kind: ProblemMalformed, Seq: r.Seq, Detail: "its filter columns differ from the hashed event: they were modified"}
	}
	return nil
}

// verifyCheckpoints checks every checkpoint's signature (and, with kr,
// every signing key's binding to its sealed private half).
func verifyCheckpoints(ctx context.Context, st store.Store, kr *keys.Keyring, cps []store.AuditCheckpoint) ([]Problem, error) {
	var problems []Problem
	verifiers := map[string]tink.Verifier{}
	badKey := map[string]string{}
	for _, c := range cps {
		v, ok := verifiers[c.KeyID]
		if !ok && badKey[c.KeyID] == "" {
			k, err := st.GetAuditSigningKey(ctx, c.KeyID)
			if errors.Is(err, store.ErrNotFound) {
				badKey[c.KeyID] = "its signing key " + c.KeyID + " does not exist"
			} else if err != nil {
				return nil, err
			} else if v, err = publicVerifier(k); err != nil {
				badKey[c.KeyID] = err.Error()
			} else if kr != nil {
				if _, err := kr.Open(ctx, k.DataKeyID, k.Sealed, signingKeyAAD(k.ID, k.PublicKeyset)); err != nil {
					problems = append(problems, Problem{Kind: ProblemSigningKey, Seq: c.Seq, Detail: fmt.Sprintf(
						"signing key %s: its public key does not belong to its sealed private key: %s", k.ID, err)})
				}
			}
			if v != nil {
				verifiers[c.KeyID] = v
			}
		}
		if why := badKey[c.KeyID]; why != "" {
			problems = append(problems, Problem{Kind: ProblemBadSignature, Seq: c.Seq, Detail: "checkpoint: " + why})
			continue
		}
		if err := v.Verify(c.Signature, CheckpointMessage(c.Seq, c.Hash, c.Time)); err != nil {
			problems = append(problems, Problem{Kind: ProblemBadSignature, Seq: c.Seq, Detail: "checkpoint signature does not verify"})
		}
	}
	return problems, nil
}
