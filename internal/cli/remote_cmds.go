package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/client"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// The server-mode halves of the commands that can act on a server (see
// remote.go for which target a command uses). Each renders what the API
// returns with the same views as the local command where the API carries
// the same facts.

// remoteLogin is 'sluice login --server URL USER': it signs in through
// the API, asking for the password and, when the server says one is
// needed, the TOTP code, and saves the session for the server.
func remoteLogin(ctx context.Context, e *env, serverURL, caFile, name, code string, recovery bool) error {
	u, err := client.ParseServer(serverURL)
	if err != nil {
		return exitWith(ExitUsage, fmt.Errorf("--server: %w", err))
	}
	server := u.String()
	var roots []byte
	if caFile != "" {
		if caFile, err = filepath.Abs(caFile); err != nil {
			return exitWith(ExitUsage, fmt.Errorf("--ca-cert: %w", err))
		}
		if roots, err = readRoots(caFile); err != nil {
			return exitWith(ExitUsage, fmt.Errorf("--ca-cert: %w", err))
		}
	}
	r, err := e.newRemote(server, roots, "", serverLogin{Server: server})
	if err != nil {
		return err
	}
	defer r.c.Close()
	// The connection is checked first: nobody should type a password for
	// a server the CLI will not talk to.
	if err := r.c.Ping(ctx); err != nil {
		return e.fail(r, err)
	}
	pr := newPrompter(e)
	pw, err := pr.secret("password for " + name + " on " + server)
	if err != nil {
		return exitWith(ExitUsage, fmt.Errorf("no password given: %w", err))
	}
	req := api.LoginRequest{Username: name, Password: pw}
	setCode := func(c string) {
		if recovery {
			req.RecoveryCode = c
		} else {
			req.TOTPCode = c
		}
	}
	setCode(code)
	resp, err := r.c.Login(ctx, req)
	if err != nil && code == "" && codeRequired(err) {
		c, perr := pr.secret("authenticator code")
		if perr != nil {
			return exitWith(ExitFailure, fmt.Errorf("%s has an authenticator: give its code with --code: %w", name, perr))
		}
		setCode(c)
		resp, err = r.c.Login(ctx, req)
	}
	if err != nil {
		return exitWith(ExitFailure, fmt.Errorf("signing in to %s: %w", server, err))
	}
	dir, err := e.serversPath()
	if err != nil {
		return exitWith(ExitFailure, err)
	}
	if old, ok, _ := readServerLogin(filepath.Join(dir, serverKey(server))); ok {
		// Signing in again replaces the saved session: end the old one
		// (best effort: it may have ended already).
		if oc, err := client.New(client.Options{Server: server, RootPEM: []byte(old.CACert), Credential: old.Session}); err == nil {
			_ = oc.Logout(ctx)
			oc.Close()
		}
	}
	l := serverLogin{Server: server, User: resp.User.Username, Session: resp.Secret, ExpiresAt: resp.ExpiresAt,
		CAFile: caFile, CACert: string(roots)}
	if l.User == "" {
		l.User = name
	}
	if _, err := e.saveServerLogin(l); err != nil {
		return exitWith(ExitFailure, err)
	}
	if e.json() {
		return e.writeJSON(map[string]any{"server": server, "user": l.User, "mfa": resp.User.MFA,
			"session": resp.SessionID, "expires_at": resp.ExpiresAt})
	}
	fmt.Fprintf(e.stdout, "signed in to %s as %s (MFA: %t) until %s at the latest\n", server, l.User, resp.User.MFA,
		resp.ExpiresAt.Local().Format(time.DateTime))
	fmt.Fprintln(e.stdout, "commands now act on this server; --local acts on the local state directory, 'sluice logout' ends the login")
	return nil
}

// codeRequired reports whether a failed sign-in asks for a second factor.
func codeRequired(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == 401 && strings.Contains(strings.ToLower(ce.Message), "code is required")
}

// remoteLogout ends the saved login's session on the server and removes
// the saved login.
func remoteLogout(ctx context.Context, e *env, r *remote) error {
	defer r.c.Close()
	if r.path == "" {
		return exitWith(ExitFailure, fmt.Errorf("no login is saved for %s (the API token in %s is revoked with 'sluice token revoke')", r.server, EnvToken))
	}
	if err := r.c.Logout(ctx); err != nil && client.StatusOf(err) != 401 {
		return e.fail(r, err)
	}
	if err := e.removeServerLogin(r.path); err != nil {
		return exitWith(ExitFailure, err)
	}
	if e.json() {
		return e.writeJSON(map[string]any{"server": r.server, "signed_out": true})
	}
	fmt.Fprintf(e.stdout, "signed out of %s\n", r.server)
	return nil
}

