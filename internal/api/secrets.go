package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// Secrets through the API: their names and who set them when, and
// deletion, as 'sluice secret list' and 'sluice secret rm' do. A value
// is never returned by any endpoint; it is set from the host with
// 'sluice secret set', which reads it from stdin rather than a request
// that proxies and logs might keep.

// secretRoutes are the secret endpoints.
func (a *API) secretRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/secrets", Summary: "secrets' names, versions and who set them; never values",
			Rule: Need(access.SecretWrite, Global(access.ResSecret)), Handle: a.listSecrets},
		{Method: http.MethodDelete, Pattern: Prefix + "/secrets/{name}", Summary: "delete every version of a secret",
			Rule: Need(access.SecretWrite, namedGlobal(access.ResSecret)), Handle: a.deleteSecret},
	}
}

// namedGlobal names the global resource of type t called by the path's
// {name} wildcard, so the decision recorded names it.
func namedGlobal(t access.ResourceType) func(*http.Request, *API) (access.Resource, error) {
	return func(r *http.Request, _ *API) (access.Resource, error) {
		return access.Resource{Type: t, Name: r.PathValue("name")}, nil
	}
}

// SecretView describes a secret without its value.
type SecretView struct {
	Name    string    `json:"name"`
	Version int       `json:"version"`
	SetBy   string    `json:"set_by"`
	SetAt   time.Time `json:"set_at"`
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request, _ *Call) error {
	if a.d.Secrets == nil {
		return server.Errorf(server.CodeNotFound, "this server keeps no secrets")
	}
	metas, err := a.d.Secrets.List(r.Context())
	if err != nil {
		return err
	}
	views := make([]SecretView, 0, len(metas))
	for _, m := range metas {
		views = append(views, SecretView{Name: m.Name, Version: m.Version, SetBy: m.SetBy, SetAt: m.SetAt.UTC()})
	}
	page, err := listPage(r, views, func(v SecretView) string { return v.Name })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request, c *Call) error {
	if a.d.Secrets == nil {
		return server.Errorf(server.CodeNotFound, "this server keeps no secrets")
	}
	name := r.PathValue("name")
	if err := secrets.ValidName(name); err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: err.Error(), Err: err}
	}
	ctx := r.Context()
	// The deletion, the destruction of its versions' data keys and its
	// audit record commit together; then the keys leave the cache.
	details := map[string]string{}
	var destroyed []string
	err := audit.Do(ctx, a.d.Store, event(r, c, "secret.rm", "secret:"+name, details), func(tx store.Store) error {
		var err error
		destroyed, err = a.d.Secrets.DeleteIn(ctx, tx, name)
		details["data_keys_destroyed"] = strings.Join(destroyed, ",")
		return err
	})
	a.checkpoint(ctx)
	if err == nil {
		err = a.d.Secrets.Evict(ctx, destroyed)
	}
	if errors.Is(err, store.ErrNotFound) {
		return server.Errorf(server.CodeNotFound, "no secret %q", name)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// recordFirst records ev as a success before an action that is not a
// store write (a key rotation, a cancellation through the engine): if the
// record cannot be written, the action must not happen. If the action
// then fails, recordFailed records that.
func (a *API) recordFirst(ctx context.Context, ev audit.Event) error {
	ev.Outcome = audit.OutcomeSuccess
	if err := audit.Record(ctx, a.d.Store, ev); err != nil {
		return err
	}
	a.checkpoint(ctx)
	return nil
}

// recordFailed records that an action recorded by recordFirst failed.
func (a *API) recordFailed(ctx context.Context, ev audit.Event, cause error) {
	ev.Outcome, ev.Reason, ev.Time = audit.OutcomeFailure, cause.Error(), time.Time{}
	if err := audit.Record(ctx, a.d.Store, ev); err != nil {
		a.d.Logger.Error("recording a failed action", "action", ev.Action, "error", err)
	}
}

// checkpoint signs an audit checkpoint when one is due. A failure does
// not undo an action already committed with its record; the next action
// tries again.
func (a *API) checkpoint(ctx context.Context) {
	if a.d.Keys == nil {
		return
	}
	if _, _, err := audit.NewCheckpointer(a.d.Store, a.d.Keys, audit.CheckpointOptions{}).Maybe(ctx); err != nil {
		a.d.Logger.Warn("audit checkpoint failed", "error", err)
	}
}
