package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// The normalised form: snake_case keys as in the spec, every default
// applied, durations as Go duration strings.
type (
	normPipeline struct {
		Pipeline       string         `json:"pipeline"`
		Namespace      string         `json:"namespace"`
		Description    string         `json:"description,omitempty"`
		Schedule       string         `json:"schedule,omitempty"`
		Classification Classification `json:"classification"`
		Params         []normParam    `json:"params,omitempty"`
		Defaults       normPolicy     `json:"defaults"`
		MaxActiveTasks int            `json:"max_active_tasks"`
		// Scheduling appears for scheduled pipelines only.
		Scheduling *normScheduling `json:"scheduling,omitempty"`
		Order      []string        `json:"order"`
		Tasks      []normTask      `json:"tasks"`
	}
	normScheduling struct {
		Catchup       Catchup `json:"catchup"`
		CatchupLimit  int     `json:"catchup_limit"`
		MaxActiveRuns int     `json:"max_active_runs"`
		Deadline      string  `json:"deadline,omitempty"`
	}
	normParam struct {
		Name        string    `json:"name"`
		Type        ParamType `json:"type"`
		Default     string    `json:"default,omitempty"`
		Required    bool      `json:"required,omitempty"`
		Description string    `json:"description,omitempty"`
	}
	normPolicy struct {
		Retries       int     `json:"retries"`
		Backoff       Backoff `json:"retry_backoff"`
		RetryDelay    string  `json:"retry_delay"`
		MaxRetryDelay string  `json:"max_retry_delay"`
		Jitter        bool    `json:"retry_jitter"`
		Timeout       string  `json:"timeout"`
	}
	normTask struct {
		Name        string            `json:"name"`
		Kind        Kind              `json:"kind"`
		Needs       []string          `json:"needs,omitempty"`
		TriggerRule TriggerRule       `json:"trigger_rule"`
		Policy      normPolicy        `json:"policy"`
		Shell       []string          `json:"shell,omitempty"`
		Script      string            `json:"script,omitempty"`
		Env         map[string]string `json:"env,omitempty"`
		Dir         string            `json:"dir,omitempty"`
		Input       string            `json:"input,omitempty"`
		Extract     *normEndpoint     `json:"extract,omitempty"`
		Transform   []normStep        `json:"transform,omitempty"`
		Load        *normEndpoint     `json:"load,omitempty"`
		Schema      *normContract     `json:"schema,omitempty"`
		MaxBadRows  *int64            `json:"max_bad_rows,omitempty"`
		MaxBadRatio *float64          `json:"max_bad_ratio,omitempty"`
		Privacy     *normTaskPrivacy  `json:"privacy,omitempty"`
	}
	normContract struct {
		Contract []normCast `json:"contract"`
		OnDrift  OnDrift    `json:"on_drift"`
	}
	normDedupe struct {
		Key  []string `json:"key,omitempty"`
		Keep Keep     `json:"keep"`
	}
	normAggregate struct {
		GroupBy  []string      `json:"group_by,omitempty"`
		Measures []normMeasure `json:"measures"`
	}
	normMeasure struct {
		Name   string  `json:"name"`
		Func   AggFunc `json:"func"`
		Column string  `json:"column,omitempty"`
	}
	normJoin struct {
		With    string        `json:"with"`
		On      []normJoinKey `json:"on"`
		How     JoinHow       `json:"how"`
		Select  []string      `json:"select,omitempty"`
		MaxRows int           `json:"max_rows"`
	}
	normJoinKey struct {
		Left  string `json:"left"`
		Right string `json:"right"`
	}
	normEndpoint struct {
		Connector string `json:"connector"`
		Config    any    `json:"config"`
		// Classification of a sink, when it names one.
		Classification Classification `json:"classification,omitempty"`
	}
	normStep struct {
		Kind    StepKind     `json:"step"`
		Columns []string     `json:"columns,omitempty"`
		Renames []normRename `json:"rename,omitempty"`
		Casts   []normCast   `json:"cast,omitempty"`
		Expr    string       `json:"expr,omitempty"`
		Derives []normDerive `json:"derive,omitempty"`

		Dedupe    *normDedupe    `json:"dedupe,omitempty"`
		Aggregate *normAggregate `json:"aggregate,omitempty"`
		Join      *normJoin      `json:"join,omitempty"`
		Check     *normCheck     `json:"check,omitempty"`
		Consent   *normConsent   `json:"consent,omitempty"`
		PII       []normPII      `json:"pii,omitempty"`
	}
	normRename struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	normCast struct {
		Column string `json:"column"`
		Type   string `json:"type"`
	}
	normDerive struct {
		Column string `json:"column"`
		Expr   string `json:"expr"`
	}
)

func normPol(p Policy) normPolicy {
	return normPolicy{
		Retries:       p.Retries,
		Backoff:       p.Backoff,
		RetryDelay:    p.RetryDelay.String(),
		MaxRetryDelay: p.MaxRetryDelay.String(),
		Jitter:        p.Jitter,
		Timeout:       p.Timeout.String(),
	}
}

