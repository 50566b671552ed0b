package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/store"
)

// Export formats.
const (
	// FormatJSONL: one JSON object per line per event, with keys event
	// (the canonical encoding, byte for byte as hashed), hash, prev_hash
	// (lowercase hex) and seq. Enough to re-verify the chain without
	// sluice; see docs/audit.md.
	FormatJSONL = "jsonl"
	// FormatOCSF: one JSON object per line per event, shaped after the
	// OCSF 1.1 API Activity (class 6003) and Authentication (class 3002)
	// classes, for SIEMs. Not re-verifiable: it does not keep the hashed
	// bytes.
	FormatOCSF = "ocsf"
)

// exportPage is how many events Export and List read per query.
const exportPage = 1000

// List returns the events matching f, in seq order, decoded from their
// hashed encoding (not from the filter columns). f.Limit caps the result
// (0: no cap). An event that does not decode is an error naming it: run
// Verify.
func List(ctx context.Context, st store.Store, f store.AuditFilter) ([]Entry, error) {
	var out []Entry
	err := each(ctx, st, f, func(e Entry, _ []byte) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// each calls fn for every entry matching f (up to f.Limit, 0 meaning all)
// with its canonical bytes.
func each(ctx context.Context, st store.Store, f store.AuditFilter, fn func(Entry, []byte) error) error {
	limit := f.Limit
	var n int
	for {
		f.Limit = exportPage
		if limit > 0 {
			f.Limit = min(exportPage, limit-n)
		}
		page, err := st.ListAudit(ctx, f)
		if err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		for _, r := range page {
			ev, err := ParseCanonical(r.Event)
			if err != nil {
				return fmt.Errorf("audit event %d: %w (run 'sluice audit verify')", r.Seq, err)
			}
			if err := fn(Entry{Event: ev, Seq: r.Seq, PrevHash: r.PrevHash, Hash: r.Hash}, r.Event); err != nil {
				return err
			}
			f.AfterSeq = r.Seq
			n++
		}
		if len(page) < f.Limit || (limit > 0 && n >= limit) {
			return nil
		}
	}
}

// Export writes the events matching f to w in format (FormatJSONL or
// FormatOCSF) and returns how many it wrote.
func Export(ctx context.Context, st store.Store, w io.Writer, format string, f store.AuditFilter) (int64, error) {
	var line func(Entry, []byte) ([]byte, error)
	switch format {
	case FormatJSONL:
		line = jsonlLine
	case FormatOCSF:
		line = ocsfLine
	default:
		return 0, fmt.Errorf("exporting the audit log: format %q: want %q or %q", format, FormatJSONL, FormatOCSF)
	}
	bw := bufio.NewWriter(w)
	var n int64
	err := each(ctx, st, f, func(e Entry, canon []byte) error {
		b, err := line(e, canon)
		if err != nil {
			return fmt.Errorf("audit event %d: %w", e.Seq, err)
		}
		if _, err := bw.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		n++
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("exporting the audit log: %w", err)
	}
	return n, nil
}

// jsonlLine keeps the canonical bytes verbatim under "event", keys sorted.
func jsonlLine(e Entry, canon []byte) ([]byte, error) {
	b := make([]byte, 0, len(canon)+180)
	b = append(b, `{"event":`...)
	b = append(b, canon...)
	b = append(b, `,"hash":"`...)
	b = append(b, Hex(e.Hash)...)
	b = append(b, `","prev_hash":"`...)
	b = append(b, Hex(e.PrevHash)...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, '}')
	return b, nil
}

// OCSF shapes (the subset of OCSF 1.1 attributes sluice fills).
type (
	ocsfEvent struct {
		ActivityID   int               `json:"activity_id"`
		ActivityName string            `json:"activity_name"`
		CategoryUID  int               `json:"category_uid"`
		ClassUID     int               `json:"class_uid"`
		ClassName    string            `json:"class_name"`
		TypeUID      int               `json:"type_uid"`
		SeverityID   int               `json:"severity_id"`
		Time         int64             `json:"time"`
		StatusID     int               `json:"status_id"`
		Status       string            `json:"status"`
		StatusDetail string            `json:"status_detail,omitempty"`
		Actor        ocsfActor         `json:"actor"`
		User         *ocsfUser         `json:"user,omitempty"`
		API          *ocsfAPI          `json:"api,omitempty"`
		SrcEndpoint  *ocsfEndpoint     `json:"src_endpoint,omitempty"`
		Resources    []ocsfResource    `json:"resources,omitempty"`
		Metadata     ocsfMetadata      `json:"metadata"`
		Unmapped     map[string]string `json:"unmapped,omitempty"`
	}
	ocsfActor struct {
		User ocsfUser `json:"user"`
	}
	ocsfUser struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	}
	ocsfAPI struct {
		Operation string       `json:"operation"`
		Request   *ocsfRequest `json:"request,omitempty"`
	}
	ocsfRequest struct {
		UID string `json:"uid"`
	}
	ocsfEndpoint struct {
		IP       string `json:"ip,omitempty"`
		Port     int    `json:"port,omitempty"`
		Hostname string `json:"hostname,omitempty"`
	}
	ocsfResource struct {
		Type string `json:"type,omitempty"`
		Name string `json:"name"`
	}
	ocsfMetadata struct {
		Version string      `json:"version"`
		Product ocsfProduct `json:"product"`
		UID     string      `json:"uid"`
		LogName string      `json:"log_name"`
	}
	ocsfProduct struct {
		Name       string `json:"name"`
		VendorName string `json:"vendor_name"`
	}
)

// OCSF class and activity numbers used.
const (
	ocsfClassAPIActivity    = 6003 // category 6, Application Activity
	ocsfClassAuthentication = 3002 // category 3, Identity & Access Management
	ocsfActivityOther       = 99
)

// ocsfActivity maps an action's verb to an activity of its class. API
// Activity: 1 Create, 2 Read, 3 Update, 4 Delete. Authentication: 1 Logon,
// 2 Logoff. Anything else is 99 Other.
func ocsfActivity(class int, action string) (int, string) {
	verb := action
	if i := strings.LastIndexByte(action, '.'); i >= 0 {
		verb = action[i+1:]
	}
	if class == ocsfClassAuthentication {
		switch verb {
		case "login", "logon":
			return 1, "Logon"
		case "logout", "logoff":
			return 2, "Logoff"
		}
		return ocsfActivityOther, "Other"
	}
	switch verb {
	case "create", "add", "set", "trigger", "grant", "register", "backfill":
		return 1, "Create"
	case "read", "get", "list", "show", "decrypt", "export":
		return 2, "Read"
	case "update", "rotate", "rewrap", "resume", "cancel", "approve", "enable", "disable":
		return 3, "Update"
	case "delete", "rm", "remove", "retire", "revoke":
		return 4, "Delete"
	}
	return ocsfActivityOther, "Other"
}

func ocsfLine(e Entry, _ []byte) ([]byte, error) {
	class, category, className := ocsfClassAPIActivity, 6, "API Activity"
	if strings.HasPrefix(e.Action, "auth.") {
		class, category, className = ocsfClassAuthentication, 3, "Authentication"
	}
	activity, activityName := ocsfActivity(class, e.Action)
	user := ocsfUser{Name: actorName(e.Actor), UID: e.Actor}
	o := ocsfEvent{
		ActivityID: activity, ActivityName: activityName,
		CategoryUID: category, ClassUID: class, ClassName: className,
		TypeUID:    class*100 + activity,
		SeverityID: 1, // Informational
		Time:       e.Time.UnixMilli(),
		StatusID:   1, Status: "Success",
		Actor: ocsfActor{User: user},
		Metadata: ocsfMetadata{
			Version: "1.1.0",
			Product: ocsfProduct{Name: "sluice", VendorName: "sluice"},
			UID:     strconv.FormatInt(e.Seq, 10),
			LogName: "audit",
		},
		Unmapped: map[string]string{"sluice.source": string(e.Source), "sluice.outcome": string(e.Outcome), "sluice.hash": Hex(e.Hash)},
	}
	switch e.Outcome {
	case OutcomeDenied:
		o.StatusID, o.Status, o.StatusDetail = 2, "Failure", strings.TrimSuffix("denied: "+e.Reason, ": ")
	case OutcomeFailure:
		o.StatusID, o.Status, o.StatusDetail = 2, "Failure", e.Reason
	default:
		o.StatusDetail = e.Reason
	}
	if class == ocsfClassAuthentication {
		o.User = &user
	} else {
		o.API = &ocsfAPI{Operation: e.Action}
		if e.RequestID != "" {
			o.API.Request = &ocsfRequest{UID: e.RequestID}
		}
	}
	if e.Address != "" {
		o.SrcEndpoint = endpoint(e.Address)
	}
	if e.Resource != "" {
		typ, name, ok := strings.Cut(e.Resource, ":")
		if !ok {
			typ, name = "", e.Resource
		}
		o.Resources = []ocsfResource{{Type: typ, Name: name}}
	}
	for k, v := range e.Details {
		o.Unmapped["details."+k] = v
	}
	return json.Marshal(o)
}

// endpoint splits "host:port" (or a bare address) into an OCSF endpoint.
func endpoint(addr string) *ocsfEndpoint {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ep := &ocsfEndpoint{}
	if p, err := strconv.Atoi(port); err == nil {
		ep.Port = p
	}
	if net.ParseIP(host) != nil {
		ep.IP = host
	} else {
		ep.Hostname = host
	}
	return ep
}
