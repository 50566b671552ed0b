// Package httpapi is the http connector: a source that reads records from
// a JSON HTTP API, page by page.
//
// Each response is a JSON document; the records are the array at the
// `records` path (or the document itself), and each record is a JSON
// object decoded by the same rules as a JSON Lines file (see package
// jsonl): a record that does not fit the schema goes to quarantine with
// the page and record number, and reading continues.
//
// The connector is built to be pointed at the internet safely:
//
//   - HTTPS only. A plain http:// URL is refused unless its host is a
//     loopback address listed in allow_hosts (a service on the same
//     machine), or insecure_http is set together with insecure_reason.
//   - Requests go to the url's own host. A pagination link or redirect to
//     any other host is refused unless that host is in allow_hosts, and
//     the configured auth and headers are sent to the url's host only.
//   - Addresses are checked after DNS resolution, when the connection is
//     dialled, so a name that resolves to a forbidden address is refused
//     too: link-local addresses (169.254.0.0/16, fe80::/10, which include
//     the cloud metadata service 169.254.169.254), fd00:ec2::254, and the
//     unspecified addresses are never dialled; loopback only when a
//     loopback host is in allow_hosts. Proxy settings from the environment
//     are ignored, since a proxy would dial on our behalf unchecked.
//   - Credentials are secret references: auth values and credential
//     headers written literally in the pipeline are a validation error.
//     Error messages and quarantine positions show the URL without its
//     query string and user information, since either may hold a secret.
//   - Each response is read through a limit (max_response_bytes); a larger
//     one is an error, never a silent truncation.
//
// Retries: a 429 or 5xx answer, or a connection reset or timeout, is
// retried up to max_retries times with exponential backoff and jitter,
// honouring a Retry-After header (seconds or an HTTP date) up to
// maxRetryAfter.
package httpapi

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract:.
const Name = "http"

// Defaults of the settings.
const (
	// DefaultTimeout bounds one request, response body included.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxRetries is how often a failed request is retried.
	DefaultMaxRetries = 5
	// DefaultMaxResponseBytes is the largest response accepted: 16 MiB.
	DefaultMaxResponseBytes = 16 << 20
)

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
	})
}

