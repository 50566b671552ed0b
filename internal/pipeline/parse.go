package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/expr"
	"github.com/sluicehq/sluice/internal/namerule"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/strictyaml"
)

// Options tunes Parse.
type Options struct {
	// Connectors resolves the connector names under extract: and load:.
	// Nil means data.Builtin.
	Connectors *data.Registry
}

// The built-in policy defaults, used where neither the pipeline's defaults:
// nor the task say otherwise.
const (
	DefaultRetryDelay    = 10 * time.Second
	DefaultMaxRetryDelay = 10 * time.Minute
)

// DefaultNamespace is the namespace of a pipeline whose file names none.
const DefaultNamespace = "default"

// maxAliasExpansions bounds alias dereferences in one file so that nested
// aliases cannot blow a small file up into an enormous one.
const maxAliasExpansions = 10000

var (
	// nameRe is the shape of pipeline, namespace, task and param names.
	nameRe = namerule.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`, 64)
	// identRe is the shape of a column a step creates (rename, derive) and
	// of a check's name: an identifier, so CEL can address it as row.<name>.
	identRe   = namerule.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`, 64)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const nameRule = "start with a letter or _, then letters, digits, _ or -, at most 64 characters"

// ParseFile reads and parses the pipeline file at path. Its error is an
// Errors value for problems in the file, or a wrapped I/O error.
func ParseFile(path string, opts Options) (*Pipeline, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading pipeline file: %w", err)
	}
	return Parse(path, src, opts)
}

// Parse parses and validates the pipeline spec src, read from file (used in
// positions and as the base of relative paths). It reports every problem it
// finds, not only the first, as an Errors value sorted by position.
func Parse(file string, src []byte, opts Options) (*Pipeline, error) {
	reg := opts.Connectors
	if reg == nil {
		reg = data.Builtin
	}
	sum := sha256.Sum256(src)
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("resolving the directory of %s: %w", file, err)
	}
	ps := &parser{file: file, reg: reg, lines: strings.Split(string(src), "\n")}
	p := &Pipeline{File: file, Dir: dir, Hash: hex.EncodeToString(sum[:])}
	ps.pipeline(src, p)
	p.Secrets = ps.refs
	if len(ps.errs) > 0 {
		return nil, sortErrors(ps.errs)
	}
	return p, nil
}

type parser struct {
	// classification is the pipeline's, for connectors' transport checks.
	classification Classification
	refs           []SecretRef
	file           string
	lines          []string // the source, to position errors inside multi-line strings
	reg            *data.Registry
	errs           Errors
	aliases        int
	tmpl           templateChecker
}

// taskSrc remembers where a task's parts were written, for checks that need
// every task parsed first.
type taskSrc struct {
	key *yaml.Node
	// source is true when the task names where its records come from
	// (extract:), even if that part was invalid.
	source bool
	needs  map[string]*yaml.Node
	input  *yaml.Node
	policy policyNodes
	// joins are the upstream tasks join steps read, with where each was
	// named.
	joins []joinSrc
}

type joinSrc struct {
	with string
	node *yaml.Node
	// label names the setting in errors; "" means a join step's with.
	label string
}

// within positions text found on line k (0-based) of string node n's
// value: a block scalar ("script: |") starts on the line after its key. It
// falls back to the node's own position when the text cannot be found as
// written (an escaped, quoted string, say).
func (ps *parser) within(n *yaml.Node, k int, text string) Pos {
	line := n.Line + k
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line = n.Line + 1 + k
	}
	if line >= 1 && line <= len(ps.lines) {
		if i := strings.Index(ps.lines[line-1], text); i >= 0 {
			return Pos{File: ps.file, Line: line, Col: i + 1}
		}
	}
	return ps.pos(n)
}

func (ps *parser) pos(n *yaml.Node) Pos { return Pos{File: ps.file, Line: n.Line, Col: n.Column} }

