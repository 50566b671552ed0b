package secrets

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Finding kinds.
const (
	// KindCredentialKey: a key that names a credential holds a literal.
	KindCredentialKey = "credential-key"
	// KindURLPassword: a URL (scheme://user:pass@host) or a key=value
	// connection string (password=...) carries a literal password.
	KindURLPassword = "url-password"
	// KindToken: text has the shape of a known kind of token or key.
	KindToken = "token"
)

// Finding is a credential written in a pipeline file in plain text. Its
// Message never repeats the value.
type Finding struct {
	// Line and Col are 1-based. Col points at the match inside a one-line
	// scalar; in a multi-line scalar Line is the line of the match when it
	// can be known (literal block scalars) and Col the scalar's column.
	Line, Col int
	Kind      string
	Message   string
}

// credentialWords are the words that make a key name a credential, as the
// whole key or its last words ("db_password", "dbPassword", "DB-PASSWORD").
var credentialWords = []string{
	"password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
	"access_key", "private_key", "client_secret", "auth", "authorization",
	"bearer", "credentials",
}

// bareSuffixWords may also end a key with no separator ("PGPASSWORD"): long
// or distinctive enough that no ordinary word ends with them.
var bareSuffixWords = []string{"password", "passwd", "secret", "apikey"}

// authSchemes are values of an auth/authorization key that name a method,
// not a credential ("auth: basic").
var authSchemes = map[string]bool{
	"none": true, "basic": true, "bearer": true, "digest": true, "oauth": true,
	"oauth2": true, "token": true, "password": true, "iam": true, "kerberos": true,
	"gssapi": true, "ntlm": true, "md5": true, "scram-sha-256": true, "trust": true,
	"cert": true, "mtls": true, "tls": true, "aws": true, "anonymous": true,
}

// tokenShape is a known credential format: re, and at most maxLen bytes
// when maxLen is set. A long upper bound is checked on the match rather than
// written in the pattern, since a bounded repetition such as {36,251}
// compiles to one state per repetition (0.08 ms and 100 KB at every start of
// the binary, against 0.008 ms for the open-ended form).
type tokenShape struct {
	what   string
	re     *regexp.Regexp
	maxLen int
}

var tokenShapes = []tokenShape{
	{"an AWS access key id", regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`), 0},
	{"a GitHub token", regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}\b`), len("ghp_") + 251},
	{"a GitHub token", regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b`), 0},
	{"a Slack token", regexp.MustCompile(`\bxox[abpr]-[0-9A-Za-z-]{10,}`), 0},
	{"a Stripe secret key", regexp.MustCompile(`\bsk_live_[0-9A-Za-z]{16,}`), 0},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`), 0},
	{"a private key", regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----`), 0},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`), 0},
}

// dsnPassword finds password=VALUE in key=value connection strings and
// command lines ("host=db password=x", "Server=s;Pwd=x", "--password=x",
// "PGPASSWORD=x"). Group 1 is the value.
var dsnPassword = regexp.MustCompile(`(?i)(?:^|[\s;&?,'"-])(?:[a-z0-9_]*pass(?:word|wd)|pwd)\s*=\s*('[^']*'|"[^"]*"|[^\s;&'"]*)`)

// urlScheme finds the start of a URL's authority.
var urlScheme = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://`)

// Scan looks for credentials written in plain text in a parsed pipeline
// document, and returns them in document order:
//
//   - a key naming a credential (password, token, api_key, db_password, ...)
//     whose value is a non-empty literal rather than a ${secret:NAME}
//     reference (booleans, nulls and, for auth keys, scheme names such as
//     "basic" are not credentials);
//   - a URL with a password (scheme://user:pass@host) or a connection
//     string with password=..., unless the password is a reference or, in
//     a connection string, a "$VARIABLE" of the task's environment;
//   - text shaped like an AWS access key id, a GitHub, Slack or Stripe
//     token, a Google API key, a PEM private key or a JWT, anywhere.
//
// A value with a specific finding (a URL password, a token shape) is not
// reported again for its key.
func Scan(node *yaml.Node) []Finding {
	var out []Finding
	scanNode(node, "", &out, map[*yaml.Node]bool{})
	return out
}

func scanNode(n *yaml.Node, key string, out *[]Finding, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			scanNode(c, key, out, seen)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			scanNode(n.Content[i+1], n.Content[i].Value, out, seen)
		}
	case yaml.ScalarNode:
		scanScalar(n, key, out)
	}
	// Aliases point at nodes scanned where they are defined.
}