// Config is the http connector's settings.
type Config struct {
	// URL is the first page's address, a template that may hold secret
	// references. Required. HTTPS unless allowed otherwise (see the
	// package documentation). Credentials in the URL are refused: use auth.
	URL string `yaml:"url"`
	// Query adds parameters to the URL; values are templates.
	Query map[string]string `yaml:"query"`
	// Headers adds request headers; values are templates. Authorization,
	// Proxy-Authorization and Cookie must be secret references.
	Headers map[string]string `yaml:"headers"`
	// Auth sends credentials, to the url's host only.
	Auth *Auth `yaml:"auth"`
	// Records is where the array of records is in each response: a dotted
	// path ("data.items") or a JSON pointer ("/data/items"). Empty: the
	// response itself is the array.
	Records string `yaml:"records"`
	// Schema types the fields, in order; without it the schema is inferred
	// from the first record.
	Schema fileio.Columns `yaml:"schema"`
	// Pagination says how to find the next page; without it one request
	// is made.
	Pagination *Pagination `yaml:"pagination"`
	// MaxPages stops after this many pages; 0 means no limit.
	MaxPages int `yaml:"max_pages"`
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries bounds the retries of one request. Default
	// DefaultMaxRetries; 0 disables retries.
	MaxRetries *int `yaml:"max_retries"`
	// MaxResponseBytes is the largest response body accepted. Default
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// AllowHosts lists the other hosts requests may go to ("api.example.com"
	// or "*.example.com"), and must list a loopback host ("127.0.0.1",
	// "::1", "localhost") for loopback addresses to be dialled at all.
	AllowHosts []string `yaml:"allow_hosts"`
	// InsecureHTTP allows plain http:// URLs to any host; InsecureReason
	// must say why, so the exception is written down where it is made.
	InsecureHTTP   bool   `yaml:"insecure_http"`
	InsecureReason string `yaml:"insecure_reason"`
	// CAFile is a PEM file of certificate authorities to trust instead of
	// the system's, for APIs behind a private CA.
	CAFile string `yaml:"ca_file"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	BatchSize int `yaml:"batch_size"`
}

// Auth holds the credentials to send: exactly one of Bearer or Basic.
type Auth struct {
	// Bearer is a token sent as "Authorization: Bearer ..."; a secret
	// reference.
	Bearer string `yaml:"bearer"`
	// Basic is a user and password sent as HTTP basic auth.
	Basic *BasicAuth `yaml:"basic"`
}

// BasicAuth is HTTP basic authentication; Password is a secret reference.
type BasicAuth struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Pagination names one way of finding the next page.
type Pagination struct {
	// NextLink reads the next page's URL from the response body.
	NextLink *NextLink `yaml:"next_link"`
	// Cursor reads a cursor from the body and sends it as a parameter.
	Cursor *Cursor `yaml:"cursor"`
	// Page counts pages in a parameter.
	Page *Page `yaml:"page"`
	// LinkHeader follows the RFC 8288 `Link: <...>; rel="next"` header.
	LinkHeader bool `yaml:"link_header"`
}

// NextLink is pagination by a URL in the body; a missing, null or empty
// value ends it. A relative URL is resolved against the page's URL.
type NextLink struct {
	Path string `yaml:"path"`
}

// Cursor is pagination by an opaque cursor in the body, sent back in the
// query parameter Param; a missing, null or empty cursor ends it.
type Cursor struct {
	Param string `yaml:"param"`
	Path  string `yaml:"path"`
}

// Page is pagination by page number in the query parameter Param, from
// Start (default 1). With Size, SizeParam=Size is sent and a page with
// fewer records is the last; without, an empty page is the last.
type Page struct {
	Param     string `yaml:"param"`
	Start     *int   `yaml:"start"`
	SizeParam string `yaml:"size_param"`
	Size      int    `yaml:"size"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config {
	return &Config{Timeout: DefaultTimeout, MaxResponseBytes: DefaultMaxResponseBytes}
}

func (c *Config) maxRetries() int {
	if c.MaxRetries == nil {
		return DefaultMaxRetries
	}
	return *c.MaxRetries
}

// isReference reports whether s takes its value from a secret or a
// template rather than holding it literally.
func isReference(s string) bool {
	return strings.Contains(s, "${secret:") || strings.Contains(s, "{{")
}

// credentialHeaders must never be written literally in a pipeline.
var credentialHeaders = []string{"authorization", "proxy-authorization", "cookie", "x-api-key"}

const useSecret = "must be a secret reference such as ${secret:name} (store it with `sluice secret set`), not a literal credential"

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("url: required")
	}
	if !isReference(c.URL) && !strings.Contains(c.URL, "${") {
		u, err := url.Parse(c.URL)
		if err != nil {
			return fmt.Errorf("url: not a valid URL")
		}
		if err := c.checkURL(u); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	for name, v := range c.Headers {
		if name == "" {
			return fmt.Errorf("headers: empty header name")
		}
		for _, h := range credentialHeaders {
			if strings.EqualFold(name, h) && !isReference(v) {
				return fmt.Errorf("headers: %s: %s", name, useSecret)
			}
		}
	}
	if a := c.Auth; a != nil {
		switch {
		case (a.Bearer == "") == (a.Basic == nil):
			return fmt.Errorf("auth: want exactly one of bearer or basic")
		case a.Basic == nil && !isReference(a.Bearer):
			return fmt.Errorf("auth: bearer: %s", useSecret)
		case a.Basic != nil && a.Basic.User == "":
			return fmt.Errorf("auth: basic: user: required")
		case a.Basic != nil && !isReference(a.Basic.Password):
			return fmt.Errorf("auth: basic: password: %s", useSecret)
		}
	}
	if _, err := parsePath(c.Records); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	if err := c.Pagination.validate(); err != nil {
		return fmt.Errorf("pagination: %w", err)
	}
	switch {
	case c.MaxPages < 0:
		return fmt.Errorf("max_pages: must not be negative, got %d", c.MaxPages)
	case c.Timeout < 0:
		return fmt.Errorf("timeout: must not be negative, got %s", c.Timeout)
	case c.MaxRetries != nil && *c.MaxRetries < 0:
		return fmt.Errorf("max_retries: must not be negative, got %d", *c.MaxRetries)
	case c.MaxResponseBytes <= 0:
		return fmt.Errorf("max_response_bytes: must be positive, got %d", c.MaxResponseBytes)
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	case c.InsecureHTTP && strings.TrimSpace(c.InsecureReason) == "":
		return fmt.Errorf("insecure_reason: required with insecure_http: say why this API cannot be reached over HTTPS")
	case !c.InsecureHTTP && c.InsecureReason != "":
		return fmt.Errorf("insecure_reason: applies only with insecure_http: true")
	}
	for i, h := range c.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") && !isIP(h) {
			return fmt.Errorf("allow_hosts[%d]: %q is not a host name or IP address (no scheme, port or path)", i, h)
		}
	}
	if _, err := c.Schema.Schema(); err != nil {
		return err
	}
	return nil
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil
}

