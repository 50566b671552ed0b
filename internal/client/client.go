// Package client is the HTTP client of sluice's REST API (/api/v1), used by
// the command line when it acts on a running `sluice server` instead of a
// local state directory.
//
// It holds three things and nothing else: the server's base URL, the
// certificates it trusts for that server, and the caller's bearer
// credential (a session secret from POST /auth/login, or an API token
// slu_...). Every request is authenticated as that caller, so the server
// decides and audits each action under the caller's own identity.
//
// Transport security is not optional: an https URL is always verified
// (against the system roots, or only against the certificates given in
// Options.RootPEM), and plain http is accepted only for a loopback host,
// the same rule the server applies to --insecure-http. There is no way to
// turn verification off.
//
// Errors from the server arrive in the API's one JSON error shape and are
// returned as *Error, which keeps the server's code, message and request
// id, so that a person can quote the id to an operator.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/server"
)

// Limits on what the client reads from a server.
const (
	// MaxJSONBody bounds a JSON response body: a server (or something
	// pretending to be one) cannot make the client buffer without end.
	MaxJSONBody = 32 << 20
	// maxErrorBody bounds the part of a non-JSON error body quoted in an
	// error message.
	maxErrorBody = 512
	// DefaultTimeout bounds a request's connection and the wait for the
	// response headers. It does not bound the reading of a streamed body
	// (a task log): the caller's context does.
	DefaultTimeout = 30 * time.Second
)

// Options configure a Client.
type Options struct {
	// Server is the server's base URL: https://host[:port], or
	// http://host[:port] for a loopback host only. A path other than "/"
	// is refused: the API lives at api.Prefix under the root.
	Server string
	// RootPEM, when set, holds the PEM certificates that are trusted for
	// the server instead of the system roots: a private CA, or the
	// server's own self-signed certificate (pinned).
	RootPEM []byte
	// Credential is the bearer credential sent with every request; empty
	// for the requests that need none (login).
	Credential string
	// UserAgent is sent as User-Agent; default "sluice-cli".
	UserAgent string
	// Timeout bounds connecting and waiting for response headers; default
	// DefaultTimeout.
	Timeout time.Duration
	// PageSize is how many items List asks for per page (?limit=), from 1
	// to api.MaxLimit; default api.MaxLimit, the fewest round trips.
	PageSize int
}

// Client calls one server as one caller. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	credential string
	userAgent  string
	pageSize   int
	hc         *http.Client
}

// ParseServer checks a server URL: an absolute http or https URL with a
// host and no path, query, fragment or user information; http only for a
// loopback host (localhost or a loopback IP), since anything else would
// send passwords and session secrets across the network in clear. It
// returns the URL in canonical form (lower-case scheme and host, no
// trailing slash).
func ParseServer(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", raw, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("server URL %q: want https://HOST[:PORT]", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("server URL %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("server URL %q: credentials do not belong in the URL", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("server URL %q: give only the scheme, host and port (the API is found under %s)", raw, api.Prefix)
	case u.Scheme == "http" && !server.IsLoopback(u.Hostname()):
		return nil, fmt.Errorf("server URL %q: plain http is only allowed for a loopback host such as 127.0.0.1 or localhost; use https", raw)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path, u.RawPath = "", ""
	return u, nil
}

