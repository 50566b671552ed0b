package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrDenied: Decide denied the action; the error text carries the reason.
	ErrDenied = errors.New("permission denied")
	// ErrSoD: the change breaks a segregation-of-duties rule; errors.As a
	// *SoDError for the rule.
	ErrSoD = errors.New("segregation of duties")
	// ErrUnknownPermission: a permission name is not defined.
	ErrUnknownPermission = errors.New("unknown permission")
	// ErrUnknownRole: no built-in or custom role has that name.
	ErrUnknownRole = errors.New("unknown role")
	// ErrInvalid: an argument is malformed (empty subject, expiry in the
	// past, name taken by a built-in role, ...).
	ErrInvalid = errors.New("invalid")
	// ErrRequestExpired: the access request waited too long, or the binding
	// it asks for would already have expired.
	ErrRequestExpired = errors.New("access request expired")
)

// SoDError is a refusal under a segregation-of-duties rule. It matches
// ErrSoD with errors.Is.
type SoDError struct {
	Rule   string // one of the Rule* constants
	Detail string
}

func (e *SoDError) Error() string {
	return fmt.Sprintf("segregation of duties rule %s: %s", e.Rule, e.Detail)
}

// Is makes errors.Is(err, ErrSoD) true.
func (e *SoDError) Is(target error) bool { return target == ErrSoD }

// Subject is who asks: the authenticated user of a request and how they
// authenticated.
type Subject struct {
	User   string
	Groups []string
	// MFA: this session was authenticated with a second factor.
	MFA bool
	// TokenScope narrows an API token to these permissions; nil means the
	// user's full permissions. A scope never adds anything a binding does
	// not grant; an empty non-nil scope allows nothing.
	TokenScope []Permission
}

// Resource is what an action is on. Namespace is "" for global resources
// (settings, users, keys), which only global bindings reach.
type Resource struct {
	Type      ResourceType
	Namespace string
	Name      string
}

// Decision is the answer of Decide.
type Decision struct {
	Allowed bool
	// Reason says which binding allowed, or why it was denied.
	Reason     string
	Permission Permission
	Resource   Resource
	User       string
	// BindingID is the binding that allowed; "" when denied.
	BindingID string
	// Privileged decisions must be recorded in the audit log before the
	// caller acts on them.
	Privileged bool
	At         time.Time
}

// Event describes an authorization decision or a change, for the audit log.
type Event struct {
	At     time.Time
	Actor  string
	Action string // "access.decide", "binding.create", "pipeline.approve", ...
	// Target is what the event is about: a binding or request id, a role
	// name, "namespace/pipeline@version".
	Target    string
	Namespace string
	// Allowed is the outcome of a decision; true for changes (which are
	// recorded only once allowed).
	Allowed bool
	Reason  string
	Details map[string]string
}

// Event actions.
const (
	ActDecide            = "access.decide"
	ActRoleCreate        = "role.create"
	ActRoleDelete        = "role.delete"
	ActBindingCreate     = "binding.create"
	ActBindingRevoke     = "binding.revoke"
	ActRequestCreate     = "request.create"
	ActRequestApprove    = "request.approve"
	ActRequestReject     = "request.reject"
	ActRequestExpire     = "request.expire"
	ActVersionPush       = "pipeline.version"
	ActVersionApprove    = "pipeline.approve"
	ActNamespaceProtect  = "namespace.protect"
	ActNamespaceRelease  = "namespace.unprotect"
	ActReviewRecord      = "review.record"
	actDecideDescription = "authorization decision"
)

