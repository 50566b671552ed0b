package pipeline

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// Vars are the values a template can refer to: {{ .LogicalDate }},
// {{ .RunID }}, {{ .Pipeline }}, {{ .Namespace }}, {{ .Task }} and
// {{ .Params.name }} (or {{ index .Params "name" }} for a name with a dash).
type Vars struct {
	LogicalDate string // the run's logical date, YYYY-MM-DD
	RunID       string
	Pipeline    string
	Namespace   string
	Task        string
	Params      map[string]string // resolved params, see ResolveParams
	// Secret resolves a ${secret:NAME} reference at the moment a value is
	// expanded; nil means references are an error. It is only ever
	// applied to references written in the pipeline file: a param value
	// or a secret value that looks like a reference is inserted as text.
	Secret func(name string) (string, error)
}

// The environment variables a shell or script task receives. Scripts read
// values from here instead of from templates, so that no value is ever
// interpreted by a shell.
const (
	EnvLogicalDate = "SLUICE_LOGICAL_DATE"
	EnvRunID       = "SLUICE_RUN_ID"
	EnvPipeline    = "SLUICE_PIPELINE"
	EnvNamespace   = "SLUICE_NAMESPACE"
	EnvTask        = "SLUICE_TASK"
	// EnvParamPrefix prefixes each param; see ParamEnv.
	EnvParamPrefix = "SLUICE_PARAM_"
	// envReserved is the prefix a task's own env: may not use, so that a
	// spec cannot shadow the values sluice provides.
	envReserved = "SLUICE_"
)

// envName suggests an environment variable name for secret name.
func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// ParamEnv returns the environment variable that carries param name:
// SLUICE_PARAM_ and the name upper-cased with '-' replaced by '_'
// ("day" → SLUICE_PARAM_DAY, "max-rows" → SLUICE_PARAM_MAX_ROWS). Parse
// rejects two params that map to the same variable.
func ParamEnv(name string) string {
	return EnvParamPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Environ returns the SLUICE_* variables for v as "KEY=value" strings,
// sorted: what a shell or script task adds to its environment.
func Environ(v Vars) []string {
	env := []string{
		EnvLogicalDate + "=" + v.LogicalDate,
		EnvRunID + "=" + v.RunID,
		EnvPipeline + "=" + v.Pipeline,
		EnvNamespace + "=" + v.Namespace,
		EnvTask + "=" + v.Task,
	}
	for name, val := range v.Params {
		env = append(env, ParamEnv(name)+"="+val)
	}
	sort.Strings(env)
	return env
}

// Expand renders tmpl with v, and its ${secret:NAME} references with
// v.Secret. A reference to a missing param is an error, never an empty
// string; $${secret:NAME} stands for the literal text ${secret:NAME}. A
// string with neither templates nor references is returned as it is.
//
// References become calls of a template function before the template is
// parsed, so that a value is inserted exactly once and never scanned
// again: a param whose value spells ${secret:x} cannot make sluice reveal
// a secret the pipeline does not reference, and a secret holding "{{" is
// not run as a template.
func Expand(tmpl string, v Vars) (string, error) {
	refs := strings.Contains(tmpl, "${secret:")
	if !refs && !strings.Contains(tmpl, "{{") {
		return tmpl, nil
	}
	src := tmpl
	if refs {
		src = secretRefRe.ReplaceAllStringFunc(tmpl, func(m string) string {
			if strings.HasPrefix(m, "$$") {
				return m[1:] // the escape: literal text
			}
			return fmt.Sprintf("{{secret %q}}", m[len("${secret:"):len(m)-1])
		})
	}
	secret := func(name string) (string, error) {
		if v.Secret == nil {
			return "", fmt.Errorf("secret %q: secrets cannot be resolved here", name)
		}
		return v.Secret(name)
	}
	t, err := template.New("").Option("missingkey=error").Funcs(template.FuncMap{"secret": secret}).Parse(src)
	if err != nil {
		return "", fmt.Errorf("parsing template %q: %s", tmpl, templateMsg(err))
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("expanding template %q: %w", tmpl, err)
	}
	return b.String(), nil
}

// secretRefRe matches a secret reference, or its $$ escape. Malformed
// references are rejected by Parse (see secrets.ValidateRefs).
var secretRefRe = regexp.MustCompile(`\$?\$\{secret:[^}]*\}`)

var templateErrPrefix = regexp.MustCompile(`^template: [^:]*:(\d+:)*\s*`)

// templateMsg strips the "template: name:line:" prefix from a template
// error; the pipeline error carries its own position.
func templateMsg(err error) string {
	return templateErrPrefix.ReplaceAllString(err.Error(), "")
}

var simpleVars = []string{"LogicalDate", "RunID", "Pipeline", "Namespace", "Task"}

// templateChecker validates templates against the declared params.
type templateChecker struct {
	params map[string]bool
}

// check parses s as a template and returns every problem in it: a syntax
// error, or a reference to a field Vars does not have or a param the
// pipeline does not declare.
func (c templateChecker) check(s string) []string {
	if !strings.Contains(s, "{{") {
		return nil
	}
	t, err := template.New("").Option("missingkey=error").Parse(s)
	if err != nil {
		return []string{"invalid template: " + templateMsg(err)}
	}
	if len(t.Templates()) > 1 {
		return []string{"invalid template: define and block are not supported"}
	}
	var msgs []string
	c.walk(t.Tree.Root, &msgs)
	return msgs
}

func (c templateChecker) walk(n parse.Node, msgs *[]string) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, x := range n.Nodes {
			c.walk(x, msgs)
		}
	case *parse.ActionNode:
		c.walk(n.Pipe, msgs)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, cmd := range n.Cmds {
			c.walk(cmd, msgs)
		}
	case *parse.CommandNode:
		// index .Params "name": the way to reach a param whose name has a dash.
		if len(n.Args) == 3 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
				if f, ok := n.Args[1].(*parse.FieldNode); ok && len(f.Ident) == 1 && f.Ident[0] == "Params" {
					if s, ok := n.Args[2].(*parse.StringNode); ok {
						c.param(s.Text, msgs)
						return
					}
				}
			}
		}
		for _, a := range n.Args {
			c.walk(a, msgs)
		}
	case *parse.FieldNode:
		c.ref(n.Ident, msgs)
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.ref(n.Ident[1:], msgs)
		}
	case *parse.ChainNode:
		c.walk(n.Node, msgs)
	case *parse.IfNode:
		c.branch(&n.BranchNode, msgs)
	case *parse.RangeNode:
		c.branch(&n.BranchNode, msgs)
	case *parse.WithNode:
		c.branch(&n.BranchNode, msgs)
	case *parse.TemplateNode:
		*msgs = append(*msgs, "invalid template: {{ template }} is not supported")
	}
}

