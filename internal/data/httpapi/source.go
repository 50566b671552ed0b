package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/jsonl"
)

// ErrResponseTooLarge is returned when a response body exceeds
// max_response_bytes.
var ErrResponseTooLarge = errors.New("response too large")

// ErrNoProgress is returned when pagination hands out the same link or
// cursor twice in a row: following it would loop for ever.
var ErrNoProgress = errors.New("pagination does not advance")

const (
	// maxRedirects bounds the redirects followed for one request.
	maxRedirects = 5
	// maxRetryAfter is the longest Retry-After honoured; a server asking
	// for longer makes the request fail rather than park the task.
	maxRetryAfter = 5 * time.Minute
	// backoffBase and backoffMax shape the exponential backoff.
	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
	// dialTimeout bounds connecting, TLS handshake included.
	dialTimeout = 10 * time.Second
)

// Source reads records from a paginated JSON API. It implements
// data.Source.
type Source struct {
	cfg       *Config
	client    *http.Client
	transport *http.Transport
	q         data.Quarantine
	size      int
	schema    *data.Schema
	dec       *jsonl.Decoder

	base        *url.URL    // the first page, query applied
	header      http.Header // configured headers and auth, for base's host only
	recordsPath []string

	next       *url.URL // the next page to fetch; nil after the last
	prevCursor string
	pages      int
	pageURL    *url.URL
	recs       []json.RawMessage
	idx        int   // next record of recs
	ord        int64 // records seen so far, over all pages
	done       bool

	// sleep waits between retries and now reads the clock (Retry-After
	// dates); tests replace them so that no test sleeps.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

var _ data.Source = (*Source)(nil)

// OpenSource prepares the requests described by cfg (a *Config). Without a
// declared schema it fetches pages up to the first valid record, to infer
// the schema from it.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	s, err := newSource(c, env)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func newSource(c *Config, env data.Env) (*Source, error) {
	s := &Source{cfg: c, q: env.Quarantine, size: fileio.BatchSize(c.BatchSize, env), sleep: sleepCtx, now: time.Now}
	s.recordsPath, _ = parsePath(c.Records)
	raw, err := env.Expand(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url: not a valid URL after expansion")
	}
	if err := c.checkURL(u); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	q := u.Query()
	for k, v := range c.Query {
		x, err := env.Expand(v)
		if err != nil {
			return nil, fmt.Errorf("query: %s: %w", k, err)
		}
		q.Set(k, x)
	}
	if p := c.Pagination; p != nil && p.Page != nil {
		q.Set(p.Page.Param, itoa(p.Page.start()))
		if p.Page.SizeParam != "" {
			q.Set(p.Page.SizeParam, itoa(p.Page.Size))
		}
	}
	u.RawQuery = q.Encode()
	s.base, s.next = u, u

	s.header = http.Header{}
	for k, v := range c.Headers {
		x, err := env.Expand(v)
		if err != nil {
			return nil, fmt.Errorf("headers: %s: %w", k, err)
		}
		s.header.Set(k, x)
	}
	if a := c.Auth; a != nil {
		if a.Basic != nil {
			user, err := env.Expand(a.Basic.User)
			if err != nil {
				return nil, fmt.Errorf("auth: basic: user: %w", err)
			}
			pass, err := env.Expand(a.Basic.Password)
			if err != nil {
				return nil, fmt.Errorf("auth: basic: password: %w", err)
			}
			r := http.Request{Header: http.Header{}}
			r.SetBasicAuth(user, pass)
			s.header.Set("Authorization", r.Header.Get("Authorization"))
		} else {
			tok, err := env.Expand(a.Bearer)
			if err != nil {
				return nil, fmt.Errorf("auth: bearer: %w", err)
			}
			s.header.Set("Authorization", "Bearer "+tok)
		}
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		path, err := fileio.ResolvePath(env, c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", path)
		}
		tlsConf.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: dialTimeout, Control: dialControl(c.loopbackAllowed())}
	s.transport = &http.Transport{
		Proxy:               nil, // a proxy would dial for us, past the address check
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: dialTimeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
	}
	s.client = &http.Client{Transport: s.transport, Timeout: c.Timeout, CheckRedirect: s.checkRedirect}
	return s, nil
}

func (p *Page) start() int {
	if p.Start == nil {
		return 1
	}
	return *p.Start
}

// open settles the schema: declared, or inferred from the first valid
// record, quarantining the ones before it.
func (s *Source) open(ctx context.Context) error {
	schema, err := s.cfg.Schema.Schema()
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	for schema == nil {
		if s.idx >= len(s.recs) {
			more, err := s.fetch(ctx)
			if err != nil {
				return err
			}
			if !more {
				return fmt.Errorf("http: %s: no record to infer the schema from; declare schema", safeURL(s.base))
			}
			continue
		}
		var reason string
		schema, reason = jsonl.InferSchema(s.recs[s.idx])
		if reason != "" {
			s.ord++
			s.idx++
			if err := s.reject(ctx, s.idx, reason, s.recs[s.idx-1]); err != nil {
				return err
			}
		}
	}
	s.schema = schema
	s.dec = jsonl.NewDecoder(schema, s.size)
	return nil
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput after the last page.
// The batch is reused by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.dec.Reset()
	for s.dec.Batch().Len < s.size {
		if s.idx >= len(s.recs) {
			more, err := s.fetch(ctx)
			if err != nil {
				return nil, err
			}
			if !more {
				s.done = true
				break
			}
			continue
		}
		rec := s.recs[s.idx]
		s.idx++
		s.ord++
		if reason := s.dec.Append(rec, s.ord); reason != "" {
			if err := s.reject(ctx, s.idx, reason, rec); err != nil {
				return nil, err
			}
		}
	}
	if b := s.dec.Batch(); b.Len > 0 || !s.done {
		return b, nil
	}
	return nil, data.ErrEndOfInput
}