func (ps *parser) errorf(n *yaml.Node, format string, args ...any) {
	ps.errs = append(ps.errs, Error{Pos: ps.pos(n), Msg: fmt.Sprintf(format, args...)})
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (ps *parser) yamlError(err error) {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		ps.errs = append(ps.errs, Error{Pos: Pos{File: ps.file, Line: line}, Msg: "invalid YAML: " + m[2]})
		return
	}
	ps.errs = append(ps.errs, Error{Pos: Pos{File: ps.file}, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

// resolve follows aliases within the expansion budget; nil when exhausted.
func (ps *parser) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		ps.aliases++
		if ps.aliases > maxAliasExpansions {
			if ps.aliases == maxAliasExpansions+1 {
				ps.errorf(n, "too many alias expansions (more than %d)", maxAliasExpansions)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "a document"
}

type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n (reporting and returning nil if n
// is not a mapping), with merge keys expanded and duplicate keys reported:
// noun names what the keys are ("field", "task", ...).
func (ps *parser) pairs(n *yaml.Node, what, noun string) []pair {
	if n.Kind != yaml.MappingNode {
		ps.errorf(n, "%s: want a mapping, got %s", what, describe(n))
		return nil
	}
	var explicit, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			v = ps.resolve(v)
			if v == nil {
				continue
			}
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				if s = ps.resolve(s); s != nil {
					merged = append(merged, ps.pairs(s, "merge key (<<)", noun)...)
				}
			}
			continue
		}
		explicit = append(explicit, pair{k, v})
	}
	seen := map[string]*yaml.Node{}
	out := make([]pair, 0, len(explicit)+len(merged))
	for _, p := range explicit {
		k := ps.resolve(p.key)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			ps.errorf(k, "%s: a key must be a plain name, got %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			ps.errorf(k, "duplicate %s %q (first defined at line %d)", noun, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, p.val})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

func (ps *parser) unknownField(k *yaml.Node, where string, known []string) {
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	ps.errorf(k, "%sunknown field %q (known: %s)", where, k.Value, strings.Join(sorted, ", "))
}

// str reads a scalar as a string. Null is reported as missing.
func (ps *parser) str(n *yaml.Node, what string) (string, bool) {
	if n = ps.resolve(n); n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		ps.errorf(n, "%s: want a string, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

func (ps *parser) integer(n *yaml.Node, what string) (int, bool) {
	if n = ps.resolve(n); n == nil {
		return 0, false
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		ps.errorf(n, "%s: want an integer, got %s", what, describe(n))
		return 0, false
	}
	return i, true
}

func (ps *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	if n = ps.resolve(n); n == nil {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b, true
		}
	}
	ps.errorf(n, "%s: want true or false, got %s", what, describe(n))
	return false, false
}

func (ps *parser) duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n = ps.resolve(n); n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		d, err := time.ParseDuration(n.Value)
		if err == nil && d >= 0 {
			return d, true
		}
		if err == nil {
			ps.errorf(n, "%s: duration %q is negative", what, n.Value)
			return 0, false
		}
	}
	ps.errorf(n, "%s: invalid duration %s: want a number with a unit, such as 30s, 5m or 1h30m", what, describe(n))
	return 0, false
}

// strList reads a list of strings; single allows one bare string too.
func (ps *parser) strList(n *yaml.Node, what string, single bool) ([]string, []*yaml.Node) {
	if n = ps.resolve(n); n == nil {
		return nil, nil
	}
	if single && n.Kind == yaml.ScalarNode && !isNull(n) {
		return []string{n.Value}, []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		ps.errorf(n, "%s: want a list of strings, got %s", what, describe(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for _, item := range n.Content {
		if s, ok := ps.str(item, what); ok {
			out = append(out, s)
			nodes = append(nodes, ps.resolve(item))
		}
	}
	return out, nodes
}

func (ps *parser) name(n *yaml.Node, what, s string) {
	if !nameRe.Match(s) {
		ps.errorf(n, "invalid %s name %q: %s", what, s, nameRule)
	}
}

func (ps *parser) template(n *yaml.Node, what, s string) {
	for _, m := range ps.tmpl.check(s) {
		ps.errorf(n, "%s: %s", what, m)
	}
	ps.secretRefs(n, what, s)
}

// secretRefs checks the ${secret:NAME} references of a value that is
// expanded at run time and records them, so that the caller can check
// that every secret exists before anything runs.
func (ps *parser) secretRefs(n *yaml.Node, what, s string) {
	if !strings.Contains(s, "${") {
		return
	}
	if err := secrets.ValidateRefs(s); err != nil {
		ps.errorf(n, "%s: %s", what, err.Error())
		return
	}
	for _, name := range secrets.Refs(s) {
		ps.refs = append(ps.refs, SecretRef{Name: name, Pos: ps.pos(n)})
	}
}

var topFields = []string{"pipeline", "namespace", "description", "schedule", "classification", "params", "defaults", "max_active_tasks", "tasks", "catchup", "catchup_limit", "max_active_runs", "deadline"}

func (ps *parser) pipeline(src []byte, p *Pipeline) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.errs = append(ps.errs, Error{Pos: Pos{File: ps.file, Line: 1, Col: 1}, Msg: "the file is empty: a pipeline needs at least pipeline: and tasks:"})
			return
		}
		ps.yamlError(err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.errorf(&extra, "a pipeline file holds one YAML document; remove the second one")
	} else if !errors.Is(err, io.EOF) {
		ps.yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root = ps.resolve(root); root == nil {
		return
	}
	if root.Kind != yaml.MappingNode {
		ps.errorf(root, "a pipeline file is a mapping with pipeline:, tasks: and so on, got %s", describe(root))
		return
	}

	// A credential written into the file is an error wherever it is: it
	// belongs in the secret store, referenced as ${secret:NAME}.
	for _, f := range secrets.Scan(root) {
		ps.errs = append(ps.errs, Error{Pos: Pos{File: ps.file, Line: f.Line, Col: f.Col}, Msg: f.Message})
	}

	p.Namespace = DefaultNamespace
	p.Classification = Internal
	p.Defaults = Policy{Backoff: BackoffExponential, RetryDelay: DefaultRetryDelay, MaxRetryDelay: DefaultMaxRetryDelay, Jitter: true}

	fields := map[string]pair{}
	for _, kv := range ps.pairs(root, "pipeline", "field") {
		if !contains(topFields, kv.key.Value) {
			ps.unknownField(kv.key, "", topFields)
			continue
		}
		fields[kv.key.Value] = kv
	}

	if kv, ok := fields["pipeline"]; ok {
		if s, ok := ps.str(kv.val, "pipeline"); ok {
			p.Name = s
			ps.name(ps.resolve(kv.val), "pipeline", s)
		}
	} else {
		ps.errorf(root, "missing pipeline: the pipeline's name")
	}
	if kv, ok := fields["namespace"]; ok {
		if s, ok := ps.str(kv.val, "namespace"); ok {
			p.Namespace = s
			ps.name(ps.resolve(kv.val), "namespace", s)
		}
	}
	if kv, ok := fields["description"]; ok {
		if s, ok := ps.str(kv.val, "description"); ok {
			p.Description = s
		}
	}
	if kv, ok := fields["schedule"]; ok {
		if s, ok := ps.str(kv.val, "schedule"); ok {
			if _, err := cron.ParseStandard(s); err != nil {
				ps.errorf(ps.resolve(kv.val), "schedule: invalid cron expression %q: %s (want 5 fields \"minute hour day-of-month month day-of-week\", or @hourly, @daily, @weekly, @monthly, @yearly, @every <duration>)", s, err.Error())
			} else {
				p.Schedule = s
			}
		}
	}
	if kv, ok := fields["classification"]; ok {
		if s, ok := ps.str(kv.val, "classification"); ok {
			switch c := Classification(s); c {
			case Public, Internal, Confidential, Restricted:
				p.Classification = c
				ps.classification = c
			default:
				ps.errorf(ps.resolve(kv.val), "classification: unknown classification %q (want public, internal, confidential or restricted)", s)
			}
		}
	}
	if kv, ok := fields["max_active_tasks"]; ok {
		if i, ok := ps.integer(kv.val, "max_active_tasks"); ok {
			if i < 0 {
				ps.errorf(ps.resolve(kv.val), "max_active_tasks: must not be negative (0 means the engine's default)")
			} else {
				p.MaxActiveTasks = i
			}
		}
	}
	ps.scheduling(fields, p)
	ps.tmpl = templateChecker{params: map[string]bool{}}
	if kv, ok := fields["params"]; ok {
		ps.params(kv.val, p)
	}
	if kv, ok := fields["defaults"]; ok {
		if n := ps.resolve(kv.val); n != nil {
			var pn policyNodes
			for _, f := range ps.pairs(n, "defaults", "field") {
				if !pn.set(f) {
					ps.unknownField(f.key, "defaults: ", policyFields)
				}
			}
			p.Defaults = ps.policy(p.Defaults, pn, "defaults: ")
		}
	}
	if kv, ok := fields["tasks"]; ok {
		ps.tasks(kv.val, p)
	} else {
		ps.errorf(root, "missing tasks: a pipeline needs at least one task")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var paramFields = []string{"type", "default", "required", "description"}

func (ps *parser) params(n *yaml.Node, p *Pipeline) {
	if n = ps.resolve(n); n == nil || isNull(n) {
		return
	}
	envs := map[string]string{}
	for _, kv := range ps.pairs(n, "params", "param") {
		prm := Param{Name: kv.key.Value, Type: ParamString, Pos: ps.pos(kv.key)}
		ps.name(kv.key, "param", prm.Name)
		if other, dup := envs[ParamEnv(prm.Name)]; dup {
			ps.errorf(kv.key, "param %q and param %q would both be read from $%s: rename one", prm.Name, other, ParamEnv(prm.Name))
		}
		envs[ParamEnv(prm.Name)] = prm.Name
		ps.tmpl.params[prm.Name] = true
		v := ps.resolve(kv.val)
		if v == nil {
			continue
		}
		what := fmt.Sprintf("param %q", prm.Name)
		switch v.Kind {
		case yaml.ScalarNode:
			// Shorthand: "name: value" is a string param defaulting to value.
			if !isNull(v) {
				prm.Default = v.Value
			}
		case yaml.MappingNode:
			var defNode *yaml.Node
			for _, f := range ps.pairs(v, what, "field") {
				switch f.key.Value {
				case "type":
					if s, ok := ps.str(f.val, what+": type"); ok {
						switch t := ParamType(s); t {
						case ParamString, ParamInt, ParamFloat, ParamBool, ParamDate:
							prm.Type = t
						default:
							ps.errorf(ps.resolve(f.val), "%s: unknown type %q (want string, int, float, bool or date)", what, s)
						}
					}
				case "default":
					defNode = ps.resolve(f.val)
					if defNode != nil {
						if defNode.Kind != yaml.ScalarNode {
							ps.errorf(defNode, "%s: default: want a value, got %s", what, describe(defNode))
							defNode = nil
						} else if isNull(defNode) {
							defNode = nil
						}
					}
				case "required":
					if b, ok := ps.boolean(f.val, what+": required"); ok {
						prm.Required = b
					}
				case "description":
					if s, ok := ps.str(f.val, what+": description"); ok {
						prm.Description = s
					}
				default:
					ps.unknownField(f.key, what+": ", paramFields)
				}
			}
			if defNode != nil {
				if prm.Required {
					ps.errorf(defNode, "%s: a required param has no default; drop one of required and default", what)
				} else if norm, err := normalizeParam(prm.Type, defNode.Value); err != nil {
					ps.errorf(defNode, "%s: default: %s", what, err.Error())
				} else {
					prm.Default = norm
				}
			}
		default:
			ps.errorf(v, "%s: want a default value or a mapping with type, default, required, description; got %s", what, describe(v))
		}
		p.Params = append(p.Params, prm)
	}
}

var policyFields = []string{"retries", "retry_backoff", "retry_delay", "max_retry_delay", "retry_jitter", "timeout"}

// policyNodes holds the policy fields a defaults: block or a task wrote.
type policyNodes struct {
	retries, backoff, delay, maxDelay, jitter, timeout *yaml.Node
}

// set records f if it is a policy field.
func (pn *policyNodes) set(f pair) bool {
	switch f.key.Value {
	case "retries":
		pn.retries = f.val
	case "retry_backoff":
		pn.backoff = f.val
	case "retry_delay":
		pn.delay = f.val
	case "max_retry_delay":
		pn.maxDelay = f.val
	case "retry_jitter":
		pn.jitter = f.val
	case "timeout":
		pn.timeout = f.val
	default:
		return false
	}
	return true
}

// policy returns base overridden by the fields in pn.
func (ps *parser) policy(base Policy, pn policyNodes, where string) Policy {
	pol := base
	if pn.retries != nil {
		if i, ok := ps.integer(pn.retries, where+"retries"); ok {
			if i < 0 {
				ps.errorf(ps.resolve(pn.retries), "%sretries: must not be negative", where)
			} else {
				pol.Retries = i
			}
		}
	}
	if pn.backoff != nil {
		if s, ok := ps.str(pn.backoff, where+"retry_backoff"); ok {
			switch b := Backoff(s); b {
			case BackoffConstant, BackoffExponential:
				pol.Backoff = b
			default:
				ps.errorf(ps.resolve(pn.backoff), "%sretry_backoff: unknown backoff %q (want constant or exponential)", where, s)
			}
		}
	}
	if pn.delay != nil {
		if d, ok := ps.duration(pn.delay, where+"retry_delay"); ok {
			pol.RetryDelay = d
		}
	}
	if pn.maxDelay != nil {
		if d, ok := ps.duration(pn.maxDelay, where+"max_retry_delay"); ok {
			pol.MaxRetryDelay = d
		}
	}
	if pn.jitter != nil {
		if b, ok := ps.boolean(pn.jitter, where+"retry_jitter"); ok {
			pol.Jitter = b
		}
	}
	if pn.timeout != nil {
		if d, ok := ps.duration(pn.timeout, where+"timeout"); ok {
			pol.Timeout = d
		}
	}
	if (pn.delay != nil || pn.maxDelay != nil) && pol.MaxRetryDelay < pol.RetryDelay {
		at := pn.maxDelay
		if at == nil {
			at = pn.delay
		}
		if at = ps.resolve(at); at != nil {
			ps.errorf(at, "%smax_retry_delay (%s) is less than retry_delay (%s)", where, pol.MaxRetryDelay, pol.RetryDelay)
		}
	}
	return pol
}

var taskFields = []string{
	"needs", "trigger_rule", "shell", "script", "env", "dir",
	"extract", "transform", "load", "input", "schema", "max_bad_rows", "max_bad_ratio",
	"pii_columns", "allow_raw_pii", "retain",
	"retries", "retry_backoff", "retry_delay", "max_retry_delay", "retry_jitter", "timeout",
}

func (ps *parser) tasks(n *yaml.Node, p *Pipeline) {
	if n = ps.resolve(n); n == nil {
		return
	}
	if isNull(n) || (n.Kind == yaml.MappingNode && len(n.Content) == 0) {
		ps.errorf(n, "tasks: a pipeline needs at least one task")
		return
	}
	srcs := map[*Task]*taskSrc{}
	for _, kv := range ps.pairs(n, "tasks", "task") {
		t, src := ps.task(kv, p)
		if t != nil {
			p.Tasks = append(p.Tasks, t)
			srcs[t] = src
		}
	}
	ps.links(p, srcs)
}

func (ps *parser) task(kv pair, p *Pipeline) (*Task, *taskSrc) {
	t := &Task{Name: kv.key.Value, Pos: ps.pos(kv.key), TriggerRule: AllSuccess}
	src := &taskSrc{key: kv.key, needs: map[string]*yaml.Node{}}
	ps.name(kv.key, "task", t.Name)
	what := fmt.Sprintf("task %q", t.Name)
	v := ps.resolve(kv.val)
	if v == nil {
		return nil, nil
	}
	fields := map[string]pair{}
	if v.Kind != yaml.MappingNode {
		ps.errorf(v, "%s: want a mapping with the task's kind (shell, script, extract, transform or load), got %s", what, describe(v))
		return t, src
	}
	var kindKeys []*yaml.Node
	for _, f := range ps.pairs(v, what, "field") {
		if src.policy.set(f) {
			continue
		}
		if !contains(taskFields, f.key.Value) {
			ps.unknownField(f.key, what+": ", taskFields)
			continue
		}
		fields[f.key.Value] = f
		switch f.key.Value {
		case "shell", "script", "extract", "transform", "load":
			kindKeys = append(kindKeys, f.key)
		}
	}

	// Exactly one kind; extract, transform and load together are one kind.
	kindOf := func(k string) Kind {
		switch k {
		case "shell":
			return KindShell
		case "script":
			return KindScript
		}
		return KindData
	}
	for _, k := range kindKeys {
		kind := kindOf(k.Value)
		if t.Kind == "" {
			t.Kind = kind
		} else if kind != t.Kind {
			ps.errorf(k, "%s has two kinds (%s and %s): a task does one thing; split it into two tasks and connect them with needs", what, t.Kind, kind)
		}
	}
	if t.Kind == "" {
		ps.errorf(kv.key, "%s has no kind: give it one of shell, script, extract, transform or load", what)
	}

	if f, ok := fields["needs"]; ok {
		names, nodes := ps.strList(f.val, what+": needs", true)
		for i, name := range names {
			if _, dup := src.needs[name]; dup {
				ps.errorf(nodes[i], "%s: needs %q twice", what, name)
				continue
			}
			src.needs[name] = nodes[i]
			t.Needs = append(t.Needs, name)
		}
	}
	if f, ok := fields["trigger_rule"]; ok {
		if s, ok := ps.str(f.val, what+": trigger_rule"); ok {
			switch r := TriggerRule(s); r {
			case AllSuccess, AllDone, OneFailed, NoneFailed:
				t.TriggerRule = r
			default:
				ps.errorf(ps.resolve(f.val), "%s: unknown trigger_rule %q (want all_success, all_done, one_failed or none_failed)", what, s)
			}
		}
	}
	t.Policy = ps.policy(p.Defaults, src.policy, what+": ")

	if f, ok := fields["shell"]; ok && t.Kind == KindShell {
		argv, nodes := ps.strList(f.val, what+": shell", false)
		if n := ps.resolve(f.val); n != nil && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
			ps.errorf(n, "%s: shell: the command is empty; give the program and its arguments as a list, e.g. [\"pg_dump\", \"--table\", \"t\"]", what)
		}
		for i, a := range argv {
			ps.template(nodes[i], what+": shell", a)
		}
		if len(argv) > 0 && argv[0] == "" {
			ps.errorf(nodes[0], "%s: shell: the program name is empty", what)
		}
		t.Argv = argv
	}
	if f, ok := fields["script"]; ok && t.Kind == KindScript {
		if s, ok := ps.str(f.val, what+": script"); ok {
			n := ps.resolve(f.val)
			if strings.TrimSpace(s) == "" {
				ps.errorf(n, "%s: script is empty", what)
			}
			for _, m := range scriptTemplateMsgs(s) {
				ps.errs = append(ps.errs, Error{Pos: ps.within(n, m.line, m.text), Msg: what + ": " + m.msg})
			}
			for _, name := range secrets.Refs(s) {
				ps.errorf(n, "%s: script: secret references are not expanded in a script, so that no value is ever interpreted by the shell: "+
					"pass it in the environment (env: {%s: \"${secret:%s}\"}) and read \"$%s\"", what, envName(name), name, envName(name))
			}
			t.Script = s
		}
	}
	if f, ok := fields["env"]; ok {
		if t.Kind == KindData {
			ps.errorf(f.key, "%s: env is only for shell and script tasks", what)
		} else if n := ps.resolve(f.val); n != nil && !isNull(n) {
			for _, e := range ps.pairs(n, what+": env", "variable") {
				name := e.key.Value
				switch {
				case !envNameRe.MatchString(name):
					ps.errorf(e.key, "%s: env: invalid variable name %q (letters, digits and _, not starting with a digit)", what, name)
				case strings.HasPrefix(strings.ToUpper(name), envReserved):
					ps.errorf(e.key, "%s: env: %q is reserved: sluice sets the SLUICE_* variables itself", what, name)
				}
				if val, ok := ps.str(e.val, fmt.Sprintf("%s: env: %s", what, name)); ok {
					ps.template(ps.resolve(e.val), fmt.Sprintf("%s: env: %s", what, name), val)
					if t.Env == nil {
						t.Env = map[string]string{}
					}
					t.Env[name] = val
				}
			}
		}
	}
	if f, ok := fields["dir"]; ok {
		if t.Kind == KindData {
			ps.errorf(f.key, "%s: dir is only for shell and script tasks", what)
		} else if s, ok := ps.str(f.val, what+": dir"); ok {
			ps.template(ps.resolve(f.val), what+": dir", s)
			t.Dir = s
		}
	}

	if f, ok := fields["input"]; ok {
		if t.Kind != KindData {
			ps.errorf(f.key, "%s: input is only for data tasks", what)
		} else if s, ok := ps.str(f.val, what+": input"); ok {
			t.Input = s
			src.input = ps.resolve(f.val)
		}
	}
	if f, ok := fields["extract"]; ok && t.Kind == KindData {
		src.source = true
		t.Extract = ps.endpoint(f, what, true)
	}
	if f, ok := fields["transform"]; ok && t.Kind == KindData {
		t.Transform = ps.steps(f.val, what, src)
	}
	ps.dataLimits(fields, t, what)
	ps.privacyFields(fields, t, what)
	if f, ok := fields["load"]; ok && t.Kind == KindData {
		t.Load = ps.endpoint(f, what, false)
	}
	return t, src
}

// endpoint parses "connector: {settings}" under extract: or load:.
func (ps *parser) endpoint(f pair, what string, source bool) *Endpoint {
	role, list := "load", ps.reg.Sinks()
	if source {
		role, list = "extract", ps.reg.Sources()
	}
	n := ps.resolve(f.val)
	if n == nil {
		return nil
	}
	kvs := ps.pairs(n, what+": "+role, "connector")
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var class Classification
	if !source {
		kvs, class = ps.sinkClassification(kvs, what)
	}
	if len(kvs) != 1 {
		ps.errorf(n, "%s: %s: want exactly one connector, e.g. {csv: {path: data.csv}}, got %d", what, role, len(kvs))
		if len(kvs) == 0 {
			return nil
		}
	}
	kv := kvs[0]
	name := kv.key.Value
	c, ok := ps.reg.Lookup(name)
	if !ok {
		ps.errorf(kv.key, "%s: %s: unknown connector %q (known: %s)", what, role, name, knownList(list))
		return nil
	}
	if source && c.OpenSource == nil {
		ps.errorf(kv.key, "%s: extract: connector %q cannot be a source, only a sink (sources: %s)", what, name, knownList(list))
		return nil
	}
	if !source && c.OpenSink == nil {
		ps.errorf(kv.key, "%s: load: connector %q cannot be a sink, only a source (sinks: %s)", what, name, knownList(list))
		return nil
	}
	cfgNode := ps.resolve(kv.val)
	if cfgNode == nil {
		return nil
	}
	cfg := c.Config()
	prefix := fmt.Sprintf("%s: %s: %s: ", what, role, name)
	if err := strictyaml.Decode(cfgNode, cfg); err != nil {
		var es strictyaml.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				at := Pos{File: ps.file, Line: e.Line, Col: e.Col}
				if e.Line == 0 {
					at = ps.pos(cfgNode)
				}
				ps.errs = append(ps.errs, Error{Pos: at, Msg: prefix + e.Msg})
			}
		} else {
			ps.errorf(cfgNode, "%s%s", prefix, err.Error())
		}
	}
	ps.configTemplates(cfgNode, prefix)
	if c.Transport != nil {
		class := ps.classification
		if class == "" {
			class = Internal
		}
		if err := c.Transport(cfg, string(class)); err != nil {
			ps.errorf(cfgNode, "%s%s", prefix, err.Error())
		}
	}
	return &Endpoint{Connector: name, Config: cfg, Pos: ps.pos(kv.key), Classification: class}
}

// configTemplates checks every string in a connector's settings that holds
// "{{": connectors expand them at run time, so they must be valid now.
func (ps *parser) configTemplates(n *yaml.Node, prefix string) {
	if n = ps.resolve(n); n == nil {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" && strings.Contains(n.Value, "{{") {
			for _, m := range ps.tmpl.check(n.Value) {
				ps.errorf(n, "%s%s", prefix, m)
			}
		}
		if n.ShortTag() == "!!str" {
			ps.secretRefs(n, strings.TrimSuffix(prefix, ": "), n.Value)
		}
	case yaml.MappingNode, yaml.SequenceNode:
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys are setting names, not templates
			}
			ps.configTemplates(c, prefix)
		}
	}
}

func knownList(names []string) string {
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}

var stepKinds = []string{"select", "drop", "rename", "cast", "filter", "derive", "dedupe", "aggregate", "join", "check", "consent", "pii"}

func (ps *parser) steps(n *yaml.Node, what string, src *taskSrc) []Step {
	if n = ps.resolve(n); n == nil || isNull(n) {
		return nil
	}
	what += ": transform"
	if n.Kind != yaml.SequenceNode {
		ps.errorf(n, "%s: want a list of steps such as - filter: \"row.age >= 18\", got %s", what, describe(n))
		return nil
	}
	var steps []Step
	for _, item := range n.Content {
		item = ps.resolve(item)
		if item == nil {
			continue
		}
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			ps.errorf(item, "%s: each step is a mapping with one key (one of %s), got %s", what, strings.Join(stepKinds, ", "), describeStep(item))
			continue
		}
		k, v := ps.resolve(item.Content[0]), item.Content[1]
		if k == nil {
			continue
		}
		st := Step{Kind: StepKind(k.Value), Pos: ps.pos(k)}
		sw := fmt.Sprintf("%s: %s", what, k.Value)
		switch st.Kind {
		case StepSelect, StepDrop:
			cols, nodes := ps.strList(v, sw, false)
			if len(cols) == 0 && len(nodes) == 0 {
				if vn := ps.resolve(v); vn != nil && vn.Kind == yaml.SequenceNode {
					ps.errorf(vn, "%s: name at least one column", sw)
				}
			}
			seen := map[string]bool{}
			for i, c := range cols {
				ps.column(nodes[i], sw, c, false)
				if seen[c] {
					ps.errorf(nodes[i], "%s: column %q is listed twice", sw, c)
				}
				seen[c] = true
			}
			st.Columns = cols
		case StepRename:
			for _, kv := range ps.columnMap(v, sw) {
				if to, ok := ps.str(kv.val, fmt.Sprintf("%s: %s", sw, kv.key.Value)); ok {
					ps.column(kv.key, sw, kv.key.Value, false)
					ps.column(ps.resolve(kv.val), sw, to, true)
					st.Renames = append(st.Renames, Rename{From: kv.key.Value, To: to})
				}
			}
		case StepCast:
			for _, kv := range ps.columnMap(v, sw) {
				if ts, ok := ps.str(kv.val, fmt.Sprintf("%s: %s", sw, kv.key.Value)); ok {
					ps.column(kv.key, sw, kv.key.Value, false)
					typ, err := data.ParseType(ts)
					if err != nil {
						ps.errorf(ps.resolve(kv.val), "%s: column %q: %s", sw, kv.key.Value, err.Error())
						continue
					}
					st.Casts = append(st.Casts, Cast{Column: kv.key.Value, Type: typ})
				}
			}
		case StepFilter:
			if src, ok := ps.str(v, sw); ok {
				ps.cel(ps.resolve(v), sw, src, true)
				st.Expr = src
			}
		case StepDerive:
			for _, kv := range ps.columnMap(v, sw) {
				cw := fmt.Sprintf("%s: %s", sw, kv.key.Value)
				if src, ok := ps.str(kv.val, cw); ok {
					ps.column(kv.key, sw, kv.key.Value, true)
					vn := ps.resolve(kv.val)
					ps.cel(vn, cw, src, false)
					st.Derives = append(st.Derives, Derive{Column: kv.key.Value, Expr: src, Pos: ps.pos(vn)})
				}
			}
		case StepDedupe:
			st.Dedupe = ps.dedupe(v, sw)
		case StepAggregate:
			st.Aggregate = ps.aggregate(v, sw)
		case StepJoin:
			st.Join = ps.join(v, sw, src)
		case StepCheck:
			st.Check = ps.checkStep(v, sw, src)
		case StepConsent:
			st.Consent = ps.consentStep(v, sw)
		case StepPII:
			st.PII = ps.piiStep(v, sw)
		default:
			ps.errorf(k, "%s: unknown step %q (known: %s)", what, k.Value, strings.Join(sortedCopy(stepKinds), ", "))
			continue
		}
		steps = append(steps, st)
	}
	return steps
}

func describeStep(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		return fmt.Sprintf("a mapping with %d keys", len(n.Content)/2)
	}
	return describe(n)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// columnMap reads a non-empty, ordered column → value mapping.
func (ps *parser) columnMap(n *yaml.Node, what string) []pair {
	if n = ps.resolve(n); n == nil {
		return nil
	}
	kvs := ps.pairs(n, what, "column")
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		ps.errorf(n, "%s: name at least one column", what)
	}
	return kvs
}

// column checks a column name. Names a step refers to may be anything a
// source produced (a CSV header with a space, say) but must be printable;
// names a step creates must be identifiers so that CEL reaches them as
// row.<name>.
func (ps *parser) column(n *yaml.Node, what, name string, creates bool) {
	if n == nil {
		return
	}
	if creates {
		if !identRe.Match(name) {
			ps.errorf(n, "%s: invalid new column name %q: start with a letter or _, then letters, digits or _, at most 64 characters", what, name)
		}
		return
	}
	if name == "" || len(name) > 256 || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		ps.errorf(n, "%s: invalid column name %q", what, name)
	}
}

func (ps *parser) cel(n *yaml.Node, what, src string, wantBool bool) {
	if n == nil {
		return
	}
	if err := expr.Check(src, wantBool); err != nil {
		ps.errorf(n, "%s: invalid expression %q: %s", what, src, celMsg(err))
	}
}

var (
	celIssueRe     = regexp.MustCompile(`^ERROR: <input>:(\d+):(\d+): (.*)$`)
	celExpectingRe = regexp.MustCompile(` expecting \{[^}]*\}`)
)

// celMsg turns CEL's multi-line report (issue lines with a source excerpt
// and a caret) into one line per issue with the column in the expression.
func celMsg(err error) string {
	var issues []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if m := celIssueRe.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			msg := celExpectingRe.ReplaceAllString(m[3], "")
			issues = append(issues, fmt.Sprintf("%s (at column %s)", msg, m[2]))
		}
	}
	if len(issues) == 0 {
		return strings.Join(strings.Fields(err.Error()), " ")
	}
	return strings.Join(issues, "; ")
}

