package api

import (
	"net/http"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// The audit log through the API, as 'sluice audit log', 'verify' and
// 'export' read it: audit.read to list and verify, audit.export to
// export, both on the resource "audit:log" and privileged, so every read
// of the log is itself in the log (the access service records the
// decision). Nothing here writes to or deletes from the log: there is no
// such operation anywhere.

// auditRoutes are the audit endpoints.
func (a *API) auditRoutes() []Route {
	log := func(*http.Request, *API) (access.Resource, error) {
		return access.Resource{Type: access.ResAudit, Name: "log"}, nil
	}
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/audit", Summary: "audit events, oldest first, filtered by actor, action, resource or time",
			Rule: Need(access.AuditRead, log), Handle: a.listAudit},
		{Method: http.MethodPost, Pattern: Prefix + "/audit/verify", Summary: "check the hash chain and the signed checkpoints",
			Rule: Need(access.AuditRead, log), Handle: a.verifyAudit},
		{Method: http.MethodGet, Pattern: Prefix + "/audit/export", Summary: "the whole audit log as JSON lines (re-verifiable) or OCSF",
			Rule: Need(access.AuditExport, log), Handle: a.exportAudit},
	}
}

// AuditEntry is one event of the audit log with its place in the chain:
// the one JSON form of an audit entry, in the API and in the CLI's
// --output json.
type AuditEntry struct {
	Seq       int64             `json:"seq"`
	Time      time.Time         `json:"time"`
	Actor     string            `json:"actor"`
	Action    string            `json:"action"`
	Resource  string            `json:"resource"`
	Outcome   string            `json:"outcome"`
	Reason    string            `json:"reason,omitempty"`
	Source    string            `json:"source"`
	Address   string            `json:"address,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	Hash      string            `json:"hash"`
}

// ViewAuditEntry is the JSON form of en.
func ViewAuditEntry(en audit.Entry) AuditEntry {
	return AuditEntry{Seq: en.Seq, Time: en.Time.UTC(), Actor: en.Actor, Action: en.Action,
		Resource: en.Resource, Outcome: string(en.Outcome), Reason: en.Reason, Source: string(en.Source),
		Address: en.Address, RequestID: en.RequestID, Details: en.Details, Hash: audit.Hex(en.Hash)}
}

// parseAuditTime reads the since or until parameter (audit.ParseTime).
func parseAuditTime(name, s string, now time.Time) (time.Time, error) {
	t, err := audit.ParseTime(s, now)
	if err != nil {
		return t, server.Errorf(server.CodeInvalid, "query parameter %s: %s", name, err.Error())
	}
	return t, nil
}

// auditFilter reads the filters of GET /audit and /audit/export.
func (a *API) auditFilter(r *http.Request) (store.AuditFilter, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Resource: q.Get("resource")}
	var err error
	now := a.d.Clock.Now()
	if f.Since, err = parseAuditTime("since", q.Get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = parseAuditTime("until", q.Get("until"), now); err != nil {
		return f, err
	}
	return f, nil
}

// listAudit pages through the log by sequence number: the cursor is the
// last seq seen, so a page never shifts as events are appended.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request, _ *Call) error {
	f, err := a.auditFilter(r)
	if err != nil {
		return err
	}
	limit, err := Paging(r, &f.AfterSeq)
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	entries, err := audit.List(r.Context(), a.d.Store, f)
	if err != nil {
		return err
	}
	next := ""
	if len(entries) > limit {
		entries = entries[:limit]
		next = Cursor(entries[limit-1].Seq)
	}
	views := make([]AuditEntry, 0, len(entries))
	for _, en := range entries {
		views = append(views, ViewAuditEntry(en))
	}
	return WriteJSON(w, http.StatusOK, NewPage(views, next))
}

// VerifyReport is the result of verifying the audit log. OK is false
// when a problem was found; FirstBad is the seq of the first bad event.
type VerifyReport struct {
	OK             bool            `json:"ok"`
	Events         int64           `json:"events"`
	LastSeq        int64           `json:"last_seq"`
	Head           string          `json:"head"`
	Checkpoints    int             `json:"checkpoints"`
	LastCheckpoint int64           `json:"last_checkpoint"`
	FirstBad       int64           `json:"first_bad,omitempty"`
	Problems       []audit.Problem `json:"problems"`
}

// verifyAudit walks the whole chain and every checkpoint, checking the
// signing keys against the keyring. A broken chain is a finding, answered
// 200 with ok false, not an error of the request.
func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, _ *Call) error {
	var (
		rep audit.Report
		err error
	)
	if a.d.Keys != nil {
		rep, err = audit.NewCheckpointer(a.d.Store, a.d.Keys, audit.CheckpointOptions{}).Verify(r.Context())
	} else {
		rep, err = audit.Verify(r.Context(), a.d.Store)
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, VerifyReport{OK: rep.OK(), Events: rep.Events, LastSeq: rep.LastSeq,
		Head: audit.Hex(rep.LastHash), Checkpoints: rep.Checkpoints, LastCheckpoint: rep.LastCheckpoint,
		FirstBad: rep.FirstBad(), Problems: nonNil(rep.Problems)})
}

// exportAudit streams the log matching the filters. JSON lines keep each
// event's hashed encoding verbatim, so the export can be verified away
// from the server; OCSF is for a SIEM. Once streaming has begun an error
// can only end the response early: it is logged with the request id.
func (a *API) exportAudit(w http.ResponseWriter, r *http.Request, _ *Call) error {
	f, err := a.auditFilter(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = audit.FormatJSONL
	}
	if format != audit.FormatJSONL && format != audit.FormatOCSF {
		return server.Errorf(server.CodeInvalid, "query parameter format: %q: want %s or %s", format, audit.FormatJSONL, audit.FormatOCSF)
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="sluice-audit.`+format+`"`)
	w.WriteHeader(http.StatusOK)
	if _, err := audit.Export(r.Context(), a.d.Store, w, format, f); err != nil {
		server.Logger(r.Context()).Error("audit export ended early", "error", err)
	}
	return nil
}
