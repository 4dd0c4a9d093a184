// The run page's job graph: jobs as nodes by their needs, a matrix's legs
// under their job with a count, reusable-workflow calls ("caller / job")
// boxed as a group. Drawn on the server as inline SVG, twice: left to
// right for wide screens and top to bottom for phones; CSS shows one. The
// live endpoint sends it again as the run moves, and the page swaps it in.

package main

import (
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/store"
)

// graphLeg is one job (a matrix leg, or the job itself) in a node.
type graphLeg struct {
	ID       int64
	Label    string // the leg's matrix values, "(1.22, ubuntu-latest)"; the job's name without a matrix
	State    string
	Duration string
}

// graphNode is a job of the workflow with all its legs.
type graphNode struct {
	Key      string // the job's id in the workflow
	Name     string // without the matrix values and the caller
	Group    string // the reusable-workflow call it belongs to, or ""
	Needs    []string
	Level    int
	Matrix   bool
	State    string
	Duration string
	Legs     []graphLeg
	// layout, in SVG units: the node's box
	x, y, h int
}

const (
	graphNodeW    = 216 // a node's width
	graphHeadH    = 36  // a node's title row
	graphLegH     = 22  // one matrix leg's row
	graphGapX     = 48  // between columns (wide) and the edge gutter (narrow)
	graphGapY     = 14  // between nodes
	graphGroupPad = 8   // a group's box around its nodes
	graphGroupTop = 20  // room above a group's nodes for its name
	graphPad      = 10
	graphMaxLegs  = 8 // legs listed in a node; the rest are "+ N more"
)

// graphStateRank orders the states a node of several legs shows: the
// first present wins, so a node is running while any leg runs, and
// failed when a finished leg failed.
var graphStateRank = []string{"running", "cancelling", "failure", "timed_out", "queued", "cancelled", "success", "neutral", "skipped"}

// buildGraph groups a run's jobs, in page order (orderJobs), into nodes
// with their levels: a node's level is one more than the highest level of
// the jobs it needs.
func buildGraph(jobs []*store.Job, now time.Time) []*graphNode {
	var nodes []*graphNode
	byKey := map[string]*graphNode{}
	start, end := map[string]time.Time{}, map[string]time.Time{}
	running := map[string]bool{}
	for _, j := range jobs {
		key := jobBaseKey(j)
		n := byKey[key]
		name := j.Name
		if n == nil {
			group, short := "", name
			if i := strings.Index(name, " / "); i > 0 {
				group, short = name[:i], name[i+3:]
			}
			n = &graphNode{Key: key, Name: short, Group: group, Needs: j.Needs}
			byKey[key] = n
			nodes = append(nodes, n)
		}
		label := name
		if n.Group != "" {
			label = strings.TrimPrefix(label, n.Group+" / ")
		}
		if j.Leg > 0 {
			n.Matrix = true
			if i := strings.LastIndex(label, " ("); i > 0 && strings.HasSuffix(label, ")") {
				n.Name, label = label[:i], label[i+1:]
			}
		}
		n.Legs = append(n.Legs, graphLeg{ID: j.ID, Label: label, State: webState(j.Status, j.Conclusion, j.CancelRequested),
			Duration: span(j.StartedAt, j.CompletedAt, now)})
		if !j.StartedAt.IsZero() && (start[key].IsZero() || j.StartedAt.Before(start[key])) {
			start[key] = j.StartedAt
		}
		if j.CompletedAt.After(end[key]) {
			end[key] = j.CompletedAt
		}
		if j.CompletedAt.IsZero() && !j.StartedAt.IsZero() {
			running[key] = true
		}
	}
	for _, n := range nodes {
		n.State = n.Legs[0].State
		best := len(graphStateRank)
		for _, l := range n.Legs {
			if i := slices.Index(graphStateRank, l.State); i >= 0 && i < best {
				best, n.State = i, l.State
			}
		}
		e := end[n.Key]
		if running[n.Key] {
			e = time.Time{}
		}
		n.Duration = span(start[n.Key], e, now)
		for _, need := range n.Needs {
			if m := byKey[need]; m != nil && m != n {
				n.Level = max(n.Level, m.Level+1)
			}
		}
	}
	return nodes
}