// ParseRoots parses PEM certificates for Options.RootPEM and returns them
// as a pool; at least one certificate is required.
func ParseRoots(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// New returns a client for opts.Server.
func New(opts Options) (*Client, error) {
	base, err := ParseServer(opts.Server)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(opts.RootPEM) > 0 {
		pool, err := ParseRoots(opts.RootPEM)
		if err != nil {
			return nil, fmt.Errorf("trusted certificates for %s: %w", base, err)
		}
		tlsConf.RootCAs = pool
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "sluice-cli"
	}
	hc := &http.Client{
		Transport: tr,
		// A redirect could carry the bearer credential elsewhere: the API
		// never redirects, so the client does not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ps := opts.PageSize
	if ps <= 0 || ps > api.MaxLimit {
		ps = api.MaxLimit
	}
	return &Client{base: base, credential: opts.Credential, userAgent: ua, pageSize: ps, hc: hc}, nil
}

// Server returns the server's base URL.
func (c *Client) Server() string { return c.base.String() }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is an error answered by the server, in the API's JSON error shape
// (or, for a response that is not in it, the status alone).
type Error struct {
	// Method and Path are the request's.
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Code is the API error code (unauthenticated, forbidden, not_found,
	// ...); empty when the body was not the API's error shape.
	Code string
	// Message is the server's message, meant to be shown.
	Message string
	// RequestID is the server's id of the request, for its operator.
	RequestID string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Message == "" {
		b.WriteString(http.StatusText(e.Status))
	}
	fmt.Fprintf(&b, " (%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.RequestID != "" {
		b.WriteString(", request id " + e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// StatusOf returns the HTTP status of a server error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// request is one call: method, path under the base URL (already escaped),
// query, and a JSON body.
type request struct {
	method string
	path   string
	query  url.Values
	body   any
}

// send performs r and returns the response when its status is 2xx; any
// other status is read as an *Error and the body closed.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	// r.path is escaped (see Segment): keep it as sent, so that an
	// escaped "/" inside a segment stays one segment.
	u := *c.base
	p, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	u.Path, u.RawPath = p, r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request to %s: %w", r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.credential != "" {
		req.Header.Set("Authorization", "Bearer "+c.credential)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: %w", r.method, c.base, r.path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp, r.method, r.path)
}

// readError turns a non-2xx response into an *Error.
func readError(resp *http.Response, method, path string) error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.RequestID = body.Error.Code, body.Error.Message, body.Error.RequestID
		return e
	}
	// Not the API's shape (a proxy in between, or not a sluice server):
	// quote the start of the body, as text, so the person sees what
	// answered.
	msg := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), maxErrorBody)]), "?"))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = "unexpected answer: " + msg
	e.RequestID = resp.Header.Get("X-Request-Id")
	return e
}

// do sends r and decodes a JSON response into out (unless out is nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	_, err := c.doStatus(ctx, r, out)
	return err
}

// doStatus is do that also returns the (2xx) status, for the endpoints
// whose status carries meaning (201 created, 200 unchanged).
func (c *Client) doStatus(ctx context.Context, r request, out any) (int, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxJSONBody))
		return resp.StatusCode, nil
	}
	lr := &io.LimitedReader{R: resp.Body, N: MaxJSONBody + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N <= 0 {
			return 0, fmt.Errorf("%s %s: response larger than %d bytes", r.method, r.path, MaxJSONBody)
		}
		return 0, fmt.Errorf("%s %s: decoding the response: %w", r.method, r.path, err)
	}
	return resp.StatusCode, nil
}

// Do sends a request with a JSON body in (nil for none) to path (under
// the server root, e.g. api.Prefix+"/me") and decodes the JSON response
// into out (nil to discard it). Path segments must already be escaped
// (see Segment).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.do(ctx, request{method: method, path: path, query: query, body: in}, out)
}

// Segment escapes one path segment (a run id, a pipeline name).
func Segment(s string) string { return url.PathEscape(s) }

// List fetches the pages of a list endpoint, following next_cursor, until
// it has limit items (limit <= 0: all of them) or the last page, asking
// for Options.PageSize items a page (fewer when fewer are missing).
func List[T any](ctx context.Context, c *Client, path string, query url.Values, limit int) ([]T, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = append([]string(nil), v...)
	}
	out := []T{}
	cursor := ""
	for {
		size := c.pageSize
		if limit > 0 {
			size = min(size, limit-len(out))
		}
		q.Set("limit", strconv.Itoa(size))
		if cursor != "" {
			q.Set("cursor", cursor)
		} else {
			q.Del("cursor")
		}
		var page api.Page[T]
		if err := c.do(ctx, request{method: http.MethodGet, path: path, query: q}, &page); err != nil {
			return out, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" || (limit > 0 && len(out) >= limit) {
			break
		}
		// A page may be short, even empty, with a cursor (the server
		// bounds how much it scans for one page); only a cursor that
		// does not move is an error.
		if page.NextCursor == cursor {
			return out, fmt.Errorf("GET %s: the server returned the same page again", path)
		}
		cursor = page.NextCursor
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
