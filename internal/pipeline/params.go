package pipeline

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrParams is wrapped by every error ResolveParams returns, so callers can
// tell bad user input from other failures.
var ErrParams = errors.New("invalid params")

// normalizeParam checks value against typ and returns its canonical form:
// ints in decimal, bools as true/false; strings, floats and dates as given.
func normalizeParam(typ ParamType, value string) (string, error) {
	switch typ {
	case ParamString:
		return value, nil
	case ParamInt:
		i, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an int", value)
		}
		return strconv.FormatInt(i, 10), nil
	case ParamFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%q is not a float", value)
		}
		return strings.TrimSpace(value), nil
	case ParamBool:
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return "", fmt.Errorf("%q is not a bool (want true or false)", value)
	case ParamDate:
		if _, err := time.Parse(time.DateOnly, value); err != nil {
			return "", fmt.Errorf("%q is not a date (want YYYY-MM-DD)", value)
		}
		return value, nil
	}
	return "", fmt.Errorf("unknown param type %q", typ)
}

// zeroParam is the value of a param that is neither given nor defaulted.
func zeroParam(typ ParamType) string {
	switch typ {
	case ParamInt, ParamFloat:
		return "0"
	case ParamBool:
		return "false"
	}
	return ""
}

// ResolveParams returns the value of every declared param for one run:
// given values (from `sluice run -p name=value` or a trigger) checked
// against their type, defaults for the rest, and the empty value of the type
// for optional params without a default. An unknown name, a missing
// required param or a value of the wrong type is an error wrapping
// ErrParams; all such problems are reported together.
func (p *Pipeline) ResolveParams(given map[string]string) (map[string]string, error) {
	byName := make(map[string]*Param, len(p.Params))
	for i := range p.Params {
		byName[p.Params[i].Name] = &p.Params[i]
	}
	var problems []string
	names := make([]string, 0, len(given))
	for n := range given {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			problems = append(problems, fmt.Sprintf("unknown param %q (%s)", n, declaredParams(p.Params)))
		}
	}
	out := make(map[string]string, len(p.Params))
	for _, prm := range p.Params {
		v, ok := given[prm.Name]
		switch {
		case ok:
			norm, err := normalizeParam(prm.Type, v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("param %q: %s", prm.Name, err.Error()))
				continue
			}
			out[prm.Name] = norm
		case prm.Required:
			problems = append(problems, fmt.Sprintf("param %q is required (set it with -p %s=<%s>)", prm.Name, prm.Name, prm.Type))
		case prm.Default != "":
			out[prm.Name] = prm.Default
		default:
			out[prm.Name] = zeroParam(prm.Type)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrParams, strings.Join(problems, "; "))
	}
	return out, nil
}

func declaredParams(ps []Param) string {
	if len(ps) == 0 {
		return "the pipeline declares no params"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	sort.Strings(names)
	return "declared: " + strings.Join(names, ", ")
}
