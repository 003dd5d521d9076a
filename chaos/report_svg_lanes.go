package chaos

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// peerGroup is one region's peers, in the report's order.
type peerGroup struct {
	region string
	peers  []PeerTrack
}

// peerGroups groups the peers by region, regions in order of first
// appearance.
func peerGroups(ps []PeerTrack) []peerGroup {
	var gs []peerGroup
	at := map[string]int{}
	for _, p := range ps {
		i, ok := at[p.Region]
		if !ok {
			i = len(gs)
			at[p.Region] = i
			gs = append(gs, peerGroup{region: p.Region})
		}
		gs[i].peers = append(gs[i].peers, p)
	}
	return gs
}

// Longest region and cluster names drawn whole.
const (
	svgRegionChars  = 18
	svgClusterChars = 24
)

// labelWidth is where the time axis starts: after the widest region name
// and the widest cluster name.
func labelWidth(gs []peerGroup, edge []string) float64 {
	reg, clu := 0.0, textWidth("recoveries", 12)
	for _, g := range gs {
		if slices.Contains(edge, g.region) {
			reg = max(reg, textWidth(truncate(g.region, svgRegionChars), 13)*1.15+textWidth(" edge", 11))
		}
		reg = max(reg, textWidth(truncate(g.region, svgRegionChars), 13)*1.15)
		for _, p := range g.peers {
			clu = max(clu, textWidth(truncate(p.Cluster, svgClusterChars), 12))
		}
	}
	return max(140, 16+reg+14+clu+10)
}

// svgLane is one peer's lane and its top.
type svgLane struct {
	PeerTrack
	y float64
}

// layoutLanes places the peers' lanes from top down and returns them with
// the bottom of the last one.
func layoutLanes(gs []peerGroup, top float64) ([]svgLane, float64) {
	var lanes []svgLane
	y := top
	for i, g := range gs {
		if i > 0 {
			y += svgGroupGap
		}
		for _, p := range g.peers {
			lanes = append(lanes, svgLane{p, y})
			y += svgLaneH + svgLaneGap
		}
	}
	if len(lanes) == 0 {
		return nil, top + svgLaneH
	}
	return lanes, y - svgLaneGap
}

// laneLabel writes the name of a lane of the run (violations, recoveries,
// writes) left of the axis.
func (c *svgCanvas) laneLabel(y float64, name string) {
	c.text(c.x0-10, y, fmt.Sprintf(` font-size="12" font-style="italic" fill="%s" text-anchor="end"`, colMuted), name)
}

// violations draws a red diamond for every violation kept in the report,
// its tooltip the invariant, the message and the evidence.
func (c *svgCanvas) violations(y float64) {
	c.laneLabel(y+13, "violations")
	n := 0
	for _, v := range c.r.Invariants {
		for _, x := range v.Violations {
			tip := v.Name + " at " + c.r.offset(x.At) + ": " + x.Message
			if x.Evidence != "" {
				tip += "\n" + truncate(x.Evidence, 1000)
			}
			c.printf(`<g class="violation"><title>%s</title>`, esc(tip))
			c.diamond(c.x(x.At), y+svgLaneH/2)
			c.printf("</g>\n")
			n++
		}
	}
	if n == 0 {
		c.text(c.x0+4, y+13, fmt.Sprintf(` font-size="11" fill="%s"`, colMuted), "none")
	}
}

func (c *svgCanvas) diamond(cx, cy float64) {
	c.printf(`<path d="M%.1f %.1fl5 6l-5 6l-5 -6z" fill="%s" stroke="white" stroke-width="0.8"/>`, cx, cy-6, colBad)
}

// svgRecovery is one recovery placed on the recoveries lane.
type svgRecovery struct {
	rc     Recovery
	xs, xe float64
	label  string
	labelX float64
	row    int
}

