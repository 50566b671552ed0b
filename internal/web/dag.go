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

// graphNode is a box of a drawn graph: a task of a pipeline, or a
// dataset of a run.
type graphNode struct {
	// id names the node in edges (needs); name is its first line, sub its
	// second, title its tooltip (name when empty), class extra CSS classes.
	id, name, sub, title, class string
	needs                       []string
}

// dagNode is a node placed in the drawing.
type dagNode struct {
	graphNode
	col, row int
}

// layoutDAG places a pipeline's tasks as layoutGraph does.
func layoutDAG(tasks []*pipeline.Task) (nodes []dagNode, cols, rows int) {
	gs := make([]graphNode, len(tasks))
	for i, t := range tasks {
		gs[i] = graphNode{id: t.Name, name: t.Name, sub: string(t.Kind), needs: t.Needs}
	}
	return layoutGraph(gs)
}

// layoutGraph places nodes in columns by depth (a node sits one column
// right of its deepest need) and in rows by input order within a column.
// A need that is not among the nodes (a task of an unparsed file, a
// dataset the store no longer holds) does not count; a cycle, which
// neither a parsed pipeline nor lineage has, is cut where it is found.
func layoutGraph(gs []graphNode) (nodes []dagNode, cols, rows int) {
	byID := make(map[string]int, len(gs))
	for i, g := range gs {
		byID[g.id] = i
	}
	depth := make([]int, len(gs))
	const unseen, visiting = -1, -2
	for i := range depth {
		depth[i] = unseen
	}
	var walk func(i int) int
	walk = func(i int) int {
		switch depth[i] {
		case visiting:
			return -1
		case unseen:
		default:
			return depth[i]
		}
		depth[i] = visiting
		d := 0
		for _, n := range gs[i].needs {
			if j, ok := byID[n]; ok {
				d = max(d, walk(j)+1)
			}
		}
		depth[i] = d
		return d
	}
	perCol := map[int]int{}
	for i, g := range gs {
		d := walk(i)
		nodes = append(nodes, dagNode{graphNode: g, col: d, row: perCol[d]})
		perCol[d]++
		cols = max(cols, d+1)
		rows = max(rows, perCol[d])
	}
	return nodes, cols, rows
}

// dagSVG draws the pipeline's DAG as inline SVG: one box per task (its
// name and kind), one arrow per need. States, when given, colour each box
// by its task's state.
func dagSVG(p *pipeline.Pipeline, states map[string]store.TaskState) template.HTML {
	gs := make([]graphNode, len(p.Tasks))
	for i, t := range p.Tasks {
		g := graphNode{id: t.Name, name: t.Name, sub: string(t.Kind), needs: t.Needs}
		if states != nil {
			st := states[t.Name]
			g.class = stateClass(string(st))
			g.title = t.Name + ": " + string(st)
		}
		gs[i] = g
	}
	return graphSVG("dag", "Task graph of "+p.Namespace+"/"+p.Name, "no dependencies between tasks", gs)
}

// graphSVG draws nodes as inline SVG: one box per node (its name and
// sub-line), one arrow per need. Colours come from CSS classes, never
// style attributes (the Content-Security-Policy forbids inline style).
// The drawing has a title and a description listing the edges, for
// screen readers; prefix makes its element ids unique on the page.
func graphSVG(prefix, title, noEdges string, gs []graphNode) template.HTML {
	nodes, cols, rows := layoutGraph(gs)
	if len(nodes) == 0 {
		return ""
	}
	pos := make(map[string]dagNode, len(nodes))
	for _, n := range nodes {
		pos[n.id] = n
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
	esc := html.EscapeString
	pre := esc(prefix)

	var b strings.Builder
	var desc []string
	fmt.Fprintf(&b, `<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-title %s-desc">`, w, h, w, h, pre, pre)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, pre, esc(title))
	fmt.Fprintf(&b, `<defs><marker id="%s-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="dag-arrowhead"/></marker></defs>`, pre)
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
				fmt.Fprintf(&b, `<path class="dag-edge" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#%s-arrow)"/>`,
					x1, y1, x1+dagColGap, low+dagRowGap, x2-dagColGap, low+dagRowGap, x2, y2, pre)
			} else {
				mid := (x1 + x2) / 2
				fmt.Fprintf(&b, `<path class="dag-edge" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#%s-arrow)"/>`, x1, y1, mid, y1, mid, y2, x2, y2, pre)
			}
			desc = append(desc, from.label()+" → "+n.label())
		}
	}
	for _, n := range nodes {
		cls := "dag-node"
		if n.class != "" {
			cls += " " + n.class
		}
		tip := n.title
		if tip == "" {
			tip = n.name
		}
		name := n.name
		if len(name) > dagNameMax {
			name = name[:dagNameMax-1] + "…"
		}
		fmt.Fprintf(&b, `<g class="%s"><title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6"/>`,
			esc(cls), esc(tip), x(n), y(n), dagNodeW, dagNodeH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="dag-name">%s</text>`, x(n)+10, y(n)+17, esc(name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="dag-kind">%s</text></g>`, x(n)+10, y(n)+32, esc(n.sub))
	}
	if len(desc) == 0 {
		desc = append(desc, noEdges)
	}
	fmt.Fprintf(&b, `<desc id="%s-desc">%s</desc></svg>`, pre, esc(strings.Join(desc, "; ")))
	return template.HTML(b.String()) // every interpolated string above is escaped
}

// label is how the description names a node: its name, and its id when
// that differs (a dataset named by its task).
func (n dagNode) label() string {
	if n.id == n.name {
		return n.name
	}
	return n.name + " (" + n.id + ")"
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