func (c templateChecker) branch(b *parse.BranchNode, msgs *[]string) {
	c.walk(b.Pipe, msgs)
	c.walk(b.List, msgs)
	c.walk(b.ElseList, msgs)
}

func (c templateChecker) ref(ident []string, msgs *[]string) {
	head := ident[0]
	if head == "Params" {
		switch {
		case len(ident) == 1:
			*msgs = append(*msgs, "template refers to .Params: use .Params.<name> for one param")
		case len(ident) > 2:
			*msgs = append(*msgs, fmt.Sprintf("template refers to .Params.%s: a param has no fields", strings.Join(ident[1:], ".")))
		default:
			c.param(ident[1], msgs)
		}
		return
	}
	for _, v := range simpleVars {
		if head == v {
			if len(ident) > 1 {
				*msgs = append(*msgs, fmt.Sprintf("template refers to .%s: .%s has no fields", strings.Join(ident, "."), head))
			}
			return
		}
	}
	*msgs = append(*msgs, fmt.Sprintf("template refers to unknown field .%s (known: .LogicalDate, .Namespace, .Params.<name>, .Pipeline, .RunID, .Task)", head))
}

func (c templateChecker) param(name string, msgs *[]string) {
	if c.params[name] {
		return
	}
	*msgs = append(*msgs, fmt.Sprintf("template refers to undeclared param %q (%s)", name, declared(c.params)))
}

func declared(params map[string]bool) string {
	if len(params) == 0 {
		return "the pipeline declares no params"
	}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	return "declared: " + strings.Join(names, ", ")
}

// scriptRef finds template actions in a script that refer to sluice's
// values. Scripts are never expanded; such an action is a mistake, and the
// message says which environment variable to read instead. Other "{{ }}"
// (a docker --format, say) is left alone.
var scriptRef = regexp.MustCompile(`\{\{-?\s*[^}]*?\$?\.(LogicalDate|RunID|Pipeline|Namespace|Task|Params)\b(\.([A-Za-z_][A-Za-z0-9_]*))?[^}]*\}\}`)

// scriptMsg is a template found in a script: the message, and the text and
// 0-based line within the script where it was found.
type scriptMsg struct {
	msg, text string
	line      int
}

func scriptTemplateMsgs(script string) []scriptMsg {
	var msgs []scriptMsg
	for _, idx := range scriptRef.FindAllStringSubmatchIndex(script, -1) {
		m := make([]string, len(idx)/2)
		for i := range m {
			if idx[2*i] >= 0 {
				m[i] = script[idx[2*i]:idx[2*i+1]]
			}
		}
		var env string
		switch m[1] {
		case "LogicalDate":
			env = EnvLogicalDate
		case "RunID":
			env = EnvRunID
		case "Pipeline":
			env = EnvPipeline
		case "Namespace":
			env = EnvNamespace
		case "Task":
			env = EnvTask
		case "Params":
			if m[3] != "" {
				env = ParamEnv(m[3])
			} else {
				env = EnvParamPrefix + "<NAME>"
			}
		}
		msgs = append(msgs, scriptMsg{
			msg:  fmt.Sprintf(`templates are not expanded in a script, so that no value is ever interpreted by the shell: instead of %s read "$%s" from the environment`, m[0], env),
			text: m[0],
			line: strings.Count(script[:idx[0]], "\n"),
		})
	}
	return msgs
}