// packRecoveries places each recovery, a bracket from From to From+Took
// (to Ended if it never recovered) and its label after it, on the first
// row where it overlaps nothing.
func (c *svgCanvas) packRecoveries() []svgRecovery {
	rcs := slices.Clone(c.r.Recoveries)
	slices.SortStableFunc(rcs, func(a, b Recovery) int { return a.From.Compare(b.From) })
	var out []svgRecovery
	var rowEnd, textEnd []float64 // per row: where its last bracket or label ends, its last label
	for _, rc := range rcs {
		p := svgRecovery{rc: rc, xs: c.x(rc.From), label: fmtDur(rc.Took)}
		if rc.Recovered {
			p.xe = c.x(rc.From.Add(rc.Took))
		} else {
			p.xe = c.x(c.end)
			p.label = fmt.Sprintf("%s #%d not recovered", rc.Kind, rc.FaultID)
		}
		p.xe = max(p.xe, p.xs+2)
		lw := textWidth(p.label, 11)
		from, to := p.xs, p.xe+4+lw
		p.labelX = p.xe + 4
		if to > svgWidth-4 { // no room after it: the label goes before
			p.labelX = p.xs - 4 - lw
			from, to = p.labelX, p.xe
		}
		p.row = -1
		for i, end := range rowEnd {
			if end+6 < from {
				p.row = i
				break
			}
		}
		if p.row < 0 && len(rowEnd) < svgMaxRows {
			p.row = len(rowEnd)
			rowEnd = append(rowEnd, math.Inf(-1))
			textEnd = append(textEnd, math.Inf(-1))
		}
		if p.row < 0 {
			// Every row taken: the bracket alone, its label left to its
			// tooltip, on the first row whose labels it does not cross
			// (else the one whose labels end first).
			p.label = ""
			from, to = p.xs, p.xe
			p.row = 0
			for i, end := range textEnd {
				if end+4 < from {
					p.row = i
					break
				}
				if end < textEnd[p.row] {
					p.row = i
				}
			}
		}
		rowEnd[p.row] = max(rowEnd[p.row], to)
		if p.label != "" {
			textEnd[p.row] = max(textEnd[p.row], p.labelX+lw)
		}
		out = append(out, p)
	}
	return out
}

// recoveries draws each recovery as a bracket in its fault's colour (red
// when it never recovered) labelled with how long it took.
func (c *svgCanvas) recoveries(y float64, recs []svgRecovery) {
	c.laneLabel(y+12, "recoveries")
	if len(recs) == 0 {
		c.text(c.x0+4, y+12, fmt.Sprintf(` font-size="11" fill="%s"`, colMuted), "none measured")
	}
	for _, p := range recs {
		mid := y + float64(p.row)*svgRowH + svgRowH/2
		col, tcol := kindColour(p.rc.Kind), colText
		tip := fmt.Sprintf("%s #%d: Ready again %s after %s", p.rc.Kind, p.rc.FaultID, fmtDur(p.rc.Took), c.r.offset(p.rc.From))
		if !p.rc.Recovered {
			col, tcol = colBad, colBad
			tip = fmt.Sprintf("%s #%d: not Ready again after %s", p.rc.Kind, p.rc.FaultID, c.r.offset(p.rc.From))
		}
		c.printf(`<g class="recovery"><title>%s</title>`, esc(tip))
		c.bracket(p.xs, p.xe, mid, col)
		if p.label != "" {
			c.text(p.labelX, mid+4, fmt.Sprintf(` font-size="11" fill="%s"`, tcol), p.label)
		}
		c.printf("</g>\n")
	}
}

func (c *svgCanvas) bracket(xa, xb, y float64, col string) {
	c.printf(`<path d="M%.1f %.1fv8M%.1f %.1fH%.1fM%.1f %.1fv8" fill="none" stroke="%s" stroke-width="1.5"/>`,
		xa, y-4, xa, y, xb, xb, y-4, col)
}