// remoteWhoami shows the caller as the server sees them, and which server.
func remoteWhoami(ctx context.Context, e *env, r *remote) error {
	defer r.c.Close()
	m, err := r.c.Me(ctx)
	if err != nil {
		return e.fail(r, err)
	}
	v := struct {
		Actor     string    `json:"actor"`
		Server    string    `json:"server"`
		Method    string    `json:"method"`
		Groups    []string  `json:"groups,omitempty"`
		MFA       bool      `json:"mfa"`
		Scope     []string  `json:"token_scope,omitempty"`
		ExpiresAt time.Time `json:"expires_at,omitzero"`
		CAFile    string    `json:"ca_file,omitempty"`
	}{Actor: "user:" + m.Username, Server: r.server, Method: m.Method, Groups: m.Groups, MFA: m.MFA, Scope: m.Scopes,
		ExpiresAt: r.login.ExpiresAt, CAFile: r.login.CAFile}
	if e.json() {
		return e.writeJSON(v)
	}
	fmt.Fprintf(e.stdout, "%s (MFA: %t) on %s\n", v.Actor, v.MFA, v.Server)
	if len(v.Groups) > 0 {
		fmt.Fprintf(e.stdout, "groups: %s\n", strings.Join(v.Groups, ", "))
	}
	if v.Scope != nil {
		fmt.Fprintf(e.stdout, "token scope: %s\n", strings.Join(v.Scope, ", "))
	}
	if !v.ExpiresAt.IsZero() {
		fmt.Fprintf(e.stdout, "session ends %s at the latest\n", v.ExpiresAt.Local().Format(time.DateTime))
	}
	if v.CAFile != "" {
		fmt.Fprintf(e.stdout, "trusting the certificate pinned from %s\n", v.CAFile)
	}
	return nil
}

// viewAPIRun is a run from the API as the local commands show one. The
// API does not say which file a run was read from, so File is empty.
func viewAPIRun(r api.Run) runView {
	return runView{
		ID: r.ID, Namespace: r.Namespace, Pipeline: r.Pipeline, Version: r.Version,
		LogicalDate: r.LogicalDate, Params: r.Params, Trigger: r.Trigger, State: store.RunState(r.State), Error: r.Error,
		CreatedAt: r.CreatedAt, StartedAt: timePtr(r.StartedAt), EndedAt: timePtr(r.EndedAt),
		DurationMS: span(r.StartedAt, r.EndedAt).Milliseconds(),
	}
}

// apiSummary is a run with its tasks from the API, as 'sluice show'
// renders one.
func apiSummary(r api.Run) summary {
	s := summary{Run: viewAPIRun(r), Tasks: []taskView{}}
	for _, t := range r.Tasks {
		s.Tasks = append(s.Tasks, taskView{
			Task: t.Task, State: store.TaskState(t.State), Attempts: t.Attempts,
			StartedAt: timePtr(t.StartedAt), EndedAt: timePtr(t.EndedAt),
			DurationMS: span(t.StartedAt, t.EndedAt).Milliseconds(), ExitCode: t.ExitCode,
			RowsIn: t.RowsIn, RowsOut: t.RowsOut, RowsQuarantined: t.RowsQuarantined, Output: t.Output, Error: t.Error,
		})
	}
	return s
}

func remoteRuns(ctx context.Context, e *env, r *remote, f client.RunFilter) error {
	defer r.c.Close()
	runs, err := r.c.ListRuns(ctx, f)
	if err != nil {
		return e.fail(r, err)
	}
	views := make([]runView, 0, len(runs))
	for _, run := range runs {
		views = append(views, viewAPIRun(run))
	}
	return writeRuns(e, views)
}