// Normalize renders p as deterministic, indented JSON: every default
// applied, every task's policy resolved, connector settings as their
// decoded config, and the execution order. Positions, File, Dir and Hash
// are left out so the rendering depends only on what the spec means, not
// on where it was read: it is the golden form in tests and the output of
// `sluice validate --output json`.
func Normalize(p *Pipeline) ([]byte, error) {
	n := normPipeline{
		Pipeline:       p.Name,
		Namespace:      p.Namespace,
		Description:    p.Description,
		Schedule:       p.Schedule,
		Classification: p.Classification,
		Defaults:       normPol(p.Defaults),
		MaxActiveTasks: p.MaxActiveTasks,
		Order:          []string{},
		Tasks:          []normTask{},
	}
	if p.Schedule != "" {
		n.Scheduling = &normScheduling{Catchup: p.Scheduling.Catchup, CatchupLimit: p.Scheduling.CatchupLimit, MaxActiveRuns: p.Scheduling.MaxActiveRuns}
		if p.Scheduling.Deadline > 0 {
			n.Scheduling.Deadline = p.Scheduling.Deadline.String()
		}
	}
	for _, prm := range p.Params {
		n.Params = append(n.Params, normParam{Name: prm.Name, Type: prm.Type, Default: prm.Default, Required: prm.Required, Description: prm.Description})
	}
	for _, t := range p.Order() {
		n.Order = append(n.Order, t.Name)
	}
	for _, t := range p.Tasks {
		nt := normTask{
			Name: t.Name, Kind: t.Kind, Needs: t.Needs, TriggerRule: t.TriggerRule,
			Policy: normPol(t.Policy), Shell: t.Argv, Script: t.Script, Env: t.Env, Dir: t.Dir, Input: t.Input,
		}
		var err error
		if nt.Extract, err = normEnd(t.Extract); err != nil {
			return nil, fmt.Errorf("normalizing task %q: %w", t.Name, err)
		}
		if nt.Load, err = normEnd(t.Load); err != nil {
			return nil, fmt.Errorf("normalizing task %q: %w", t.Name, err)
		}
		for _, s := range t.Transform {
			ns := normStep{Kind: s.Kind, Columns: s.Columns, Expr: s.Expr}
			for _, r := range s.Renames {
				ns.Renames = append(ns.Renames, normRename(r))
			}
			for _, c := range s.Casts {
				ns.Casts = append(ns.Casts, normCast{Column: c.Column, Type: c.Type.String()})
			}
			for _, d := range s.Derives {
				ns.Derives = append(ns.Derives, normDerive{Column: d.Column, Expr: d.Expr})
			}
			if d := s.Dedupe; d != nil {
				ns.Dedupe = &normDedupe{Key: d.Key, Keep: d.Keep}
			}
			if a := s.Aggregate; a != nil {
				na := &normAggregate{GroupBy: a.GroupBy, Measures: []normMeasure{}}
				for _, m := range a.Measures {
					na.Measures = append(na.Measures, normMeasure(m))
				}
				ns.Aggregate = na
			}
			if j := s.Join; j != nil {
				nj := &normJoin{With: j.With, On: []normJoinKey{}, How: j.How, Select: j.Select, MaxRows: j.MaxRows}
				for _, k := range j.On {
					nj.On = append(nj.On, normJoinKey(k))
				}
				ns.Join = nj
			}
			ns.Check = normCheckOf(s.Check)
			if ns.Consent, err = normConsentOf(s.Consent); err != nil {
				return nil, fmt.Errorf("normalizing task %q: %w", t.Name, err)
			}
			ns.PII = normPIIOf(s.PII)
			nt.Transform = append(nt.Transform, ns)
		}
		if c := t.Contract; c != nil {
			nc := &normContract{Contract: []normCast{}, OnDrift: c.OnDrift}
			for _, f := range c.Columns {
				nc.Contract = append(nc.Contract, normCast{Column: f.Name, Type: f.Type.String()})
			}
			nt.Schema = nc
		}
		nt.MaxBadRows, nt.MaxBadRatio = t.MaxBadRows, t.MaxBadRatio
		nt.Privacy = normTaskPrivacyOf(t)
		n.Tasks = append(n.Tasks, nt)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encoding normalized pipeline: %w", err)
	}
	return b.Bytes(), nil
}

// normEnd renders a connector config with the names it is written with in
// the spec (its yaml tags), by a round trip through YAML: the config
// structs carry yaml tags, not json ones.
func normEnd(e *Endpoint) (*normEndpoint, error) {
	if e == nil {
		return nil, nil
	}
	out, err := yaml.Marshal(e.Config)
	if err != nil {
		return nil, fmt.Errorf("encoding %s settings: %w", e.Connector, err)
	}
	var v any
	if err := yaml.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("decoding %s settings: %w", e.Connector, err)
	}
	return &normEndpoint{Connector: e.Connector, Config: v, Classification: e.Classification}, nil
}
