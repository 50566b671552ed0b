package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// DAG drawing dimensions, in SVG user units (pixels at 100% zoom).
const (
	dagNodeW   = 168
	dagNodeH   = 40
	dagColGap  = 56
	dagRowGap  = 14
	dagPad     = 8
	dagNameMax = 22
)

// dagNode is a task placed in the drawing.
type dagNode struct {
	name, kind string
	col, row   int
	needs      []string
}

// layoutDAG places tasks in columns by topological depth (a task sits one
// column right of its deepest need) and in rows by file order within a
// column. Tasks in a parsed pipeline are in an order where needs come
// first; a need that is missing (an unparsed file) counts as depth 0.
func layoutDAG(tasks []*pipeline.Task) (nodes []dagNode, cols, rows int) {
	depth := make(map[string]int, len(tasks))
	perCol := map[int]int{}
	for _, t := range tasks {
		d := 0
		for _, n := range t.Needs {
			if dn, ok := depth[n]; ok && dn+1 > d {
				d = dn + 1
			}
		}
		depth[t.Name] = d
		nodes = append(nodes, dagNode{name: t.Name, kind: string(t.Kind), col: d, row: perCol[d], needs: t.Needs})
		perCol[d]++
		cols = max(cols, d+1)
		rows = max(rows, perCol[d])
	}
	return nodes, cols, rows
}

// dagSVG draws the pipeline's DAG as inline SVG: one box per task (its
// name and kind), one arrow per need. Colours come from CSS classes, never
// style attributes (the Content-Security-Policy forbids inline style);
// states, when given, colour each box by its task's state. The drawing
// has a title and a description listing the edges, for screen readers.
func dagSVG(p *pipeline.Pipeline, states map[string]store.TaskState) template.HTML {
	nodes, cols, rows := layoutDAG(p.Tasks)
	if len(nodes) == 0 {
		return ""
	}
	pos := make(map[string]dagNode, len(nodes))
	for _, n := range nodes {
		pos[n.name] = n
	}
	// An edge that skips a column is drawn as a curve that dips below the
	// boxes of the columns between, so it is not hidden behind them; the
	// drawing gets room for the dip.
	dip := 0
	for _, n := range nodes {
		for _, need := range n.needs {
			if from, ok := pos[need]; ok && n.col-from.col > 1 {
				dip = dagNodeH/2 + dagRowGap
			}
		}
	}
	w := dagPad*2 + cols*dagNodeW + (cols-1)*dagColGap
	h := dagPad*2 + rows*dagNodeH + (rows-1)*dagRowGap + dip
	x := func(n dagNode) int { return dagPad + n.col*(dagNodeW+dagColGap) }
	y := func(n dagNode) int { return dagPad + n.row*(dagNodeH+dagRowGap) }

	var b strings.Builder
	var desc []string
	fmt.Fprintf(&b, `<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="dag-title dag-desc">`, w, h, w, h)
	fmt.Fprintf(&b, `<title id="dag-title">Task graph of %s/%s</title>`, html.EscapeString(p.Namespace), html.EscapeString(p.Name))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="dag-arrowhead"/></marker></defs>`)
	for _, n := range nodes {
		for _, need := range n.needs {
			from, ok := pos[need]
			if !ok {
				continue
			}
			x1, y1 := x(from)+dagNodeW, y(from)+dagNodeH/2
			x2, y2 := x(n)-2, y(n)+dagNodeH/2
			if n.col-from.col > 1 {
				low := max(y1, y2) + dagNodeH/2 + dagRowGap
				fmt.Fprintf(&b, `<path class="dag-edge" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#arrow)"/>`,
					x1, y1, x1+dagColGap, low+dagRowGap, x2-dagColGap, low+dagRowGap, x2, y2)
			} else {
				mid := (x1 + x2) / 2
				fmt.Fprintf(&b, `<path class="dag-edge" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#arrow)"/>`, x1, y1, mid, y1, mid, y2, x2, y2)
			}
			desc = append(desc, need+" → "+n.name)
		}
	}
	for _, n := range nodes {
		cls := "dag-node"
		label := n.name
		if states != nil {
			st := states[n.name]
			cls += " " + stateClass(string(st))
			label += ": " + string(st)
		}
		name := n.name
		if len(name) > dagNameMax {
			name = name[:dagNameMax-1] + "…"
		}
		fmt.Fprintf(&b, `<g class="%s"><title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6"/>`,
			cls, html.EscapeString(label), x(n), y(n), dagNodeW, dagNodeH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="dag-name">%s</text>`, x(n)+10, y(n)+17, html.EscapeString(name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="dag-kind">%s</text></g>`, x(n)+10, y(n)+32, html.EscapeString(n.kind))
	}
	if len(desc) == 0 {
		desc = append(desc, "no dependencies between tasks")
	}
	fmt.Fprintf(&b, `<desc id="dag-desc">%s</desc></svg>`, html.EscapeString(strings.Join(desc, "; ")))
	return template.HTML(b.String()) // every interpolated string above is escaped
}

// stateClass maps a run or task state to its CSS class.
func stateClass(s string) string {
	switch s {
	case "success":
		return "s-success"
	case "failed", "integrity_failed", "timed_out":
		return "s-failed"
	case "running":
		return "s-running"
	case "queued", "pending":
		return "s-queued"
	case "up_for_retry":
		return "s-retry"
	case "skipped":
		return "s-skipped"
	case "cancelled", "interrupted":
		return "s-cancelled"
	case "":
		return "s-none"
	}
	return "s-other"
}

// stateMark is a short symbol for a state, so a cell reads without
// colour; the state's name goes beside it for screen readers.
func stateMark(s string) string {
	switch s {
	case "success":
		return "✓"
	case "failed", "integrity_failed", "timed_out":
		return "✗"
	case "running":
		return "▶"
	case "queued", "pending":
		return "…"
	case "up_for_retry":
		return "↻"
	case "skipped":
		return "–"
	case "cancelled", "interrupted":
		return "■"
	case "":
		return ""
	}
	return "?"
}