func remoteShow(ctx context.Context, e *env, r *remote, id string) error {
	defer r.c.Close()
	run, err := r.c.GetRun(ctx, id)
	if err != nil {
		return e.fail(r, err)
	}
	s := apiSummary(run)
	for _, t := range run.Tasks {
		atts, err := r.c.ListAttempts(ctx, id, t.Task)
		if err != nil {
			return e.fail(r, err)
		}
		for _, at := range atts {
			s.Attempts = append(s.Attempts, attemptView{
				Task: t.Task, Number: at.Number, Outcome: store.Outcome(at.Outcome), StartedAt: at.StartedAt,
				EndedAt: timePtr(at.EndedAt), ExitCode: at.ExitCode, RowsIn: at.RowsIn, RowsOut: at.RowsOut,
				RowsQuarantined: at.RowsQuarantined, Error: at.Error,
			})
		}
	}
	if e.json() {
		return e.writeJSON(s)
	}
	printSummary(e, s)
	return printAttempts(e, s.Attempts)
}

// remoteLogs prints the logs of a run's task attempts as the local
// command does: every attempt of one task, or of each task of the run in
// order (only attempt number attempt when it is not 0). Text output is
// streamed as the server sends it; --output json collects it first.
func remoteLogs(ctx context.Context, e *env, r *remote, id, task string, attempt int) error {
	defer r.c.Close()
	tasks := []string{task}
	if task == "" {
		run, err := r.c.GetRun(ctx, id)
		if err != nil {
			return e.fail(r, err)
		}
		tasks = tasks[:0]
		for _, t := range run.Tasks {
			tasks = append(tasks, t.Task)
		}
	}
	type logEntry struct {
		Task    string `json:"task"`
		Attempt int    `json:"attempt"`
		Log     string `json:"log"`
	}
	var entries []logEntry
	for _, t := range tasks {
		atts, err := r.c.ListAttempts(ctx, id, t)
		if err != nil {
			return e.fail(r, err)
		}
		for _, at := range atts {
			if attempt != 0 && at.Number != attempt {
				continue
			}
			if e.json() {
				var b bytes.Buffer
				if _, err := r.c.StreamLog(ctx, id, t, at.Number, &b); err != nil {
					return e.fail(r, err)
				}
				entries = append(entries, logEntry{Task: t, Attempt: at.Number, Log: b.String()})
				continue
			}
			fmt.Fprintf(e.stdout, "==> %s attempt %d <==\n", t, at.Number)
			tail := &lastByte{w: e.stdout}
			if _, err := r.c.StreamLog(ctx, id, t, at.Number, tail); err != nil {
				return e.fail(r, err)
			}
			if tail.n > 0 && tail.last != '\n' {
				fmt.Fprintln(e.stdout)
			}
		}
	}
	if e.json() {
		return e.writeJSON(entries)
	}
	return nil
}

// lastByte passes writes through and remembers the last byte written.
type lastByte struct {
	w    interface{ Write([]byte) (int, error) }
	n    int64
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.n += int64(n)
		l.last = p[n-1]
	}
	return n, err
}

// remoteTrigger queues a run on the server. Without detach it then
// follows the run until it ends and prints its summary, as the local
// command does after executing it; the exit code is the run's.
func remoteTrigger(ctx context.Context, e *env, r *remote, ns, name string, params map[string]string, date string, detach bool) error {
	defer r.c.Close()
	run, err := r.c.Trigger(ctx, ns, name, api.TriggerRequest{Params: params, LogicalDate: date})
	if err != nil {
		return e.fail(r, err)
	}
	if detach {
		if e.json() {
			return e.writeJSON(map[string]any{"run": run.ID, "state": run.State, "server": r.server, "sha256": run.Version})
		}
		fmt.Fprintf(e.stdout, "run %s of %s/%s queued on %s\n", run.ID, ns, name, r.server)
		return nil
	}
	if !e.json() {
		fmt.Fprintf(e.stdout, "run %s of %s/%s queued on %s; following it (Ctrl-C stops following, not the run)\n", run.ID, ns, name, r.server)
	}
	run, err = followRun(ctx, r, run)
	if err != nil {
		return e.fail(r, err)
	}
	s := apiSummary(run)
	if e.json() {
		if err := e.writeJSON(s); err != nil {
			return err
		}
	} else {
		printSummary(e, s)
	}
	switch store.RunState(run.State) {
	case store.RunSuccess:
		return nil
	case store.RunCancelled:
		return exitWith(ExitCancelled, nil)
	default:
		return exitWith(ExitFailure, nil)
	}
}

