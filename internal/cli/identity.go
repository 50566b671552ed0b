package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/store"
)

// Who runs a command.
//
// A state directory without users is a single-operator installation
// ("bootstrap mode"): the operating-system user running sluice may do
// everything, and is named "local:<os user>" in the audit log. 'sluice
// init' creates the first user and so turns access control on for good:
// from then on every command needs a signed-in user (a session saved by
// 'sluice login', or an API token in SLUICE_TOKEN) and each action is
// decided by the access package. There is no way back to bootstrap mode,
// since users cannot be deleted, only disabled.

// Environment variables read by the identity resolution.
const (
	// EnvToken holds an API token; when set it takes precedence over a
	// saved session.
	EnvToken = "SLUICE_TOKEN"
	// EnvConfigDir replaces <user config dir>/sluice, where sessions are
	// saved.
	EnvConfigDir = "SLUICE_CONFIG_DIR"
)

// errSignIn is returned when the state directory has users and the caller
// has no credential.
var errSignIn = errors.New("sign in with 'sluice login USER' (or set " + EnvToken + ")")

// Principal is who runs a command.
type Principal struct {
	// Actor names them in the audit log: "user:alice", or "local:root" for
	// the operator of an installation without users.
	Actor string
	// Subject is what the access package decides on. For the local
	// operator its User is the Actor, which no binding names.
	Subject access.Subject
	// User is the signed-in account; nil for the local operator.
	User *auth.User
}

// Local reports whether p is the operator of an installation without
// users (bootstrap mode).
func (p Principal) Local() bool { return p.User == nil }

// principal resolves who runs the command: the owner of the API token in
// SLUICE_TOKEN, else the user of the session saved by 'sluice login' for
// this state directory, else, when the store has no users at all, the
// local operator. Otherwise it fails with exit 1, asking to sign in.
func (e *env) principal(ctx context.Context, a *app.App) (Principal, error) {
	if tok := e.getenv(EnvToken); tok != "" {
		t, u, err := a.Auth.AuthenticateToken(ctx, tok)
		if err != nil {
			return Principal{}, exitWith(ExitFailure, fmt.Errorf("authenticating with %s: %w", EnvToken, err))
		}
		scope, err := access.ParsePermissions(t.Scopes)
		if err != nil {
			return Principal{}, exitWith(ExitFailure, fmt.Errorf("token %s: %w", t.ID, err))
		}
		if scope == nil {
			scope = []access.Permission{}
		}
		return userPrincipal(u, false, scope), nil
	}
	path, err := e.sessionPath(a.Config.Home)
	if err != nil {
		return Principal{}, exitWith(ExitFailure, err)
	}
	if secret, err := readSession(path); err != nil {
		return Principal{}, exitWith(ExitFailure, err)
	} else if secret != "" {
		s, u, err := a.Auth.AuthenticateSession(ctx, secret)
		if err != nil {
			if errors.Is(err, auth.ErrExpired) || errors.Is(err, auth.ErrRevoked) || errors.Is(err, auth.ErrInvalidCredentials) {
				_ = os.Remove(path) // the session is over; a stale file only confuses
				return Principal{}, exitWith(ExitFailure, fmt.Errorf("your session has ended (%w): %w", err, errSignIn))
			}
			return Principal{}, exitWith(ExitFailure, fmt.Errorf("checking the saved session: %w", err))
		}
		return userPrincipal(u, s.MFA, nil), nil
	}
	users, err := a.Store.ListUsers(ctx)
	if err != nil {
		return Principal{}, exitWith(ExitFailure, fmt.Errorf("checking for users: %w", err))
	}
	if len(users) == 0 {
		who := actor(e)
		return Principal{Actor: who, Subject: access.Subject{User: who}}, nil
	}
	return Principal{}, exitWith(ExitFailure, errSignIn)
}

func userPrincipal(u auth.User, mfa bool, scope []access.Permission) Principal {
	return Principal{
		Actor:   "user:" + u.Username,
		Subject: access.Subject{User: u.Username, Groups: u.Groups, MFA: mfa, TokenScope: scope},
		User:    &u,
	}
}

// authorize decides whether p may use perm on res. The local operator of
// an installation without users may do everything: no separate decision
// is recorded, but the action's own audit record names the local operator
// and says it was allowed in bootstrap mode (see Principal.stamp). A
// signed-in user goes through the access service, which records privileged
// decisions; a denial of any permission is recorded, and ends the command
// with exit 1 and the reason.
func (e *env) authorize(ctx context.Context, a *app.App, p Principal, perm access.Permission, res access.Resource) error {
	if p.Local() {
		return nil
	}
	d, err := a.Access.Authorize(ctx, p.Subject, perm, res)
	if err == nil {
		return nil
	}
	if !errors.Is(err, access.ErrDenied) {
		return exitWith(ExitFailure, fmt.Errorf("authorizing %s: %w", perm, err))
	}
	if info, known := access.Lookup(perm); !known || !info.Privileged {
		// Authorize records privileged decisions itself; record the
		// other denials here, so that every refusal is in the log.
		ev := decisionEvent(p, perm, res, audit.OutcomeDenied, d.Reason)
		if rerr := audit.Record(ctx, a.Store, ev); rerr != nil {
			return exitWith(ExitFailure, errors.Join(err, rerr))
		}
	}
	return exitWith(ExitFailure, err)
}

