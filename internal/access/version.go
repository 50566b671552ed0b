package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Version is one immutable version of a pipeline file.
type Version struct {
	Namespace string
	Pipeline  string
	Number    int
	Hash      string // hex SHA-256 of Content
	Content   []byte
	Author    string
	CreatedAt time.Time
	// Diff is the unified diff against the previous version ("" for the
	// first).
	Diff       string
	Approved   bool
	Approver   string
	ApprovedAt time.Time
}

func (v Version) String() string {
	return v.Namespace + "/" + v.Pipeline + "@" + strconv.Itoa(v.Number)
}

func versionFrom(p store.PipelineVersion) Version {
	return Version{Namespace: p.Namespace, Pipeline: p.Pipeline, Number: p.Number, Hash: p.Hash, Content: p.Content,
		Author: p.Author, CreatedAt: p.CreatedAt, Diff: p.Diff, Approved: p.ApprovedBy != "", Approver: p.ApprovedBy,
		ApprovedAt: p.ApprovedAt}
}

// PushVersion stores content as the next version of namespace/name, with
// its hash and its diff against the previous version. The actor needs
// pipeline.write in the namespace. Pushing content identical to the latest
// version returns that version unchanged: versions are immutable, and a
// new number for the same bytes would only reset its approval.
func (s *Service) PushVersion(ctx context.Context, actor Subject, namespace, name string, content []byte) (Version, error) {
	v, err := s.pushVersion(ctx, actor, namespace, name, content)
	if err != nil {
		return Version{}, fmt.Errorf("pushing pipeline %s/%s: %w", namespace, name, err)
	}
	return v, nil
}

func (s *Service) pushVersion(ctx context.Context, actor Subject, namespace, name string, content []byte) (Version, error) {
	if namespace == "" || name == "" {
		return Version{}, fmt.Errorf("empty namespace or pipeline name: %w", ErrInvalid)
	}
	if _, err := s.Authorize(ctx, actor, PipelineWrite, Resource{Type: ResPipeline, Namespace: namespace, Name: name}); err != nil {
		return Version{}, err
	}
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	prev, err := s.cfg.Store.LatestPipelineVersion(ctx, namespace, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = store.PipelineVersion{}
	case err != nil:
		return Version{}, err
	case prev.Hash == hash:
		return versionFrom(prev), nil
	}
	now := s.now()
	from := "/dev/null"
	if prev.Number > 0 {
		from = versionFrom(prev).String()
	}
	to := Version{Namespace: namespace, Pipeline: name, Number: prev.Number + 1}.String()
	p := store.PipelineVersion{Namespace: namespace, Pipeline: name, Hash: hash, Content: content, Author: actor.User,
		CreatedAt: now, Diff: unifiedDiff(from, to, prev.Content, content)}
	e := Event{At: now, Actor: actor.User, Action: ActVersionPush, Target: namespace + "/" + name, Namespace: namespace,
		Allowed: true, Details: map[string]string{"hash": hash, "previous": prev.Hash}}
	if err := s.cfg.Record(ctx, e); err != nil {
		return Version{}, fmt.Errorf("recording: %w", err)
	}
	stored, err := s.cfg.Store.PutPipelineVersion(ctx, p)
	if err != nil {
		return Version{}, err
	}
	return versionFrom(stored), nil
}

// Approve approves a pipeline version. The approver needs pipeline.approve
// in its namespace and must not be its author (RuleSelfApproveVersion).
// store.ErrConflict if it is already approved.
func (s *Service) Approve(ctx context.Context, approver Subject, namespace, name string, number int) (Version, error) {
	v, err := s.approve(ctx, approver, namespace, name, number)
	if err != nil {
		return Version{}, fmt.Errorf("approving pipeline %s/%s@%d: %w", namespace, name, number, err)
	}
	return v, nil
}