func (p *Pagination) validate() error {
	if p == nil {
		return nil
	}
	n := 0
	if p.NextLink != nil {
		n++
		if _, err := parsePath(p.NextLink.Path); err != nil || p.NextLink.Path == "" {
			return fmt.Errorf("next_link: path: want the path of the next page's URL in the response, e.g. links.next")
		}
	}
	if p.Cursor != nil {
		n++
		if p.Cursor.Param == "" {
			return fmt.Errorf("cursor: param: required")
		}
		if _, err := parsePath(p.Cursor.Path); err != nil || p.Cursor.Path == "" {
			return fmt.Errorf("cursor: path: want the path of the next cursor in the response, e.g. meta.next_cursor")
		}
	}
	if p.Page != nil {
		n++
		switch {
		case p.Page.Param == "":
			return fmt.Errorf("page: param: required")
		case p.Page.Size < 0:
			return fmt.Errorf("page: size: must not be negative, got %d", p.Page.Size)
		case p.Page.SizeParam != "" && p.Page.Size == 0:
			return fmt.Errorf("page: size: required with size_param")
		}
	}
	if p.LinkHeader {
		n++
	}
	if n != 1 {
		return fmt.Errorf("want exactly one of next_link, cursor, page or link_header")
	}
	return nil
}

// parsePath splits a dotted path or a JSON pointer into its segments.
func parsePath(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if strings.HasPrefix(p, "/") {
		segs := strings.Split(p[1:], "/")
		for i, s := range segs {
			segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
		return segs, nil
	}
	segs := strings.Split(p, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("%q: empty segment (want a dotted path like data.items or a JSON pointer like /data/items)", p)
		}
	}
	return segs, nil
}

// checkURL applies the scheme policy to u, and refuses credentials in it.
func (c *Config) checkURL(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not allowed; use auth")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("no host in %s", safeURL(u))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if c.InsecureHTTP || (isLoopbackName(u.Hostname()) && c.hostListed(u.Hostname())) {
			return nil
		}
		return fmt.Errorf("%w: %s: use https, or list a loopback host in allow_hosts, or set insecure_http with insecure_reason", ErrInsecureURL, safeURL(u))
	}
	return fmt.Errorf("%w: %s: scheme %q (want https)", ErrInsecureURL, safeURL(u), u.Scheme)
}

// hostListed reports whether host is in allow_hosts.
func (c *Config) hostListed(host string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, h := range c.AllowHosts {
		h = strings.ToLower(strings.Trim(h, "[]"))
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*."); ok && strings.HasSuffix(host, "."+suffix) {
			return true
		}
		if a, err := netip.ParseAddr(h); err == nil {
			if b, err := netip.ParseAddr(host); err == nil && a.Unmap() == b.Unmap() {
				return true
			}
		}
	}
	return false
}

// loopbackAllowed reports whether allow_hosts lists a loopback host, the
// explicit consent to dial loopback addresses.
func (c *Config) loopbackAllowed() bool {
	for _, h := range c.AllowHosts {
		if isLoopbackName(h) {
			return true
		}
	}
	return false
}

func isLoopbackName(h string) bool {
	h = strings.ToLower(strings.Trim(h, "[]"))
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// safeURL renders u for messages: no user information and no query, since
// either may carry a secret.
func safeURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// itoa is strconv.Itoa, short for building query values.
func itoa(n int) string { return strconv.Itoa(n) }