// links checks what needs every task parsed: needs targets, data inputs and
// cycles.
func (ps *parser) links(p *Pipeline, srcs map[*Task]*taskSrc) {
	byName := make(map[string]*Task, len(p.Tasks))
	names := make([]string, 0, len(p.Tasks))
	for _, t := range p.Tasks {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	sort.Strings(names)
	producesData := func(t *Task) bool { return t != nil && t.Kind == KindData && t.Load == nil }

	for _, t := range p.Tasks {
		src := srcs[t]
		what := fmt.Sprintf("task %q", t.Name)
		for _, need := range t.Needs {
			if byName[need] == nil {
				ps.errorf(src.needs[need], "%s needs %q, which is not a task in this pipeline (tasks: %s)", what, need, strings.Join(names, ", "))
			}
		}
		if t.Kind != KindData {
			continue
		}
		switch {
		case t.Extract != nil && t.Input != "":
			ps.errorf(src.input, "%s: input and extract both say where the records come from; keep one", what)
		case t.Extract != nil, src.source && t.Input == "":
			// Reads its own source (an invalid extract was reported already).
		case t.Input != "":
			up := byName[t.Input]
			switch {
			case src.needs[t.Input] == nil:
				ps.errorf(src.input, "%s: input %q must also be listed in needs", what, t.Input)
			case up == nil:
				// Reported as a missing needs target.
			case !producesData(up):
				ps.errorf(src.input, "%s: input %q produces no records: it must be a data task without load", what, t.Input)
			}
		default:
			// A task a join step reads is not a candidate input unless
			// it is the only one.
			joined := map[string]bool{}
			for _, j := range src.joins {
				joined[j.with] = true
			}
			var cands, joinedCands []string
			for _, need := range t.Needs {
				switch {
				case !producesData(byName[need]):
				case joined[need]:
					joinedCands = append(joinedCands, need)
				default:
					cands = append(cands, need)
				}
			}
			if len(cands) == 0 && len(joinedCands) == 1 {
				cands = joinedCands
			}
			switch len(cands) {
			case 1:
				t.Input = cands[0]
			case 0:
				ps.errorf(src.key, "%s has no input: give it an extract, or need a data task without load whose records it reads", what)
			default:
				ps.errorf(src.key, "%s: ambiguous input: %s all produce records; say which one with input:", what, strings.Join(cands, ", "))
			}
		}
	}
	for _, t := range p.Tasks {
		src := srcs[t]
		what := fmt.Sprintf("task %q", t.Name)
		for _, j := range src.joins {
			up := byName[j.with]
			switch {
			case src.needs[j.with] == nil:
				ps.errorf(j.node, "%s: transform: %s %q must also be listed in needs", what, j.labelOr(), j.with)
			case up == nil:
				// Reported as a missing needs target.
			case !producesData(up):
				ps.errorf(j.node, "%s: transform: %s %q produces no records: it must be a data task without load", what, j.labelOr(), j.with)
			}
		}
	}
	for _, c := range cycles(p.Tasks) {
		ps.errorf(srcs[byName[c[0]]].key, "cycle: %s", strings.Join(c, " -> "))
	}
}