func (s *Source) reject(ctx context.Context, rec int, reason string, raw []byte) error {
	pos := fmt.Sprintf("%s page %d record %d", safeURL(s.pageURL), s.pages, rec)
	if err := s.q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: string(raw)}); err != nil {
		return fmt.Errorf("http: quarantining %s: %w", pos, err)
	}
	return nil
}

// fetch gets the next page and finds the one after it. It returns false
// when there is no next page.
func (s *Source) fetch(ctx context.Context) (bool, error) {
	if s.next == nil || (s.cfg.MaxPages > 0 && s.pages >= s.cfg.MaxPages) {
		return false, nil
	}
	u := s.next
	s.pages++
	s.pageURL = u
	s.recs, s.idx = nil, 0
	where := fmt.Sprintf("%s page %d", safeURL(u), s.pages)
	body, hdr, err := s.get(ctx, u, where)
	if err != nil {
		return false, err
	}
	raw, found, err := lookup(body, s.recordsPath)
	if err != nil {
		return false, fmt.Errorf("http: %s: response is not valid JSON: %w", where, err)
	}
	if !found {
		return false, fmt.Errorf("http: %s: no value at records path %q", where, s.cfg.Records)
	}
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &s.recs); err != nil {
			return false, fmt.Errorf("http: %s: the records (%s) are not a JSON array", where, describePath(s.cfg.Records))
		}
	}
	next, err := s.nextPage(u, body, hdr, len(s.recs))
	if err != nil {
		return false, fmt.Errorf("http: %s: %w", where, err)
	}
	s.next = next
	return true, nil
}

func describePath(p string) string {
	if p == "" {
		return "the whole response"
	}
	return "at " + strconv.Quote(p)
}

// nextPage works out the page after u, or nil.
func (s *Source) nextPage(u *url.URL, body []byte, hdr http.Header, n int) (*url.URL, error) {
	p := s.cfg.Pagination
	var link string
	switch {
	case p == nil:
		return nil, nil
	case p.NextLink != nil:
		v, err := s.stringAt(body, p.NextLink.Path)
		if err != nil || v == "" {
			return nil, err
		}
		link = v
	case p.LinkHeader:
		link = nextLink(hdr.Values("Link"))
		if link == "" {
			return nil, nil
		}
	case p.Cursor != nil:
		v, err := s.stringAt(body, p.Cursor.Path)
		if err != nil || v == "" {
			return nil, err
		}
		if v == s.prevCursor {
			return nil, fmt.Errorf("%w: cursor %s repeats", ErrNoProgress, p.Cursor.Path)
		}
		s.prevCursor = v
		next := *s.base
		q := next.Query()
		q.Set(p.Cursor.Param, v)
		next.RawQuery = q.Encode()
		return &next, nil
	case p.Page != nil:
		if n == 0 || (p.Page.Size > 0 && n < p.Page.Size) {
			return nil, nil
		}
		next := *s.base
		q := next.Query()
		q.Set(p.Page.Param, itoa(p.Page.start()+s.pages))
		next.RawQuery = q.Encode()
		return &next, nil
	}
	next, err := u.Parse(link)
	if err != nil {
		return nil, errors.New("the next page's link is not a valid URL")
	}
	if next.String() == u.String() {
		return nil, fmt.Errorf("%w: the next page's link is the page itself", ErrNoProgress)
	}
	if err := s.checkTarget(next); err != nil {
		return nil, fmt.Errorf("next page refused: %w", err)
	}
	return next, nil
}

// stringAt reads a string or number at path in body; "" when it is
// missing or null.
func (s *Source) stringAt(body []byte, path string) (string, error) {
	segs, _ := parsePath(path)
	raw, found, err := lookup(body, segs)
	if err != nil || !found || isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("%s: not a valid JSON string", path)
		}
		return v, nil
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", fmt.Errorf("%s: want a string, got %s", path, fileio.Quote(string(raw)))
}

