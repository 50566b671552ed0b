package store

import (
	"context"
	"time"
)

// Subject kinds of a binding or access request: who it is about.
const (
	SubjectUser  = "user"
	SubjectGroup = "group"
)

// AccessRequest states. A request is decided once: pending moves to exactly
// one of the others, never back.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestRejected = "rejected"
	RequestExpired  = "expired"
)

// Role is a custom role: a named set of permissions. Built-in roles live in
// code (package access), not in the store.
type Role struct {
	Name        string
	Description string
	Permissions []string // permission names, e.g. "pipeline.read"
	CreatedBy   string
	CreatedAt   time.Time
}

// Binding gives a user or a group a role, globally (Namespace "") or in one
// namespace, until ExpiresAt (zero: no expiry).
type Binding struct {
	ID          string
	SubjectKind string // SubjectUser or SubjectGroup
	Subject     string
	Role        string
	Namespace   string // "" is global
	ExpiresAt   time.Time
	GrantedBy   string
	GrantedAt   time.Time
	// RequestID is the access request the binding was approved from; "" for
	// a direct grant.
	RequestID string
	// LastUsedAt is the last time the binding allowed a decision, as last
	// recorded by TouchBindings; zero if never.
	LastUsedAt time.Time
}

// AccessRequest asks for a binding that needs a second person's approval.
type AccessRequest struct {
	ID          string
	Requester   string
	SubjectKind string
	Subject     string
	Role        string
	Namespace   string
	ExpiresAt   time.Time // expiry of the binding it would create
	Reason      string
	State       string // RequestPending, RequestApproved, RequestRejected, RequestExpired
	Approver    string // who decided it; "" while pending or when it expired
	Note        string // the decider's comment
	CreatedAt   time.Time
	DecidedAt   time.Time
	BindingID   string // the binding created on approval
}

// DecideAccessRequest moves a pending request to a final state.
type DecideAccessRequest struct {
	ID        string
	State     string // RequestApproved, RequestRejected or RequestExpired
	Approver  string
	Note      string
	At        time.Time
	BindingID string
}

// PipelineVersion is one immutable version of a pipeline file.
type PipelineVersion struct {
	Namespace string
	Pipeline  string
	Number    int // from 1
	Hash      string
	Content   []byte
	Author    string
	CreatedAt time.Time
	Diff      string // unified diff against the previous version
	// ApprovedBy and ApprovedAt are empty until the version is approved.
	ApprovedBy string
	ApprovedAt time.Time
}

// ProtectedNamespace is a namespace whose pipelines run on schedule only once
// a version is approved by a second person.
type ProtectedNamespace struct {
	Namespace string
	SetBy     string
	SetAt     time.Time
}

// Review outcomes for one binding.
const (
	ReviewConfirm = "confirm"
	ReviewRevoke  = "revoke"
)

// ReviewDecision is what a reviewer decided about one binding.
type ReviewDecision struct {
	BindingID string
	Action    string   // ReviewConfirm or ReviewRevoke
	Flags     []string // the flags the binding carried when reviewed
	Note      string
}

// ReviewRecord is one completed access review.
type ReviewRecord struct {
	ID        string
	Reviewer  string
	At        time.Time
	Decisions []ReviewDecision
}