// Store is what the service needs of the store.
type Store interface {
	store.AccessStore
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// MFAStatus reports whether a user has MFA enrolled; the identity package
// implements it. MFAFunc adapts a function.
type MFAStatus interface {
	MFAStatus(user string) bool
}

// MFAFunc adapts a function to MFAStatus.
type MFAFunc func(user string) bool

// MFAStatus calls f.
func (f MFAFunc) MFAStatus(user string) bool { return f(user) }

// Membership resolves the groups of a user; optional. With it, binding
// changes and reviews see conflicts a user gets through groups; Decide
// always sees them, through Subject.Groups.
type Membership interface {
	GroupsOf(ctx context.Context, user string) ([]string, error)
}

// Config configures a Service. Store, Record and MFA are required.
type Config struct {
	Store Store
	// Record writes an event to the audit log. It is called before every
	// change and for every privileged decision made through Authorize; an
	// error stops the action.
	Record func(ctx context.Context, e Event) error
	// MFA tells reviews which users have MFA enrolled.
	MFA MFAStatus
	// Membership, if set, resolves group membership for SoD checks.
	Membership Membership
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// RefreshInterval is how often Decide checks the store's access
	// version, so that changes made by other processes are seen; 0 means
	// one second.
	RefreshInterval time.Duration
	// RequestTTL is how long an access request waits for approval; 0
	// means 7 days.
	RequestTTL time.Duration
	// StaleAfter flags bindings unused for this long in reviews; 0 means
	// 90 days.
	StaleAfter time.Duration
	// ExpiringWithin flags bindings expiring this soon in reviews; 0 means
	// 14 days.
	ExpiringWithin time.Duration
}

// Service answers authorization questions and makes the changes that
// govern them. It is safe for concurrent use.
type Service struct {
	cfg   Config
	now   func() time.Time
	idx   atomic.Pointer[index]
	check atomic.Int64 // unix nanoseconds of the last version check; 0 forces one
	mu    sync.Mutex   // serializes reloads
}

// New returns a Service with its binding index loaded.
func New(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("creating access service: no store: %w", ErrInvalid)
	case cfg.Record == nil:
		return nil, fmt.Errorf("creating access service: no audit recorder: %w", ErrInvalid)
	case cfg.MFA == nil:
		return nil, fmt.Errorf("creating access service: no MFA status: %w", ErrInvalid)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Second
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = 7 * 24 * time.Hour
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 90 * 24 * time.Hour
	}
	if cfg.ExpiringWithin <= 0 {
		cfg.ExpiringWithin = 14 * 24 * time.Hour
	}
	s := &Service{cfg: cfg, now: cfg.Clock}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("creating access service: %w", err)
	}
	return s, nil
}

// index is an immutable snapshot of roles and bindings; only lastUsed
// changes, atomically.
type index struct {
	version int64
	roles   map[string]permSet
	users   map[string][]*entry
	groups  map[string][]*entry
	all     []*entry
}

type entry struct {
	b       store.Binding
	perms   permSet
	expires int64  // unix microseconds; 0 never
	desc    string // "binding ID (role R to user U in namespace N)"
	// lastUsed is the last time (unix microseconds) the binding allowed a
	// decision; flushed what FlushUsage last wrote.
	lastUsed atomic.Int64
	flushed  atomic.Int64
}

// Refresh reloads roles and bindings from the store now.
func (s *Service) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload(ctx, true)
}

