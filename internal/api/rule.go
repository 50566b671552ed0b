package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/store"
)

// Rule is the authorization of a route, decided before its handler runs.
// Build one with Public, SignedIn, Filtered or Need; the zero Rule is
// refused by New, so a route cannot be added without a decision.
type Rule struct {
	public   bool
	signedIn bool
	// perm is checked on the resource that resource names.
	perm access.Permission
	// filter is the permission a listing handler checks per item.
	filter   access.Permission
	resource func(r *http.Request, a *API) (access.Resource, error)
}

// Public routes need no credential: signing in, the OpenAPI document.
func Public() Rule { return Rule{public: true} }

// SignedIn routes need an authenticated caller and act only on the
// caller's own things (their profile, sessions, tokens); the handler
// makes sure of the latter.
func SignedIn() Rule { return Rule{signedIn: true} }

// Filtered routes are listings open to every signed-in caller that show
// only the items on which the caller holds perm (checked per item with
// Call.May); a caller without it sees an empty list, not an error.
func Filtered(perm access.Permission) Rule { return Rule{signedIn: true, filter: perm} }

// Need routes require perm on the resource res names, decided through
// access.Service before the handler runs; a denial is recorded and
// answered 403.
func Need(perm access.Permission, res func(r *http.Request, a *API) (access.Resource, error)) Rule {
	return Rule{perm: perm, resource: res}
}

// Permission is the permission the rule checks before the handler
// (Need) or per item (Filtered); "" for Public and SignedIn.
func (r Rule) Permission() access.Permission {
	if r.perm != "" {
		return r.perm
	}
	return r.filter
}

// IsPublic reports whether the rule lets unauthenticated callers in.
func (r Rule) IsPublic() bool { return r.public }

// Checked reports whether the rule decides a permission before the
// handler runs (Need).
func (r Rule) Checked() bool { return r.perm != "" }

func (r Rule) check() error {
	n := 0
	for _, set := range []bool{r.public, r.signedIn && r.filter == "", r.filter != "", r.perm != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("no authorization rule")
	case n > 1:
		return errors.New("more than one authorization rule")
	case r.perm != "" && r.resource == nil:
		return errors.New("a Need rule needs a resource")
	}
	for _, p := range []access.Permission{r.perm, r.filter} {
		if _, ok := access.Lookup(p); p != "" && !ok {
			return fmt.Errorf("unknown permission %q", p)
		}
	}
	return nil
}

// Global names a resource of type t outside any namespace (users, keys,
// the audit log): only global bindings reach it.
func Global(t access.ResourceType) func(*http.Request, *API) (access.Resource, error) {
	return func(*http.Request, *API) (access.Resource, error) { return access.Resource{Type: t}, nil }
}

// InNamespace names a resource of type t in the namespace of the path's
// {namespace} wildcard, named by its {name} wildcard (may be empty).
func InNamespace(t access.ResourceType) func(*http.Request, *API) (access.Resource, error) {
	return func(r *http.Request, _ *API) (access.Resource, error) {
		return access.Resource{Type: t, Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, nil
	}
}

// OfRun names a resource of type t belonging to the run in the path's
// {id} wildcard, in that run's namespace. An unknown run is decided with
// no namespace, so only a global binding lets the caller learn that it
// does not exist (the handler answers 404 then).
func OfRun(t access.ResourceType) func(*http.Request, *API) (access.Resource, error) {
	return func(r *http.Request, a *API) (access.Resource, error) {
		id := r.PathValue("id")
		res := access.Resource{Type: t, Name: id}
		run, err := a.d.Store.GetRun(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return res, fmt.Errorf("reading run %s: %w", id, err)
		default:
			res.Namespace = run.Namespace
		}
		return res, nil
	}
}