// writes draws the acknowledged writes and deletes as stacked bars, one
// per bucket of at least a second.
func (c *svgCanvas) writes(y float64) {
	c.laneLabel(y+11, "writes")
	note := fmt.Sprintf(` font-size="11" fill="%s"`, colMuted)
	if len(c.r.Activity) == 0 {
		s := "none"
		if c.r.Writes+c.r.Deletes > 0 {
			s = plural(c.r.Writes, "write") + ", " + plural(c.r.Deletes, "delete") + " (no timing recorded)"
		}
		c.text(c.x0+4, y+16, note, s)
		return
	}
	span := c.end.Sub(c.start)
	n := max(1, min(int((c.x1-c.x0)/5), int(math.Ceil(span.Seconds()))))
	bucket := span / time.Duration(n)
	ws, ds := make([]int, n), make([]int, n)
	for _, a := range c.r.Activity {
		i := min(max(int(a.At.Sub(c.start)/bucket), 0), n-1)
		ws[i] += a.Writes
		ds[i] += a.Deletes
	}
	peak := 0
	for i := range ws {
		peak = max(peak, ws[i]+ds[i])
	}
	if peak == 0 {
		c.text(c.x0+4, y+16, note, "none")
		return
	}
	bottom, scale := y+svgWritesH, float64(svgWritesH-2)/float64(peak)
	bw := (c.x1 - c.x0) / float64(n)
	c.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", c.x0, bottom, c.x1, bottom, colDown)
	for i := range ws {
		if ws[i]+ds[i] == 0 {
			continue
		}
		x := c.x0 + float64(i)*bw
		from := c.start.Add(time.Duration(i) * bucket)
		tip := fmt.Sprintf("%s to %s: %s, %s", c.r.offset(from), c.r.offset(from.Add(bucket)),
			plural(ws[i], "write"), plural(ds[i], "delete"))
		hw, hd := float64(ws[i])*scale, float64(ds[i])*scale
		c.printf(`<g><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
			esc(tip), x+0.5, bottom-hw, max(bw-1, 1), hw, colWrites)
		c.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/></g>`+"\n",
			x+0.5, bottom-hw-hd, max(bw-1, 1), hd, colDeletes)
	}
	c.text(c.x0-10, y+24, note+` text-anchor="end"`, "peak "+strconv.Itoa(peak))
}