// AccessStore persists roles, bindings, access requests and approvals, pipeline versions and access reviews.
// Store embeds it, so transaction-bound stores have these methods too.
//
// Every change to roles or bindings increments a version counter
// (AccessVersion) in the same transaction, so that processes caching
// bindings can tell cheaply when to reload.
type AccessStore interface {
	// AccessVersion returns the counter of role and binding changes.
	AccessVersion(ctx context.Context) (int64, error)

	// CreateRole stores a custom role. ErrConflict if the name exists.
	CreateRole(ctx context.Context, r Role) error
	// GetRole returns a custom role, or ErrNotFound.
	GetRole(ctx context.Context, name string) (Role, error)
	// ListRoles returns the custom roles by name.
	ListRoles(ctx context.Context) ([]Role, error)
	// DeleteRole deletes a custom role: ErrNotFound if it does not exist,
	// ErrConflict while a binding uses it.
	DeleteRole(ctx context.Context, name string) error

	// CreateBinding stores a binding. ErrConflict if the id exists or the
	// same subject already has the same role in the same namespace.
	CreateBinding(ctx context.Context, b Binding) error
	// GetBinding returns a binding by id, or ErrNotFound.
	GetBinding(ctx context.Context, id string) (Binding, error)
	// ListBindings returns every binding, ordered by grant time then id.
	ListBindings(ctx context.Context) ([]Binding, error)
	// DeleteBinding deletes a binding; ErrNotFound if it does not exist.
	DeleteBinding(ctx context.Context, id string) error
	// TouchBindings records last-use times: each binding's LastUsedAt
	// becomes the later of its stored value and the given one. Unknown ids
	// are ignored (the binding may have been revoked since). It does not
	// change AccessVersion.
	TouchBindings(ctx context.Context, used map[string]time.Time) error

	// CreateAccessRequest stores a request in state pending. ErrConflict if
	// the id exists.
	CreateAccessRequest(ctx context.Context, r AccessRequest) error
	// GetAccessRequest returns a request, or ErrNotFound.
	GetAccessRequest(ctx context.Context, id string) (AccessRequest, error)
	// ListAccessRequests returns requests in state (all if state is ""),
	// oldest first.
	ListAccessRequests(ctx context.Context, state string) ([]AccessRequest, error)
	// DecideAccessRequest moves a pending request to p.State: ErrConflict
	// if it is no longer pending, ErrNotFound if it does not exist.
	DecideAccessRequest(ctx context.Context, p DecideAccessRequest) (AccessRequest, error)

	// PutPipelineVersion stores a new version of v.Namespace/v.Pipeline,
	// assigning Number = latest+1 in one transaction (v.Number is ignored),
	// and returns it. Versions are never changed afterwards, except for
	// their approval.
	PutPipelineVersion(ctx context.Context, v PipelineVersion) (PipelineVersion, error)
	// GetPipelineVersion returns one version, or ErrNotFound.
	GetPipelineVersion(ctx context.Context, namespace, pipeline string, number int) (PipelineVersion, error)
	// LatestPipelineVersion returns the newest version, or ErrNotFound.
	LatestPipelineVersion(ctx context.Context, namespace, pipeline string) (PipelineVersion, error)
	// ListPipelineVersions returns every version of a pipeline, oldest
	// first, with Content and Diff left empty.
	ListPipelineVersions(ctx context.Context, namespace, pipeline string) ([]PipelineVersion, error)
	// ApprovePipelineVersion records the approval of a version, a
	// compare-and-set: ErrConflict if it is already approved, ErrNotFound
	// if it does not exist.
	ApprovePipelineVersion(ctx context.Context, namespace, pipeline string, number int, approver string, at time.Time) (PipelineVersion, error)

	// SetNamespaceProtected marks (protected) or unmarks a namespace.
	// Marking a protected namespace again keeps its first record;
	// unmarking one that is not protected is not an error.
	SetNamespaceProtected(ctx context.Context, p ProtectedNamespace, protected bool) error
	// IsNamespaceProtected reports whether a namespace is protected.
	IsNamespaceProtected(ctx context.Context, namespace string) (bool, error)
	// ListProtectedNamespaces returns the protected namespaces by name.
	ListProtectedNamespaces(ctx context.Context) ([]ProtectedNamespace, error)

	// PutReviewRecord stores a completed review. ErrConflict if the id
	// exists.
	PutReviewRecord(ctx context.Context, r ReviewRecord) error
	// ListReviewRecords returns the reviews, oldest first.
	ListReviewRecords(ctx context.Context) ([]ReviewRecord, error)
}