// reload rebuilds the index if the store's version moved (or force);
// s.mu held.
func (s *Service) reload(ctx context.Context, force bool) error {
	checkedAt := s.now().UnixNano()
	v, err := s.cfg.Store.AccessVersion(ctx)
	if err != nil {
		return fmt.Errorf("loading bindings: %w", err)
	}
	old := s.idx.Load()
	if !force && old != nil && old.version == v {
		s.check.Store(checkedAt)
		return nil
	}
	custom, err := s.cfg.Store.ListRoles(ctx)
	if err != nil {
		return fmt.Errorf("loading bindings: %w", err)
	}
	bs, err := s.cfg.Store.ListBindings(ctx)
	if err != nil {
		return fmt.Errorf("loading bindings: %w", err)
	}
	idx := &index{
		version: v,
		roles:   make(map[string]permSet, len(builtinRoles)+len(custom)),
		users:   make(map[string][]*entry),
		groups:  make(map[string][]*entry),
	}
	for _, r := range builtinRoles {
		idx.roles[r.name] = r.perms
	}
	for _, r := range custom {
		if _, builtin := idx.roles[r.Name]; builtin {
			continue // a built-in name always means the built-in role
		}
		// Names this binary does not know grant nothing.
		idx.roles[r.Name] = setOf(permsOf(r.Permissions)...)
	}
	prev := make(map[string]*entry)
	if old != nil {
		for _, e := range old.all {
			prev[e.b.ID] = e
		}
	}
	for _, b := range bs {
		e := &entry{b: b, perms: idx.roles[b.Role], desc: describeBinding(b)}
		if !b.ExpiresAt.IsZero() {
			e.expires = b.ExpiresAt.UnixMicro()
		}
		stored := b.LastUsedAt.UnixMicro()
		if b.LastUsedAt.IsZero() {
			stored = 0
		}
		e.flushed.Store(stored)
		e.lastUsed.Store(stored)
		if p := prev[b.ID]; p != nil && p.lastUsed.Load() > stored {
			e.lastUsed.Store(p.lastUsed.Load())
		}
		idx.all = append(idx.all, e)
		if b.SubjectKind == store.SubjectGroup {
			idx.groups[b.Subject] = append(idx.groups[b.Subject], e)
		} else {
			idx.users[b.Subject] = append(idx.users[b.Subject], e)
		}
	}
	s.idx.Store(idx)
	s.check.Store(checkedAt)
	return nil
}

func permsOf(names []string) []Permission {
	out := make([]Permission, len(names))
	for i, n := range names {
		out[i] = Permission(n)
	}
	return out
}

func describeBinding(b store.Binding) string {
	where := "globally"
	if b.Namespace != "" {
		where = "in namespace " + b.Namespace
	}
	return "binding " + b.ID + " (role " + b.Role + " to " + b.SubjectKind + " " + b.Subject + " " + where + ")"
}

// invalidate makes the next Decide check the store's version.
func (s *Service) invalidate() { s.check.Store(0) }

// current returns the index, checking the store's version at most once per
// RefreshInterval. While one caller checks, others use the snapshot they
// have.
func (s *Service) current(ctx context.Context, now time.Time) (*index, error) {
	idx := s.idx.Load()
	last := s.check.Load()
	if idx != nil && last != 0 && now.UnixNano()-last < int64(s.cfg.RefreshInterval) {
		return idx, nil
	}
	if !s.mu.TryLock() {
		if idx != nil && last != 0 {
			return idx, nil
		}
		s.mu.Lock() // no usable snapshot: wait for the reload
	}
	defer s.mu.Unlock()
	if l := s.check.Load(); l != 0 && now.UnixNano()-l < int64(s.cfg.RefreshInterval) {
		return s.idx.Load(), nil // reloaded while we waited
	}
	if err := s.reload(ctx, false); err != nil {
		return nil, err
	}
	return s.idx.Load(), nil
}

