package pipeline

import "github.com/sluicehq/sluice/internal/privacy"

type (
	// normPII is one column's privacy operator, with only the options it
	// uses.
	normPII struct {
		Column     string     `json:"column"`
		Op         privacy.Op `json:"op"`
		KeepFirst  int        `json:"keep_first,omitempty"`
		KeepLast   int        `json:"keep_last,omitempty"`
		Char       string     `json:"char,omitempty"`
		Subject    string     `json:"subject,omitempty"`
		Date       string     `json:"date,omitempty"`
		Width      float64    `json:"width,omitempty"`
		Prefix     int        `json:"prefix,omitempty"`
		IPv4Prefix int        `json:"ipv4_prefix,omitempty"`
		IPv6Prefix int        `json:"ipv6_prefix,omitempty"`
	}
	normTaskPrivacy struct {
		PIIColumns  map[string]any `json:"pii_columns,omitempty"`
		AllowRawPII *normAllowRaw  `json:"allow_raw_pii,omitempty"`
		Retain      string         `json:"retain,omitempty"`
	}
	// normPIIColumn is a pii_columns entry with a sensitivity other than
	// the default; one with the default is normalised to its type alone,
	// so that declaring the default changes no pipeline's content hash.
	normPIIColumn struct {
		Type        privacy.Type        `json:"type"`
		Sensitivity privacy.Sensitivity `json:"sensitivity"`
	}
	normAllowRaw struct {
		Columns []string `json:"columns"`
		Reason  string   `json:"reason"`
	}
)

func normPIIOf(rules []privacy.Rule) []normPII {
	var out []normPII
	for _, r := range rules {
		out = append(out, normPII{Column: r.Column, Op: r.Op, KeepFirst: r.KeepFirst, KeepLast: r.KeepLast,
			Char: r.Char, Subject: r.Subject, Date: r.Date, Width: r.Width, Prefix: r.Prefix,
			IPv4Prefix: r.IPv4Prefix, IPv6Prefix: r.IPv6Prefix})
	}
	return out
}

func normTaskPrivacyOf(t *Task) *normTaskPrivacy {
	if len(t.PIIColumns) == 0 && t.AllowRawPII == nil && t.Retain == 0 {
		return nil
	}
	n := &normTaskPrivacy{}
	for col, d := range t.PIIColumns {
		if n.PIIColumns == nil {
			n.PIIColumns = map[string]any{}
		}
		if d.Effective() == privacy.DefaultSensitivity {
			n.PIIColumns[col] = d.Type
		} else {
			n.PIIColumns[col] = normPIIColumn{Type: d.Type, Sensitivity: d.Sensitivity}
		}
	}
	if a := t.AllowRawPII; a != nil {
		n.AllowRawPII = &normAllowRaw{Columns: a.Columns, Reason: a.Reason}
	}
	if t.Retain != 0 {
		n.Retain = t.Retain.String()
	}
	return n
}