// peerLanes draws each region's name and its peers' lanes: green while
// the peer answered, grey while down, a dark bar and a crown while it led.
func (c *svgCanvas) peerLanes(gs []peerGroup, lanes []svgLane, top float64) {
	if len(lanes) == 0 {
		c.text(c.x0+4, top+13, fmt.Sprintf(` font-size="12" fill="%s"`, colMuted), "no peers recorded")
		return
	}
	i := 0
	for gi, g := range gs {
		first := lanes[i]
		if gi > 0 {
			ly := first.y - svgGroupGap/2 - svgLaneGap/2
			c.printf(`<line x1="16" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", ly, c.x1, ly, colGrid)
		}
		name := truncate(g.region, svgRegionChars)
		if slices.Contains(c.r.Mesh.Edge, g.region) {
			c.printf(`<text x="16" y="%.1f" font-size="13" font-weight="bold">%s<tspan dx="4" font-size="11" font-weight="normal" fill="%s">edge</tspan></text>`+"\n",
				first.y+13, esc(name), colMuted)
		} else {
			c.text(16, first.y+13, ` font-size="13" font-weight="bold"`, name)
		}
		for range g.peers {
			c.lane(lanes[i])
			i++
		}
	}
}

func (c *svgCanvas) lane(l svgLane) {
	c.text(c.x0-10, l.y+13, ` font-size="12" text-anchor="end"`, truncate(l.Cluster, svgClusterChars))
	c.printf(`<rect class="lane" x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
		c.x0, l.y, c.x1-c.x0, svgLaneH, colUp, esc(fmt.Sprintf("%s in %s: down %d, leader %d times",
			l.Cluster, l.Region, len(l.Down), len(l.Leader))))
	for _, s := range l.Down {
		xs, xe := c.x(s.From), c.x(s.To)
		c.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="url(#down)"><title>down %s to %s</title></rect>`+"\n",
			xs, l.y, max(xe-xs, 1), svgLaneH, esc(c.r.offset(s.From)), esc(c.r.offset(s.To)))
	}
	for _, s := range l.Leader {
		xs, xe := c.x(s.From), c.x(s.To)
		c.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="6" fill="%s"><title>leader %s to %s</title></rect>`+"\n",
			xs, l.y+10, max(xe-xs, 1), colLeader, esc(c.r.offset(s.From)), esc(c.r.offset(s.To)))
		c.crown(xs+1, l.y+2)
	}
}

// crown draws a small crown, 10×7, its top left at (x, y).
func (c *svgCanvas) crown(x, y float64) {
	c.printf(`<path d="M%.1f %.1fv-6l2.5 3l2.5 -4l2.5 4l2.5 -3v6z" fill="%s" stroke="#7a5c00" stroke-width="0.6"/>`+"\n",
		x, y+7, colCrown)
}

// svgFault is a fault and the time it lasted.
type svgFault struct {
	Event
	to time.Time
}

// faults pairs every fault with the heal that names it. One never healed
// lasts to Ended, but a forge or a restart, done at once, lasts no time.
func (c *svgCanvas) faults() []svgFault {
	healed := map[int]time.Time{}
	for _, e := range c.r.Timeline {
		if e.Kind != EventHeal {
			continue
		}
		for _, id := range e.Heals {
			if _, ok := healed[id]; !ok {
				healed[id] = e.At
			}
		}
	}
	var fs []svgFault
	for _, e := range c.r.Timeline {
		if !isFaultKind(e.Kind) {
			continue
		}
		to, ok := healed[e.ID]
		switch {
		case ok && e.ID != 0:
		case e.Kind == EventForge || e.Kind == EventRestart:
			to = e.At
		default:
			to = c.end
		}
		fs = append(fs, svgFault{e, to})
	}
	return fs
}

// faultBands draws each fault as a translucent band in its kind's colour
// over the lanes it acted on: its clusters, else every lane of its
// regions, else every lane. Each band is labelled on its first lane when
// there is room.
func (c *svgCanvas) faultBands(lanes []svgLane) {
	type label struct {
		x, y float64
		s    string
	}
	var labels []label
	for _, f := range c.faults() {
		on := lanesOf(f.Event, lanes)
		if len(on) == 0 {
			continue
		}
		col := kindColour(f.Kind)
		xs := c.x(f.At)
		w := max(c.x(f.to)-xs, 3)
		name := eventName(f.Event)
		tip := fmt.Sprintf("%s on %s, %s to %s", name, eventTargets(f.Event), c.r.offset(f.At), c.r.offset(f.to))
		if f.Detail != "" {
			tip += ": " + f.Detail
		}
		c.printf(`<g class="fault" fill="%s" fill-opacity="0.35" stroke="%s" stroke-opacity="0.9"><title>%s</title>`+"\n", col, col, esc(tip))
		// One rect per run of neighbouring lanes.
		for j := 0; j < len(on); {
			k := j
			for k+1 < len(on) && on[k+1] == on[k]+1 {
				k++
			}
			top, bottom := lanes[on[j]].y-2, lanes[on[k]].y+svgLaneH+2
			c.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", xs, top, w, bottom-top)
			j = k + 1
		}
		c.printf("</g>\n")
		if w >= textWidth(name, 11)+8 {
			labels = append(labels, label{xs + 4, lanes[on[0]].y + 13, name})
		}
	}
	for _, l := range labels {
		c.text(l.x, l.y, ` font-size="11" font-weight="bold" stroke="white" stroke-width="3" stroke-opacity="0.8" paint-order="stroke" pointer-events="none"`, l.s)
	}
}

// lanesOf is the indexes of the lanes e acts on.
func lanesOf(e Event, lanes []svgLane) []int {
	var on []int
	for i, l := range lanes {
		switch {
		case len(e.Clusters) > 0:
			if slices.Contains(e.Clusters, l.Cluster) {
				on = append(on, i)
			}
		case len(e.Regions) > 0:
			if slices.Contains(e.Regions, l.Region) {
				on = append(on, i)
			}
		default:
			on = append(on, i)
		}
	}
	return on
}
