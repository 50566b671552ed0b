package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Review flags.
const (
	FlagStale    = "stale"    // unused for longer than Config.StaleAfter
	FlagExpiring = "expiring" // expires within Config.ExpiringWithin
	FlagExpired  = "expired"  // past its expiry (grants nothing; revoke to tidy)
	FlagSoD      = "sod-conflict"
	// FlagNoMFA: a user holds a privileged role without MFA enrolled, so
	// every privileged action of theirs is denied; enrol or revoke.
	FlagNoMFA = "privileged-without-mfa"
)

// ReviewItem is one binding as an access review shows it.
type ReviewItem struct {
	Binding     store.Binding // LastUsedAt includes uses not yet flushed
	Permissions []Permission
	Privileged  bool
	Flags       []string
	// Conflicts names the segregation-of-duties rules the binding's
	// subject breaks with it.
	Conflicts []string
}

// Review lists every binding with who granted it and when, its last use and
// expiry, and its flags. It reads only; the caller checks the reviewer's
// permission (binding.revoke or audit.read) before showing it.
func (s *Service) Review(ctx context.Context) ([]ReviewItem, error) {
	items, err := s.review(ctx)
	if err != nil {
		return nil, fmt.Errorf("reviewing access: %w", err)
	}
	return items, nil
}