func scanScalar(n *yaml.Node, key string, out *[]Finding) {
	specific := len(*out)
	v := n.Value
	tokenKey := "" // suggest a name from the key only if it names a credential
	if credentialKey(key) {
		tokenKey = key
	}
	for _, ts := range tokenShapes {
		for _, loc := range ts.re.FindAllStringIndex(v, -1) {
			if ts.maxLen > 0 && loc[1]-loc[0] > ts.maxLen {
				continue
			}
			line, col := position(n, loc[0])
			*out = append(*out, Finding{Line: line, Col: col, Kind: KindToken,
				Message: fmt.Sprintf("this looks like %s written in plain text: %s", ts.what, fix(tokenKey))})
		}
	}
	for _, off := range urlPasswords(v) {
		line, col := position(n, off)
		*out = append(*out, Finding{Line: line, Col: col, Kind: KindURLPassword,
			Message: "this URL carries a password in plain text: " + fix(key) + " (the whole URL, or just the password part)"})
	}
	for _, m := range dsnPassword.FindAllStringSubmatchIndex(v, -1) {
		val := strings.Trim(v[m[2]:m[3]], `'"`)
		if val == "" || strings.HasPrefix(val, "$") {
			continue // empty, a reference, or an environment variable
		}
		line, col := position(n, m[2])
		*out = append(*out, Finding{Line: line, Col: col, Kind: KindURLPassword,
			Message: "this connection string carries a password in plain text: " + fix(key)})
	}
	if len(*out) > specific || !credentialKey(key) || !literalCredential(n, key) {
		return
	}
	*out = append(*out, Finding{Line: n.Line, Col: n.Column, Kind: KindCredentialKey,
		Message: fmt.Sprintf("%q holds a credential in plain text: %s", key, fix(key))})
}

// fix is the advice every finding ends with.
func fix(key string) string {
	name := suggestName(key)
	return fmt.Sprintf("store it with `sluice secret set %s` (it reads the value from stdin) and write ${secret:%s} here instead", name, name)
}

// suggestName turns a key into a valid secret name, or NAME.
func suggestName(key string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(key) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		case c == '-' || c == '.':
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || ValidName(s) != nil {
		return "NAME"
	}
	return s
}

// credentialKey reports whether a key names a credential.
func credentialKey(key string) bool {
	if key == "PWD" {
		return false // the POSIX working-directory variable
	}
	k := normalizeKey(key)
	for _, w := range credentialWords {
		if k == w || strings.HasSuffix(k, "_"+w) {
			return true
		}
	}
	flat := strings.ReplaceAll(k, "_", "")
	for _, w := range bareSuffixWords {
		if strings.HasSuffix(flat, w) {
			return true
		}
	}
	return false
}

// normalizeKey lowercases a key and turns camelCase, '-', '.' and spaces
// into '_' word separators: "dbPassword" and "DB-PASSWORD" → "db_password".
func normalizeKey(key string) string {
	var b strings.Builder
	var prev rune
	for i, c := range key {
		switch {
		case c == '-' || c == '.' || c == ' ':
			b.WriteByte('_')
		case unicode.IsUpper(c):
			if i > 0 && (unicode.IsLower(prev) || unicode.IsDigit(prev)) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
		default:
			b.WriteRune(c)
		}
		prev = c
	}
	return b.String()
}

// literalCredential reports whether the scalar under a credential key is a
// credential written in place.
func literalCredential(n *yaml.Node, key string) bool {
	if n.Tag == "!!bool" || n.Tag == "!!null" {
		return false
	}
	v := strings.TrimSpace(n.Value)
	if v == "" {
		return false
	}
	if _, hasRef := stripRefs(v); hasRef {
		// Framing around references ("Bearer ${secret:tok}") is not a
		// credential; the references are.
		return false
	}
	k := normalizeKey(key)
	for _, w := range []string{"auth", "authorization"} {
		if k == w || strings.HasSuffix(k, "_"+w) {
			return !authSchemes[strings.ToLower(v)]
		}
	}
	return true
}

// urlPasswords returns the byte offsets of the literal passwords of the URLs
// in s.
func urlPasswords(s string) []int {
	var offs []int
	for _, loc := range urlScheme.FindAllStringIndex(s, -1) {
		start := loc[1]
		rest := s[start:]
		// The authority ends at the first '/', '?', '#' or space outside a
		// ${secret:...} reference.
		end := len(rest)
		for i := 0; i < len(rest); i++ {
			if strings.HasPrefix(rest[i:], refOpen) {
				if k := strings.IndexByte(rest[i:], '}'); k > 0 {
					i += k
					continue
				}
			}
			if c := rest[i]; c == '/' || c == '?' || c == '#' || c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '\'' {
				end = i
				break
			}
		}
		auth := rest[:end]
		at := strings.LastIndexByte(auth, '@')
		if at < 0 {
			continue
		}
		userinfo := auth[:at]
		colon := indexOutsideRefs(userinfo, ':')
		if colon < 0 {
			continue
		}
		pass := userinfo[colon+1:]
		if pass == "" {
			continue
		}
		if rest, hasRef := stripRefs(pass); hasRef && rest == "" {
			continue
		}
		offs = append(offs, start+colon+1)
	}
	return offs
}

// indexOutsideRefs is strings.IndexByte skipping ${secret:...} references.
func indexOutsideRefs(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], refOpen) {
			if k := strings.IndexByte(s[i:], '}'); k > 0 {
				i += k
				continue
			}
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

// position is the line and column of byte off of a scalar's value.
func position(n *yaml.Node, off int) (line, col int) {
	v := n.Value
	switch n.Style {
	case yaml.LiteralStyle:
		// Lines of a literal block map one to one to the lines after its
		// header; the indentation is not recorded, so Col is the scalar's.
		return n.Line + 1 + strings.Count(v[:off], "\n"), n.Column
	case yaml.FoldedStyle:
		return n.Line + 1, n.Column
	}
	if strings.Contains(v[:off], "\n") {
		return n.Line, n.Column
	}
	col = n.Column + utf8.RuneCountInString(v[:off])
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		col++
	}
	return n.Line, col
}