func (s *Service) approve(ctx context.Context, approver Subject, namespace, name string, number int) (Version, error) {
	if _, err := s.Authorize(ctx, approver, PipelineApprove, Resource{Type: ResPipeline, Namespace: namespace, Name: name}); err != nil {
		return Version{}, err
	}
	p, err := s.cfg.Store.GetPipelineVersion(ctx, namespace, name, number)
	if err != nil {
		return Version{}, err
	}
	if p.Author == approver.User {
		return Version{}, &SoDError{Rule: RuleSelfApproveVersion, Detail: approver.User + " is the author of this version"}
	}
	now := s.now()
	e := Event{At: now, Actor: approver.User, Action: ActVersionApprove, Target: versionFrom(p).String(), Namespace: namespace,
		Allowed: true, Details: map[string]string{"hash": p.Hash, "author": p.Author}}
	if err := s.cfg.Record(ctx, e); err != nil {
		return Version{}, fmt.Errorf("recording: %w", err)
	}
	p, err = s.cfg.Store.ApprovePipelineVersion(ctx, namespace, name, number, approver.User, now)
	if err != nil {
		return Version{}, err
	}
	return versionFrom(p), nil
}

// Versions lists the versions of a pipeline (without content or diff). The
// actor needs pipeline.read in its namespace.
func (s *Service) Versions(ctx context.Context, actor Subject, namespace, name string) ([]Version, error) {
	if _, err := s.Authorize(ctx, actor, PipelineRead, Resource{Type: ResPipeline, Namespace: namespace, Name: name}); err != nil {
		return nil, fmt.Errorf("listing versions of %s/%s: %w", namespace, name, err)
	}
	ps, err := s.cfg.Store.ListPipelineVersions(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(ps))
	for i, p := range ps {
		out[i] = versionFrom(p)
	}
	return out, nil
}

// RunnableOnSchedule reports whether the scheduler may run v: always in a
// namespace that is not protected; in a protected one only once the stored
// version with v's number and hash was approved by someone other than its
// author (Approve checked the approver's pipeline.approve). The reason says
// why not.
func (s *Service) RunnableOnSchedule(ctx context.Context, v Version) (bool, string, error) {
	protected, err := s.cfg.Store.IsNamespaceProtected(ctx, v.Namespace)
	if err != nil {
		return false, "", fmt.Errorf("checking %s: %w", v, err)
	}
	if !protected {
		return true, "namespace " + v.Namespace + " is not protected", nil
	}
	p, err := s.cfg.Store.GetPipelineVersion(ctx, v.Namespace, v.Pipeline, v.Number)
	if errors.Is(err, store.ErrNotFound) {
		return false, "version " + v.String() + " is not recorded", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("checking %s: %w", v, err)
	}
	switch {
	case p.Hash != v.Hash:
		return false, "content of " + v.String() + " differs from the recorded version", nil
	case p.ApprovedBy == "":
		return false, v.String() + " is not approved and namespace " + v.Namespace + " is protected", nil
	case p.ApprovedBy == p.Author:
		return false, v.String() + " was approved by its author", nil
	}
	return true, v.String() + " approved by " + p.ApprovedBy, nil
}

// SetProtected marks a namespace protected (or not). The actor needs
// namespace.protect in it.
func (s *Service) SetProtected(ctx context.Context, actor Subject, namespace string, protected bool) error {
	if namespace == "" {
		return fmt.Errorf("protecting namespace: empty name: %w", ErrInvalid)
	}
	if _, err := s.Authorize(ctx, actor, NamespaceProtect, Resource{Type: ResNamespace, Namespace: namespace, Name: namespace}); err != nil {
		return fmt.Errorf("protecting namespace %s: %w", namespace, err)
	}
	now := s.now()
	act := ActNamespaceProtect
	if !protected {
		act = ActNamespaceRelease
	}
	if err := s.cfg.Record(ctx, Event{At: now, Actor: actor.User, Action: act, Target: namespace, Namespace: namespace, Allowed: true}); err != nil {
		return fmt.Errorf("protecting namespace %s: recording: %w", namespace, err)
	}
	return s.cfg.Store.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: namespace, SetBy: actor.User, SetAt: now}, protected)
}
