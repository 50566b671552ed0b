package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sluicehq/sluice/internal/api"
)

// Ping checks that the server answers over a connection the client
// trusts (GET /healthz), before anything secret is sent to it.
func (c *Client) Ping(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Login signs in with req (Bearer is set: the session secret comes back in
// the response, for the caller to keep and send as the credential). It
// needs no credential. A missing or wrong second factor is an *Error with
// status 401.
func (c *Client) Login(ctx context.Context, req api.LoginRequest) (api.LoginResponse, error) {
	req.Bearer = true
	var out api.LoginResponse
	if err := c.Do(ctx, http.MethodPost, api.Prefix+"/auth/login", nil, req, &out); err != nil {
		return api.LoginResponse{}, err
	}
	if out.Secret == "" {
		return api.LoginResponse{}, fmt.Errorf("POST %s/auth/login: the server returned no session secret", api.Prefix)
	}
	return out, nil
}

// Logout ends the session whose secret is the client's credential.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, api.Prefix+"/auth/logout", nil, nil, nil)
}

// Me returns the caller as the server sees them.
func (c *Client) Me(ctx context.Context) (api.Me, error) {
	var m api.Me
	err := c.Do(ctx, http.MethodGet, api.Prefix+"/me", nil, nil, &m)
	return m, err
}

// RunFilter selects runs for ListRuns; zero fields select everything.
type RunFilter struct {
	Namespace, Pipeline, State string
	// Limit is how many runs to return at most; <= 0 means all.
	Limit int
}

// ListRuns lists runs newest first, following pages until f.Limit.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) ([]api.Run, error) {
	q := url.Values{}
	for k, v := range map[string]string{"namespace": f.Namespace, "pipeline": f.Pipeline, "state": f.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return List[api.Run](ctx, c, api.Prefix+"/runs", q, f.Limit)
}

// GetRun returns a run with its tasks.
func (c *Client) GetRun(ctx context.Context, id string) (api.Run, error) {
	var r api.Run
	err := c.Do(ctx, http.MethodGet, api.Prefix+"/runs/"+Segment(id), nil, nil, &r)
	return r, err
}

// ListAttempts lists the attempts of a run's task, oldest first.
func (c *Client) ListAttempts(ctx context.Context, runID, task string) ([]api.Attempt, error) {
	return List[api.Attempt](ctx, c, api.Prefix+"/runs/"+Segment(runID)+"/tasks/"+Segment(task)+"/attempts", nil, 0)
}

// StreamLog copies the log of attempt number of a run's task (0: the
// latest) to w as the server sends it, and returns the attempt's number.
// The body is not buffered: a long log streams through, bounded only by
// ctx.
func (c *Client) StreamLog(ctx context.Context, runID, task string, attempt int, w io.Writer) (int, error) {
	path := api.Prefix + "/runs/" + Segment(runID) + "/tasks/" + Segment(task) + "/log"
	var q url.Values
	if attempt > 0 {
		q = url.Values{"attempt": {strconv.Itoa(attempt)}}
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, _ := strconv.Atoi(resp.Header.Get("X-Sluice-Attempt"))
	if _, err := io.Copy(w, resp.Body); err != nil {
		return n, fmt.Errorf("reading the log of %s/%s: %w", runID, task, err)
	}
	return n, nil
}

// Trigger starts a manual run of the newest runnable version of a
// pipeline; the server queues it and answers at once.
func (c *Client) Trigger(ctx context.Context, namespace, name string, req api.TriggerRequest) (api.Run, error) {
	var r api.Run
	err := c.Do(ctx, http.MethodPost, pipelinePath(namespace, name)+"/runs", nil, req, &r)
	return r, err
}

// PushVersion stores content as the next version of a pipeline. created
// is false when the content is the latest version's (the server answers
// 200 with that version instead of 201 with a new one).
func (c *Client) PushVersion(ctx context.Context, namespace, name string, content []byte) (v api.Version, created bool, err error) {
	status, err := c.doStatus(ctx, request{method: http.MethodPost, path: pipelinePath(namespace, name) + "/versions",
		body: api.PushRequest{Content: string(content)}}, &v)
	return v, status == http.StatusCreated, err
}

// GetVersion returns one version of a pipeline with its content and its
// diff against the previous version.
func (c *Client) GetVersion(ctx context.Context, namespace, name string, number int) (api.Version, error) {
	var v api.Version
	err := c.Do(ctx, http.MethodGet, pipelinePath(namespace, name)+"/versions/"+strconv.Itoa(number), nil, nil, &v)
	return v, err
}

// ApproveVersion approves version number of a pipeline (someone other than
// its author must).
func (c *Client) ApproveVersion(ctx context.Context, namespace, name string, number int) (api.Version, error) {
	var v api.Version
	err := c.Do(ctx, http.MethodPost, pipelinePath(namespace, name)+"/versions/"+strconv.Itoa(number)+"/approve", nil, nil, &v)
	return v, err
}

// ListVersions lists every version of a pipeline.
func (c *Client) ListVersions(ctx context.Context, namespace, name string) ([]api.Version, error) {
	return List[api.Version](ctx, c, pipelinePath(namespace, name)+"/versions", nil, 0)
}

func pipelinePath(namespace, name string) string {
	return api.Prefix + "/pipelines/" + Segment(namespace) + "/" + Segment(name)
}