// stamp names p as the actor of an action's audit event; for the local
// operator it also records that the action was allowed in bootstrap mode.
func (p Principal) stamp(ev *audit.Event) {
	ev.Actor = p.Actor
	if p.Local() {
		if ev.Details == nil {
			ev.Details = map[string]string{}
		}
		ev.Details["authorization"] = "bootstrap"
	}
}

func decisionEvent(p Principal, perm access.Permission, res access.Resource, outcome audit.Outcome, reason string) audit.Event {
	ev := audit.Event{
		Actor: p.Actor, Action: access.ActDecide, Resource: string(res.Type) + ":" + res.Name,
		Outcome: outcome, Reason: reason, Source: audit.SourceCLI,
		Details: map[string]string{"permission": string(perm), "mfa": strconv.FormatBool(p.Subject.MFA)},
	}
	if res.Namespace != "" {
		ev.Details["namespace"] = res.Namespace
	}
	return ev
}

// configDir is where sluice keeps per-user files: $SLUICE_CONFIG_DIR, or
// <user config dir>/sluice.
func (e *env) configDir() (string, error) {
	if d := e.getenv(EnvConfigDir); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the configuration directory (set %s): %w", EnvConfigDir, err)
	}
	return filepath.Join(d, "sluice"), nil
}

// sessionPath is the file holding the session saved for the state
// directory home: sessions/<hashKey(absolute home)>, so that each state
// directory has its own sign-in.
func (e *env) sessionPath(home string) (string, error) {
	dir, err := e.configDir()
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("state directory %q: %w", home, err)
	}
	return filepath.Join(dir, "sessions", hashKey(abs)), nil
}

// hashKey names a saved credential file after what it belongs to (a state
// directory, a server URL): the first 16 hex digits of its SHA-256.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// savedSession is the content of a session file.
type savedSession struct {
	Home    string `json:"home"`
	User    string `json:"user"`
	Session string `json:"session"`
}

// readSession returns the session secret saved at path, or "" when there
// is none.
func readSession(path string) (string, error) {
	var s savedSession
	if _, err := readSaved(path, "saved session", &s, func() bool { return s.Session != "" }); err != nil {
		return "", err
	}
	return s.Session, nil
}

// writeSession saves a session secret at path (see writePrivate): it is a
// bearer credential.
func writeSession(path string, s savedSession) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the session: %w", err)
	}
	return writePrivate(path, b)
}

// readSaved reads the saved credential file at path (a session or a
// server login, named by what in errors) into v. ok is false when there is
// none; a file that is not JSON, or for which complete says false, is
// malformed.
func readSaved(path, what string, v any, complete func() bool) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the %s: %w", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil || !complete() {
		return false, fmt.Errorf("%s %s is malformed: remove it and sign in again", what, path)
	}
	return true, nil
}

// writePrivate writes b to path atomically (temporary file, then rename),
// mode 0600 in a directory restricted to 0700: what it writes is a
// credential, or says which one is in use.
func writePrivate(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, loginDirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, loginDirMode); err != nil {
		return fmt.Errorf("restricting %s to 0700: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(loginFileMode); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

// signedIn resolves who runs the command and authorizes perm on res for
// them: the first thing an action command does.
func (e *env) signedIn(ctx context.Context, a *app.App, perm access.Permission, res access.Resource) (Principal, error) {
	p, err := e.principal(ctx, a)
	if err != nil {
		return Principal{}, err
	}
	if err := e.authorize(ctx, a, p, perm, res); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// signedInForRun is signedIn for perm on the run runID, in its namespace.
// An unknown run is left to the command to report.
func (e *env) signedInForRun(ctx context.Context, a *app.App, perm access.Permission, runID string) (Principal, error) {
	res := access.Resource{Type: access.ResRun, Name: runID}
	switch perm {
	case access.LogRead:
		res.Type = access.ResLog
	}
	r, err := a.Store.GetRun(ctx, runID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return Principal{}, fmt.Errorf("reading run %s: %w", runID, err)
	default:
		res.Namespace = r.Namespace
	}
	return e.signedIn(ctx, a, perm, res)
}

// mayRead reports whether p may use perm on res, for filtering listings:
// nothing is recorded, since nothing is acted on.
func mayRead(ctx context.Context, a *app.App, p Principal, perm access.Permission, res access.Resource) bool {
	return p.Local() || a.Access.Decide(ctx, p.Subject, perm, res).Allowed
}
