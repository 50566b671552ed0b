package api

import (
	"errors"
	"net/http"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/server"
)

// The key-encryption key's keys, as 'sluice key list' and 'sluice key
// rotate' manage them: key.manage on the key "kek", which only a global
// binding (a platform engineer's) grants. Rewrapping and retiring stay on
// the host's command line, where their progress and the backups they
// call for are watched.

// keyRoutes are the key endpoints.
func (a *API) keyRoutes() []Route {
	kek := func(*http.Request, *API) (access.Resource, error) {
		return access.Resource{Type: access.ResKey, Name: "kek"}, nil
	}
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/keys", Summary: "the KEK's keys and how many data keys each wraps",
			Rule: Need(access.KeyManage, kek), Handle: a.listKeys},
		{Method: http.MethodPost, Pattern: Prefix + "/keys/rotate", Summary: "add a new primary KEK key",
			Rule: Need(access.KeyManage, kek), Handle: a.rotateKey},
	}
}

// KeyView is one key of the key-encryption key.
type KeyView struct {
	ID       uint32 `json:"id"`
	Status   string `json:"status"`
	DataKeys int64  `json:"data_keys"`
}

// KeyList is the KEK's source and keys.
type KeyList struct {
	Source string    `json:"source"`
	Keys   []KeyView `json:"keys"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ *Call) error {
	if a.d.Keys == nil {
		return server.Errorf(server.CodeNotFound, "this server has no keyring")
	}
	infos, err := a.d.Keys.List(r.Context())
	if err != nil {
		return err
	}
	out := KeyList{Source: a.d.Keys.KEK().Source(), Keys: make([]KeyView, 0, len(infos))}
	for _, k := range infos {
		out.Keys = append(out.Keys, KeyView{ID: k.ID, Status: string(k.Status), DataKeys: k.DataKeys})
	}
	return WriteJSON(w, http.StatusOK, out)
}

// rotateKey adds a new primary key. The rotation is recorded before it
// is made (it is not a store write that could share the record's
// transaction), and its failure recorded after.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, c *Call) error {
	if a.d.Keys == nil {
		return server.Errorf(server.CodeNotFound, "this server has no keyring")
	}
	ctx := r.Context()
	ev := event(r, c, "key.rotate", "kek", nil)
	if err := a.recordFirst(ctx, ev); err != nil {
		return err
	}
	k, err := a.d.Keys.Rotate(ctx)
	if err != nil {
		a.recordFailed(ctx, ev, err)
		if errors.Is(err, keys.ErrReadOnlyKEK) {
			return &server.Error{Code: server.CodeConflict, Message: err.Error() + ": rotate it where it is managed", Err: err}
		}
		return err
	}
	return WriteJSON(w, http.StatusCreated, KeyView{ID: k.ID, Status: string(k.Status), DataKeys: k.DataKeys})
}