// followRun polls a run until it is done: every 200ms at first, slowing
// to every 2s, so a short run is seen at once and a long one costs the
// server little.
func followRun(ctx context.Context, r *remote, run api.Run) (api.Run, error) {
	wait := 200 * time.Millisecond
	for !store.RunState(run.State).Done() {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return run, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
		var err error
		if run, err = r.c.GetRun(ctx, run.ID); err != nil {
			return run, err
		}
	}
	return run, nil
}

// accessOf is a version from the API as the access package has it, so
// that the local views and tables render it.
func accessOf(v api.Version) access.Version {
	return access.Version{Namespace: v.Namespace, Pipeline: v.Pipeline, Number: v.Number, Hash: v.Hash, Content: []byte(v.Content),
		Author: v.Author, CreatedAt: v.CreatedAt, Diff: v.Diff, Approved: v.Approved, Approver: v.Approver, ApprovedAt: v.ApprovedAt}
}

// remotePush validates a pipeline file here (so that its errors carry
// positions in the file) and pushes it; the server validates it again.
func remotePush(ctx context.Context, e *env, r *remote, file string) error {
	defer r.c.Close()
	content, err := os.ReadFile(file)
	if err != nil {
		return exitWith(ExitFailure, fmt.Errorf("reading pipeline: %w", err))
	}
	pl, err := pipeline.Parse(file, content, pipeline.Options{})
	if err != nil {
		return exitWith(ExitFailure, err)
	}
	av, created, err := r.c.PushVersion(ctx, pl.Namespace, pl.Name, content)
	if err != nil {
		return e.fail(r, err)
	}
	if created {
		// The push answer leaves the diff out; the version's own read
		// has it, for the same output as a local push.
		if full, err := r.c.GetVersion(ctx, av.Namespace, av.Pipeline, av.Number); err == nil {
			av.Diff = full.Diff
		}
	}
	v := accessOf(av)
	if e.json() {
		return e.writeJSON(struct {
			versionView
			Unchanged bool `json:"unchanged"`
		}{viewVersion(v, true), !created})
	}
	if !created {
		fmt.Fprintf(e.stdout, "%s unchanged: same content as version %d (sha256 %s)\n", v, v.Number, v.Hash)
		return nil
	}
	fmt.Fprintf(e.stdout, "pushed %s to %s: version %d, sha256 %s\n", v, r.server, v.Number, v.Hash)
	fmt.Fprint(e.stdout, v.Diff)
	fmt.Fprintf(e.stdout, "someone other than %s approves it with: sluice pipeline approve %s/%s %d\n",
		v.Author, v.Namespace, v.Pipeline, v.Number)
	return nil
}

func remoteApprove(ctx context.Context, e *env, r *remote, ns, name string, n int) error {
	defer r.c.Close()
	av, err := r.c.ApproveVersion(ctx, ns, name, n)
	if err != nil {
		return e.fail(r, err)
	}
	v := accessOf(av)
	if e.json() {
		return e.writeJSON(viewVersion(v, false))
	}
	fmt.Fprintf(e.stdout, "approved %s (sha256 %s, author %s)\n", v, v.Hash, v.Author)
	return nil
}

func remoteVersions(ctx context.Context, e *env, r *remote, ns, name string) error {
	defer r.c.Close()
	avs, err := r.c.ListVersions(ctx, ns, name)
	if err != nil {
		return e.fail(r, err)
	}
	if len(avs) == 0 {
		return exitWith(ExitFailure, fmt.Errorf("pipeline %s/%s: no versions pushed: %w", ns, name, store.ErrNotFound))
	}
	vs := make([]access.Version, len(avs))
	for i, v := range avs {
		vs[i] = accessOf(v)
	}
	// The API lists newest first; the local command oldest first.
	slices.SortFunc(vs, func(a, b access.Version) int { return a.Number - b.Number })
	return writeVersions(e, vs)
}

// writeVersions renders pipeline versions as 'sluice pipeline versions'
// does: a table, or JSON.
func writeVersions(e *env, vs []access.Version) error {
	if e.json() {
		views := make([]versionView, len(vs))
		for i, v := range vs {
			views[i] = viewVersion(v, false)
		}
		return e.writeJSON(views)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSHA256\tAUTHOR\tCREATED\tAPPROVED BY\tAPPROVED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Number, v.Hash[:min(12, len(v.Hash))], v.Author, accessTime(v.CreatedAt),
			accessDash(v.Approver), accessTime(v.ApprovedAt))
	}
	return tw.Flush()
}
