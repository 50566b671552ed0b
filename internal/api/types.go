package api

import "time"

// The wire types shared by the handlers and by the CLI's client
// (internal/client): one definition, so both sides agree. Times are UTC,
// RFC 3339; zero times are omitted.

// LoginRequest signs in with a password and, when the account has MFA,
// a TOTP code or a recovery code (POST /api/v1/auth/login).
type LoginRequest struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	TOTPCode     string `json:"totp_code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
	// Bearer asks for the session secret in the response body instead of
	// a cookie: the CLI keeps it in a 0600 file and sends it as
	// Authorization: Bearer.
	Bearer bool `json:"bearer,omitempty"`
}

// LoginResponse describes the session opened.
type LoginResponse struct {
	User      Me        `json:"user"`
	SessionID string    `json:"session_id"`
	ExpiresAt time.Time `json:"expires_at"`
	// Secret is the session secret, only when the request asked Bearer.
	Secret string `json:"secret,omitempty"`
	// CSRFToken is what a browser sends back in X-CSRF-Token with the
	// cookie (cookie sessions only).
	CSRFToken string `json:"csrf_token,omitempty"`
}

// Run is a pipeline run.
type Run struct {
	ID          string            `json:"id"`
	Namespace   string            `json:"namespace"`
	Pipeline    string            `json:"pipeline"`
	Version     string            `json:"version"` // SHA-256 of the pipeline file run
	LogicalDate string            `json:"logical_date"`
	Params      map[string]string `json:"params"`
	Trigger     string            `json:"trigger"`
	State       string            `json:"state"`
	Error       string            `json:"error,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	StartedAt   time.Time         `json:"started_at,omitzero"`
	EndedAt     time.Time         `json:"ended_at,omitzero"`
	// Tasks are present on GET /runs/{id}, absent in lists.
	Tasks []TaskRun `json:"tasks,omitempty"`
}

// TaskRun is one task of a run.
type TaskRun struct {
	Task            string    `json:"task"`
	State           string    `json:"state"`
	Attempts        int       `json:"attempts"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	Error           string    `json:"error,omitempty"`
	ExitCode        *int      `json:"exit_code,omitempty"`
	RowsIn          int64     `json:"rows_in"`
	RowsOut         int64     `json:"rows_out"`
	RowsQuarantined int64     `json:"rows_quarantined"`
	Output          string    `json:"output,omitempty"` // dataset (artifact) id
}

// TriggerRequest starts a manual run
// (POST /api/v1/pipelines/{namespace}/{name}/runs).
type TriggerRequest struct {
	Params      map[string]string `json:"params,omitempty"`
	LogicalDate string            `json:"logical_date,omitempty"`
}

// Version is one version of a pipeline file.
type Version struct {
	Namespace  string    `json:"namespace"`
	Pipeline   string    `json:"pipeline"`
	Number     int       `json:"number"`
	Hash       string    `json:"hash"`
	Author     string    `json:"author"`
	CreatedAt  time.Time `json:"created_at"`
	Approved   bool      `json:"approved"`
	Approver   string    `json:"approver,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	// Diff against the previous version and Content are present on
	// single-version reads, absent in lists.
	Diff    string `json:"diff,omitempty"`
	Content string `json:"content,omitempty"`
}

// PushRequest pushes a pipeline file as the next version
// (POST /api/v1/pipelines/{namespace}/{name}/versions).
type PushRequest struct {
	Content string `json:"content"`
}