// nextLink finds the rel="next" target in RFC 8288 Link header values.
func nextLink(values []string) string {
	for _, v := range values {
		for _, part := range splitLinks(v) {
			part = strings.TrimSpace(part)
			end := strings.IndexByte(part, '>')
			if !strings.HasPrefix(part, "<") || end < 0 {
				continue
			}
			target := part[1:end]
			for _, param := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header value at the commas between links,
// not at commas inside <...> or quoted strings.
func splitLinks(v string) []string {
	var out []string
	inURL, inQuote, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '<' && !inQuote:
			inURL = true
		case c == '>' && !inQuote:
			inURL = false
		case c == '"' && !inURL:
			inQuote = !inQuote
		case c == ',' && !inURL && !inQuote:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// lookup finds the value at path in the JSON document doc.
func lookup(doc []byte, path []string) (json.RawMessage, bool, error) {
	if !json.Valid(doc) {
		return nil, false, errors.New("invalid JSON")
	}
	cur := json.RawMessage(doc)
	for _, seg := range path {
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			return nil, false, nil
		}
		switch cur[0] {
		case '{':
			var m map[string]json.RawMessage
			if err := json.Unmarshal(cur, &m); err != nil {
				return nil, false, err
			}
			v, ok := m[seg]
			if !ok {
				return nil, false, nil
			}
			cur = v
		case '[':
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 {
				return nil, false, nil
			}
			var a []json.RawMessage
			if err := json.Unmarshal(cur, &a); err != nil {
				return nil, false, err
			}
			if i >= len(a) {
				return nil, false, nil
			}
			cur = a[i]
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// checkTarget applies the scheme and host policy to a URL other than the
// configured one.
func (s *Source) checkTarget(u *url.URL) error {
	if !strings.EqualFold(u.Hostname(), s.base.Hostname()) && !s.cfg.hostListed(u.Hostname()) {
		return fmt.Errorf("%w: %s is not the url's host and not in allow_hosts", ErrHostNotAllowed, safeURL(u))
	}
	return s.cfg.checkURL(u)
}

func (s *Source) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if err := s.checkTarget(req.URL); err != nil {
		return fmt.Errorf("redirect refused: %w", err)
	}
	if !sameOrigin(req.URL, s.base) {
		for k := range s.header {
			req.Header.Del(k)
		}
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// get fetches u, retrying what is worth retrying, and returns the body.
func (s *Source) get(ctx context.Context, u *url.URL, where string) ([]byte, http.Header, error) {
	maxRetries := s.cfg.maxRetries()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("http: %s: building the request: invalid URL", where)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "sluice")
		if sameOrigin(u, s.base) {
			for k, v := range s.header {
				req.Header[k] = v
			}
		}
		body, hdr, retry, err := s.do(req)
		if err == nil {
			return body, hdr, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("http: %s: %w", where, ctx.Err())
		}
		if retry < 0 || attempt >= maxRetries {
			if attempt > 0 {
				return nil, nil, fmt.Errorf("http: %s: after %d attempts: %w", where, attempt+1, err)
			}
			return nil, nil, fmt.Errorf("http: %s: %w", where, err)
		}
		wait := retry
		if wait == 0 {
			wait = backoff(attempt)
		}
		if err := s.sleep(ctx, wait); err != nil {
			return nil, nil, fmt.Errorf("http: %s: waiting to retry: %w", where, err)
		}
	}
}

// do makes one request. On failure, retry says whether to try again: -1
// for no, 0 for after the usual backoff, or how long to wait.
func (s *Source) do(req *http.Request) (body []byte, hdr http.Header, retry time.Duration, err error) {
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would repeat the URL, query and all
		}
		if transient(err) {
			return nil, nil, 0, err
		}
		return nil, nil, -1, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		err := fmt.Errorf("HTTP %s", resp.Status)
		wait, werr := s.retryAfter(resp.Header.Get("Retry-After"))
		if werr != nil {
			return nil, nil, -1, fmt.Errorf("%w; %w", err, werr)
		}
		return nil, nil, wait, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, -1, fmt.Errorf("HTTP %s", resp.Status)
	}
	limit := s.cfg.MaxResponseBytes
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if transient(err) {
			return nil, nil, 0, fmt.Errorf("reading the response: %w", err)
		}
		return nil, nil, -1, fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, nil, -1, fmt.Errorf("%w: more than max_response_bytes (%d)", ErrResponseTooLarge, limit)
	}
	return body, resp.Header, 0, nil
}

// retryAfter reads a Retry-After header: 0 when absent or unreadable (use
// the backoff), or the wait it asks for.
func (s *Source) retryAfter(h string) (time.Duration, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, nil
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, nil
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return 0, fmt.Errorf("the server asks to retry after %ds, more than %s", secs, maxRetryAfter)
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(s.now())
		if d > maxRetryAfter {
			return 0, fmt.Errorf("the server asks to retry at %s, more than %s away", t.UTC().Format(time.RFC3339), maxRetryAfter)
		}
	} else {
		return 0, nil
	}
	// A zero wait would read as "use the backoff"; Retry-After: 0 means now.
	return max(d, time.Nanosecond), nil
}

// backoff is the wait before retry attempt+1: exponential, capped, with
// jitter so that many clients do not retry in step.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// transient reports whether a failed request may succeed when tried again.
func transient(err error) bool {
	if errors.Is(err, ErrBlockedAddress) || errors.Is(err, ErrHostNotAllowed) || errors.Is(err, ErrInsecureURL) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close releases idle connections.
func (s *Source) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