func (s *Service) review(ctx context.Context) ([]ReviewItem, error) {
	bs, err := s.cfg.Store.ListBindings(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	unflushed := make(map[string]time.Time)
	if idx := s.idx.Load(); idx != nil {
		for _, e := range idx.all {
			if u := e.lastUsed.Load(); u != 0 {
				unflushed[e.b.ID] = time.UnixMicro(u).UTC()
			}
		}
	}
	type subjectKey struct{ kind, name string }
	perms := make([]permSet, len(bs))
	held := make(map[subjectKey]permSet)
	for i, b := range bs {
		ps, err := s.rolePerms(ctx, s.cfg.Store, b.Role)
		if err != nil && !errors.Is(err, ErrUnknownRole) {
			return nil, err
		}
		perms[i] = ps
		if b.ExpiresAt.IsZero() || b.ExpiresAt.After(now) {
			held[subjectKey{b.SubjectKind, b.Subject}] |= ps
		}
	}
	// A user's holdings include their groups', when membership is known.
	userHeld := make(map[string]permSet)
	for k, ps := range held {
		if k.kind != store.SubjectUser {
			continue
		}
		all := ps
		if s.cfg.Membership != nil {
			groups, err := s.cfg.Membership.GroupsOf(ctx, k.name)
			if err != nil {
				return nil, fmt.Errorf("resolving groups of %s: %w", k.name, err)
			}
			for _, g := range groups {
				all |= held[subjectKey{store.SubjectGroup, g}]
			}
		}
		userHeld[k.name] = all
	}
	items := make([]ReviewItem, 0, len(bs))
	for i, b := range bs {
		if u, ok := unflushed[b.ID]; ok && u.After(b.LastUsedAt) {
			b.LastUsedAt = u
		}
		it := ReviewItem{Binding: b, Permissions: perms[i].list(), Privileged: perms[i].privileged()}
		lastActive := b.LastUsedAt
		if lastActive.IsZero() {
			lastActive = b.GrantedAt
		}
		if now.Sub(lastActive) > s.cfg.StaleAfter {
			it.Flags = append(it.Flags, FlagStale)
		}
		switch {
		case b.ExpiresAt.IsZero():
		case !b.ExpiresAt.After(now):
			it.Flags = append(it.Flags, FlagExpired)
		case b.ExpiresAt.Sub(now) < s.cfg.ExpiringWithin:
			it.Flags = append(it.Flags, FlagExpiring)
		}
		subjectHeld := held[subjectKey{b.SubjectKind, b.Subject}]
		if b.SubjectKind == store.SubjectUser {
			subjectHeld = userHeld[b.Subject]
		}
		for _, r := range conflictRules {
			if subjectHeld&r.a != 0 && subjectHeld&r.b != 0 && perms[i]&(r.a|r.b) != 0 {
				it.Conflicts = append(it.Conflicts, r.id)
			}
		}
		if len(it.Conflicts) > 0 {
			it.Flags = append(it.Flags, FlagSoD)
		}
		if it.Privileged && b.SubjectKind == store.SubjectUser && !s.cfg.MFA.MFAStatus(b.Subject) {
			it.Flags = append(it.Flags, FlagNoMFA)
		}
		items = append(items, it)
	}
	return items, nil
}

// ReviewDecision is a reviewer's verdict on one binding.
type ReviewDecision struct {
	BindingID string
	Revoke    bool // false confirms the binding
	Note      string
}

// RecordReview applies and records a reviewer's decisions in one
// transaction: revoked bindings are deleted, and the ReviewRecord keeps
// every decision with the flags the binding carried. The reviewer needs
// binding.revoke globally and may not confirm their own binding
// (RuleSelfReview). A binding revoked since the review was listed gives
// store.ErrNotFound and nothing is applied.
func (s *Service) RecordReview(ctx context.Context, reviewer Subject, decisions []ReviewDecision) (store.ReviewRecord, error) {
	r, err := s.recordReview(ctx, reviewer, decisions)
	if err != nil {
		return store.ReviewRecord{}, fmt.Errorf("recording access review: %w", err)
	}
	return r, nil
}

func (s *Service) recordReview(ctx context.Context, reviewer Subject, decisions []ReviewDecision) (store.ReviewRecord, error) {
	if _, err := s.Authorize(ctx, reviewer, BindingRevoke, Resource{Type: ResBinding}); err != nil {
		return store.ReviewRecord{}, err
	}
	items, err := s.review(ctx)
	if err != nil {
		return store.ReviewRecord{}, err
	}
	byID := make(map[string]ReviewItem, len(items))
	for _, it := range items {
		byID[it.Binding.ID] = it
	}
	now := s.now()
	rec := store.ReviewRecord{ID: newID("v_"), Reviewer: reviewer.User, At: now}
	revoked := 0
	for _, d := range decisions {
		it, ok := byID[d.BindingID]
		if !ok {
			return store.ReviewRecord{}, fmt.Errorf("binding %s: %w", d.BindingID, store.ErrNotFound)
		}
		action := store.ReviewConfirm
		if d.Revoke {
			action = store.ReviewRevoke
			revoked++
		} else if isSelf(reviewer, it.Binding.SubjectKind, it.Binding.Subject) {
			return store.ReviewRecord{}, &SoDError{Rule: RuleSelfReview, Detail: reviewer.User + " may not confirm their own binding " + d.BindingID}
		}
		rec.Decisions = append(rec.Decisions, store.ReviewDecision{BindingID: d.BindingID, Action: action, Flags: it.Flags, Note: d.Note})
	}
	e := Event{At: now, Actor: reviewer.User, Action: ActReviewRecord, Target: rec.ID, Allowed: true,
		Details: map[string]string{"decisions": fmt.Sprint(len(decisions)), "revoked": fmt.Sprint(revoked)}}
	if err := s.cfg.Record(ctx, e); err != nil {
		return store.ReviewRecord{}, fmt.Errorf("recording: %w", err)
	}
	err = s.cfg.Store.InTx(ctx, func(tx store.Store) error {
		for _, d := range rec.Decisions {
			if d.Action != store.ReviewRevoke {
				continue
			}
			if err := tx.DeleteBinding(ctx, d.BindingID); err != nil {
				return err
			}
		}
		return tx.PutReviewRecord(ctx, rec)
	})
	if err != nil {
		return store.ReviewRecord{}, err
	}
	s.invalidate()
	return rec, nil
}
