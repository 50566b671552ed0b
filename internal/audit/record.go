package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// HashSize is the size of an event hash (SHA-256).
const HashSize = sha256.Size

// genesis is the previous hash of the first event: 32 zero bytes.
var genesis = make([]byte, HashSize)

// ChainHash is SHA-256(prev ‖ canonical): the hash of an event whose
// canonical encoding is canonical, following an event hashed prev.
func ChainHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// Record appends ev to the audit log through st. Pass the transaction-bound
// store of the action being audited, so that both commit or neither does;
// given the store itself, Record runs its own transaction.
//
// The tail is read inside the transaction, and the store refuses a sequence
// number that is not the next one, so concurrent writers keep the chain
// linear. A zero ev.Time is set to now. Errors wrap ErrInvalidEvent for an
// event that cannot be recorded.
func Record(ctx context.Context, st store.Store, ev Event) error {
	_, err := record(ctx, st, ev)
	return err
}

func record(ctx context.Context, st store.Store, ev Event) (Entry, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	canon, err := Canonical(ev)
	if err != nil {
		return Entry{}, fmt.Errorf("recording audit event %s: %w", ev.Action, err)
	}
	var e Entry
	err = st.InTx(ctx, func(tx store.Store) error {
		prev, seq := genesis, int64(1)
		last, err := tx.LastAudit(ctx)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			prev, seq = last.Hash, last.Seq+1
		}
		hash := ChainHash(prev, canon)
		e = Entry{Event: ev, Seq: seq, PrevHash: prev, Hash: hash}
		return tx.AppendAudit(ctx, store.AuditRecord{
			Seq: seq, Time: ev.Time, Actor: ev.Actor, Action: ev.Action, Resource: ev.Resource,
			Outcome: string(ev.Outcome), Event: canon, PrevHash: prev, Hash: hash,
		})
	})
	if err != nil {
		return Entry{}, fmt.Errorf("recording audit event %s: %w", ev.Action, err)
	}
	return e, nil
}

// Do runs action and records ev in one transaction: ev is recorded with
// outcome success if action returns nil, and if the record cannot be
// written the transaction rolls back, so the action does not happen.
//
// If action fails, its transaction rolls back and ev is recorded with
// outcome failure and the error as reason, in a transaction of its own
// (nested in the caller's when st is transaction-bound, so a caller that
// then rolls back loses it too). Do returns action's error, joined with
// the recording error if that failed as well.
//
// Do must not be given an action that writes through another store than
// tx (for instance the keyring, which writes its data keys through the
// store it was built on): on SQLite that write would wait for the
// transaction Do holds.
func Do(ctx context.Context, st store.Store, ev Event, action func(tx store.Store) error) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	// Validate first: an event that could never be recorded must stop
	// the action before it starts, not after.
	ev.Outcome = OutcomeSuccess
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("recording audit event %s: %w", ev.Action, err)
	}
	var actionErr error
	err := st.InTx(ctx, func(tx store.Store) error {
		if actionErr = action(tx); actionErr != nil {
			return actionErr
		}
		return Record(ctx, tx, ev)
	})
	if err == nil {
		return nil
	}
	if actionErr == nil {
		// The action succeeded but its record could not be written (or
		// the commit failed): nothing happened.
		return err
	}
	ev.Outcome = OutcomeFailure
	ev.Reason = actionErr.Error()
	if rerr := Record(ctx, st, ev); rerr != nil {
		return errors.Join(actionErr, rerr)
	}
	return actionErr
}

// Hex is the lowercase hexadecimal form of a hash, as exports and reports
// show it.
func Hex(b []byte) string { return hex.EncodeToString(b) }