// Decide answers whether sub may use perm on res. It denies unless an
// unexpired binding of the user, or of one of their groups, grants perm
// globally or in res.Namespace; and then still denies when the token scope
// excludes perm, when the subject holds a conflicting permission under a
// segregation-of-duties rule, or when perm is privileged and the session
// did not use MFA. The reason names the binding that allowed or the cause
// of the denial.
//
// Decide does not record anything: a caller acting on a Privileged
// decision must record it in the audit log first (Authorize does).
func (s *Service) Decide(ctx context.Context, sub Subject, perm Permission, res Resource) Decision {
	now := s.now()
	d := Decision{Permission: perm, Resource: res, User: sub.User, At: now}
	pi, ok := permIndex[perm]
	if !ok {
		d.Reason = "unknown permission " + strconv.Quote(string(perm))
		return d
	}
	info := &permissionTable[pi]
	d.Privileged = info.Privileged
	if res.Type != info.Resource {
		d.Reason = "permission " + string(perm) + " applies to " + string(info.Resource) + " resources, not " + string(res.Type)
		return d
	}
	if sub.User == "" {
		d.Reason = "no authenticated user"
		return d
	}
	if sub.TokenScope != nil && !slices.Contains(sub.TokenScope, perm) {
		d.Reason = "token scope does not include " + string(perm)
		return d
	}
	idx, err := s.current(ctx, now)
	if err != nil {
		d.Reason = "authorization data unavailable: " + err.Error()
		return d
	}
	nowMicro := now.UnixMicro()
	var (
		grant, expired *entry
		held           permSet
	)
	consider := func(e *entry) {
		applies := e.perms.has(pi) && (e.b.Namespace == "" || e.b.Namespace == res.Namespace)
		if e.expires != 0 && nowMicro >= e.expires {
			if applies {
				expired = e
			}
			return
		}
		held |= e.perms
		if applies && grant == nil {
			grant = e
		}
	}
	for _, e := range idx.users[sub.User] {
		consider(e)
	}
	for _, g := range sub.Groups {
		for _, e := range idx.groups[g] {
			consider(e)
		}
	}
	if grant == nil {
		switch {
		case expired != nil:
			d.Reason = expired.desc + " granting " + string(perm) + " expired at " + expired.b.ExpiresAt.UTC().Format(time.RFC3339)
		case res.Namespace == "":
			d.Reason = "no binding grants " + string(perm) + " globally"
		default:
			d.Reason = "no binding grants " + string(perm) + " in namespace " + res.Namespace
		}
		return d
	}
	for i := range conflictRules {
		r := &conflictRules[i]
		if r.b.has(pi) && held&r.a != 0 {
			d.Reason = "segregation of duties rule " + r.id + ": " + r.description + "; " + sub.User +
				" holds security administration and may not use " + string(perm)
			return d
		}
	}
	if info.Privileged && !sub.MFA {
		d.Reason = string(perm) + " is privileged and requires MFA; this session was not authenticated with MFA"
		return d
	}
	grant.lastUsed.Store(nowMicro)
	d.Allowed = true
	d.BindingID = grant.b.ID
	d.Reason = grant.desc + " grants " + string(perm)
	return d
}

// Authorize is Decide for callers about to act: it records privileged
// decisions (allowed or denied) through Config.Record first, and returns an
// error wrapping ErrDenied, with the reason, when the action is denied. An
// error from the recorder is returned as is: do not act.
func (s *Service) Authorize(ctx context.Context, sub Subject, perm Permission, res Resource) (Decision, error) {
	d := s.Decide(ctx, sub, perm, res)
	if d.Privileged {
		e := Event{At: d.At, Actor: sub.User, Action: ActDecide, Target: string(res.Type) + ":" + res.Name,
			Namespace: res.Namespace, Allowed: d.Allowed, Reason: d.Reason,
			Details: map[string]string{"permission": string(perm), "mfa": strconv.FormatBool(sub.MFA)}}
		if d.BindingID != "" {
			e.Details["binding"] = d.BindingID
		}
		if err := s.cfg.Record(ctx, e); err != nil {
			return d, fmt.Errorf("recording %s: %w", actDecideDescription, err)
		}
	}
	if !d.Allowed {
		return d, fmt.Errorf("%w: %s", ErrDenied, d.Reason)
	}
	return d, nil
}

// FlushUsage writes the bindings' last-use times noted by Decide to the
// store. Decide never writes (it may run inside a caller's transaction);
// the process calls FlushUsage periodically and at shutdown.
func (s *Service) FlushUsage(ctx context.Context) error {
	idx := s.idx.Load()
	if idx == nil {
		return nil
	}
	used := make(map[string]time.Time)
	var touched []*entry
	for _, e := range idx.all {
		if u := e.lastUsed.Load(); u > e.flushed.Load() {
			used[e.b.ID] = time.UnixMicro(u).UTC()
			touched = append(touched, e)
		}
	}
	if len(used) == 0 {
		return nil
	}
	if err := s.cfg.Store.TouchBindings(ctx, used); err != nil {
		return fmt.Errorf("flushing binding use: %w", err)
	}
	for _, e := range touched {
		e.flushed.Store(used[e.b.ID].UnixMicro())
	}
	return nil
}