// renderGraph draws both layouts of a run's jobs.
func renderGraph(jobs []*store.Job, now time.Time) template.HTML {
	nodes := buildGraph(jobs, now)
	if len(nodes) == 0 {
		return ""
	}
	var b strings.Builder
	graphSVG(&b, nodes, false)
	graphSVG(&b, nodes, true)
	return template.HTML(b.String())
}

// graphColumns places nodes in columns: by level when wide, all in one
// when narrow; within a column by group (a group's nodes together, in the
// order the group first appears) and then page order.
func graphColumns(nodes []*graphNode, narrow bool) [][]*graphNode {
	groupOrder := map[string]int{}
	for i, n := range nodes {
		if _, ok := groupOrder[n.Group]; !ok {
			groupOrder[n.Group] = i
		}
	}
	var cols [][]*graphNode
	for _, n := range nodes {
		c := n.Level
		if narrow {
			c = 0
		}
		for len(cols) <= c {
			cols = append(cols, nil)
		}
		cols[c] = append(cols[c], n)
	}
	for _, col := range cols {
		slices.SortStableFunc(col, func(a, b *graphNode) int {
			if narrow && a.Level != b.Level {
				return a.Level - b.Level
			}
			return groupOrder[a.Group] - groupOrder[b.Group]
		})
	}
	return cols
}

func graphNodeHeight(n *graphNode) int {
	if !n.Matrix {
		return graphHeadH
	}
	rows := min(len(n.Legs), graphMaxLegs)
	if len(n.Legs) > graphMaxLegs {
		rows++
	}
	return graphHeadH + rows*graphLegH + 4
}

// graphSVG lays out and writes one SVG.
func graphSVG(b *strings.Builder, nodes []*graphNode, narrow bool) {
	cols := graphColumns(nodes, narrow)
	left := graphPad
	if narrow {
		left = graphGapX // the gutter the edges curve through
	}
	type box struct {
		group      string
		x, y, w, h int
	}
	var boxes []box
	width, height := 0, 0
	for c, col := range cols {
		x := left + c*(graphNodeW+graphGapX)
		y := graphPad
		for i, n := range col {
			first := i == 0 || col[i-1].Group != n.Group
			if n.Group != "" && first {
				y += graphGroupTop
				boxes = append(boxes, box{group: n.Group, x: x - graphGroupPad, y: y - graphGroupTop, w: graphNodeW + 2*graphGroupPad})
			}
			n.x, n.y, n.h = x, y, graphNodeHeight(n)
			y += n.h
			last := i == len(col)-1 || col[i+1].Group != n.Group
			if n.Group != "" && last {
				bx := &boxes[len(boxes)-1]
				bx.h = y + graphGroupPad - bx.y
				y += graphGroupPad
			}
			y += graphGapY
		}
		width = max(width, x+graphNodeW+graphPad)
		height = max(height, y-graphGapY+graphPad)
	}
	class, label := "graph graph-wide", "Job graph"
	if narrow {
		class = "graph graph-narrow"
	}
	fmt.Fprintf(b, `<svg class="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		class, width, height, width, height, label)
	for _, bx := range boxes {
		fmt.Fprintf(b, `<g class="g-group"><rect x="%d" y="%d" width="%d" height="%d" rx="8"/><text x="%d" y="%d">%s</text></g>`,
			bx.x, bx.y, bx.w, bx.h, bx.x+8, bx.y+14, graphEsc(graphFit(bx.group, bx.w-16, 11)))
	}
	// Edges first, under the nodes.
	byKey := map[string]*graphNode{}
	for _, n := range nodes {
		byKey[n.Key] = n
	}
	for _, n := range nodes {
		for _, need := range n.Needs {
			m := byKey[need]
			if m == nil || m == n {
				continue
			}
			if narrow {
				y1, y2 := m.y+graphHeadH/2, n.y+graphHeadH/2
				d := min(graphGapX-8, 12+(y2-y1)/12)
				fmt.Fprintf(b, `<path class="g-edge" d="M%d %dC%d %d %d %d %d %d"/>`, n.x, y1, n.x-d, y1, n.x-d, y2, n.x, y2)
			} else {
				x1, y1, x2, y2 := m.x+graphNodeW, m.y+graphHeadH/2, n.x, n.y+graphHeadH/2
				mid := (x1 + x2) / 2
				fmt.Fprintf(b, `<path class="g-edge" d="M%d %dC%d %d %d %d %d %d"/>`, x1, y1, mid, y1, mid, y2, x2, y2)
			}
		}
	}
	for _, n := range nodes {
		graphNodeSVG(b, n)
	}
	b.WriteString("</svg>")
}

// graphNodeSVG writes one node: a box with the job's state, name and
// duration, and for a matrix the count and a row per leg (each a link to
// its job on the page).
func graphNodeSVG(b *strings.Builder, n *graphNode) {
	fmt.Fprintf(b, `<g class="g-node" data-key="%s" data-state="%s" data-legs="%d">`, graphEsc(n.Key), n.State, len(n.Legs))
	full := n.Name
	if n.Group != "" {
		full = n.Group + " / " + n.Name
	}
	title := fmt.Sprintf("%s: %s", full, webStateLabels[n.State])
	if n.Duration != "" {
		title += ", " + n.Duration
	}
	if !n.Matrix {
		fmt.Fprintf(b, `<a href="#job-%d">`, n.Legs[0].ID)
	}
	fmt.Fprintf(b, `<title>%s</title><rect class="g-box" x="%d" y="%d" width="%d" height="%d" rx="6"/>`, graphEsc(title), n.x, n.y, graphNodeW, n.h)
	graphDot(b, n.x+16, n.y+graphHeadH/2, 7, n.State)
	right := n.Duration
	if n.Matrix {
		right = strconv.Itoa(len(n.Legs)) + " jobs"
		if len(n.Legs) == 1 {
			right = "1 job"
		}
		if n.Duration != "" {
			right += " · " + n.Duration
		}
	}
	rw := int(textWidth(right)*12/11) + 4
	fmt.Fprintf(b, `<text class="g-name" x="%d" y="%d">%s</text>`, n.x+30, n.y+graphHeadH/2+5, graphEsc(graphFit(n.Name, graphNodeW-40-rw, 13)))
	if right != "" {
		fmt.Fprintf(b, `<text class="g-dur" x="%d" y="%d" text-anchor="end">%s</text>`, n.x+graphNodeW-8, n.y+graphHeadH/2+4, graphEsc(right))
	}
	if !n.Matrix {
		b.WriteString("</a></g>")
		return
	}
	y := n.y + graphHeadH
	for i, l := range n.Legs {
		if i == graphMaxLegs {
			fmt.Fprintf(b, `<text class="g-dur" x="%d" y="%d">+ %d more</text>`, n.x+30, y+15, len(n.Legs)-graphMaxLegs)
			break
		}
		fmt.Fprintf(b, `<a class="g-leg" href="#job-%d" data-state="%s"><title>%s: %s</title><rect class="g-row" x="%d" y="%d" width="%d" height="%d"/>`,
			l.ID, l.State, graphEsc(l.Label), webStateLabels[l.State], n.x+4, y, graphNodeW-8, graphLegH)
		graphDot(b, n.x+22, y+graphLegH/2, 5, l.State)
		dw := int(textWidth(l.Duration)*11/11) + 4
		fmt.Fprintf(b, `<text class="g-leg-name" x="%d" y="%d">%s</text>`, n.x+34, y+15, graphEsc(graphFit(l.Label, graphNodeW-46-dw, 11)))
		if l.Duration != "" {
			fmt.Fprintf(b, `<text class="g-dur" x="%d" y="%d" text-anchor="end">%s</text>`, n.x+graphNodeW-8, y+15, graphEsc(l.Duration))
		}
		b.WriteString("</a>")
		y += graphLegH
	}
	b.WriteString("</g>")
}

// graphDot is a state's mark: a filled circle, a ring while queued, a
// ring with a gap while running.
func graphDot(b *strings.Builder, x, y, r int, state string) {
	fmt.Fprintf(b, `<circle class="g-st g-%s" cx="%d" cy="%d" r="%d"/>`, state, x, y, r)
}

// graphFit cuts s to about width units of text at size px, with an
// ellipsis; the node's <title> has it whole.
func graphFit(s string, width, size int) string {
	scale := float64(size) / 11
	if textWidth(s)*scale <= float64(width) {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && textWidth(string(r)+"…")*scale > float64(width) {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

var graphEsc = template.HTMLEscapeString
