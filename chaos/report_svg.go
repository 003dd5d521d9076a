package chaos

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The timeline picture's geometry, in pixels.
const (
	svgWidth    = 1200
	svgMarginR  = 28
	svgLaneH    = 18 // one peer's lane, and the violations lane
	svgLaneGap  = 4
	svgGroupGap = 10 // between two regions' lanes
	svgRowH     = 16 // one row of the recoveries lane
	svgWritesH  = 26
	svgMaxRows  = 8 // rows of the recoveries lane before they overlap
)

// The picture's colours.
const (
	colUp       = "#a5d6a7"
	colDown     = "#c4c4c4"
	colDownDark = "#969696"
	colLeader   = "#1b5e20"
	colCrown    = "#f9a825"
	colBad      = "#d32f2f"
	colGood     = "#2e7d32"
	colWrites   = "#64748b"
	colDeletes  = "#b4c0cf"
	colGrid     = "#e3e3e3"
	colMuted    = "#666666"
	colText     = "#222222"
	colUnknownK = "#999999"
)

// kindColours gives each kind of fault its colour, in the legend's order;
// none is red or green, which mean broken promises and answering peers.
var kindColours = []struct {
	kind   EventKind
	colour string
}{
	{EventKill, "#7b3fa0"},
	{EventStop, "#b07aa1"},
	{EventRestart, "#9c755f"},
	{EventCut, "#f28e2b"},
	{EventDelay, "#e0b400"},
	{EventLoss, "#ff9da7"},
	{EventFlap, "#4e79a7"},
	{EventNotReady, "#3fa59c"},
	{EventSkew, "#6b6ecf"},
	{EventForge, "#555555"},
}

func kindColour(k EventKind) string {
	for _, kc := range kindColours {
		if kc.kind == k {
			return kc.colour
		}
	}
	return colUnknownK
}

// svgCanvas is the picture being drawn: the buffer and the time axis,
// mapped onto x0…x1.
type svgCanvas struct {
	b          bytes.Buffer
	r          *Report
	start, end time.Time
	x0, x1     float64
}

// x is where t falls on the time axis; a time before Started (a zero one
// included) or after Ended is drawn at the edge.
func (c *svgCanvas) x(t time.Time) float64 {
	if t.Before(c.start) {
		t = c.start
	}
	if t.After(c.end) {
		t = c.end
	}
	return c.x0 + float64(t.Sub(c.start))/float64(c.end.Sub(c.start))*(c.x1-c.x0)
}

func (c *svgCanvas) printf(format string, args ...any) {
	fmt.Fprintf(&c.b, format, args...)
}

// text writes s escaped at (x, y); attrs are extra attributes.
func (c *svgCanvas) text(x, y float64, attrs, s string) {
	c.printf(`<text x="%.1f" y="%.1f"%s>%s</text>`+"\n", x, y, attrs, esc(s))
}

// WriteSVG draws the run as an SVG picture (timeline.svg): the time along
// x; at the top the violations, the recoveries and the writes; below, one
// lane per peer grouped by region, green where it answered, hatched grey
// where it was down, a dark bar and a crown where it led its region, with
// each fault a translucent band over the lanes it acted on; a legend at the
// bottom. Times outside [Started, Ended], zero ones included, are drawn at
// the nearer edge. It writes in one call, so w gets the
// whole picture or an error.
func (r *Report) WriteSVG(w io.Writer) error {
	c := &svgCanvas{r: r, start: r.Started, end: r.Ended}
	if !c.end.After(c.start) {
		c.end = c.start.Add(time.Second)
	}
	groups := peerGroups(r.Peers)
	c.x0 = labelWidth(groups, r.Mesh.Edge)
	c.x1 = svgWidth - svgMarginR

	// Lay out from the top: header, the run's lanes, the peers' lanes.
	y := 16.0
	headerBottom := y + 40
	if r.Error != "" {
		headerBottom += 16
	}
	violY := headerBottom + 18
	recs := c.packRecoveries()
	recY := violY + svgLaneH + svgLaneGap*2
	rows := 1
	for _, rc := range recs {
		rows = max(rows, rc.row+1)
	}
	writesY := recY + float64(rows)*svgRowH + svgLaneGap*2
	peersTop := writesY + svgWritesH + 16
	lanes, peersBottom := layoutLanes(groups, peersTop)
	axisY := peersBottom + 16
	legendY := axisY + 26
	legendItems := c.legendItems()
	legendH := c.legendHeight(legendItems)
	height := legendY + legendH + 12

	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="sans-serif" font-size="12" fill="%s">`+"\n",
		svgWidth, height, svgWidth, height, colText)
	c.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	// Down is hatched, so that it still shows under a fault's band.
	c.printf(`<defs><pattern id="down" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`+
		`<rect width="6" height="6" fill="%s"/><rect width="2" height="6" fill="%s"/></pattern></defs>`+"\n", colDown, colDownDark)
	c.header(y)
	c.grid(violY-6, peersBottom, axisY)
	c.violations(violY)
	c.recoveries(recY, recs)
	c.writes(writesY)
	c.peerLanes(groups, lanes, peersTop)
	c.faultBands(lanes)
	c.legend(legendY, legendItems)
	c.printf("</svg>\n")
	_, err := w.Write(c.b.Bytes())
	return err
}

// header writes the title (scenario, seed, verdict) and a line of facts.
func (c *svgCanvas) header(y float64) {
	r := c.r
	verdict, vcol := "PASSED", colGood
	if !r.Passed {
		verdict, vcol = "FAILED", colBad
	}
	variant := ""
	if r.Short {
		variant = " (short)"
	}
	c.printf(`<text x="16" y="%.1f" font-size="14"><tspan font-weight="bold">%s</tspan> · seed %d%s · <tspan font-weight="bold" fill="%s">%s</tspan></text>`+"\n",
		y+14, esc(cmp.Or(r.Scenario, "unnamed scenario")), r.Seed, variant, vcol, verdict)
	held := 0
	for _, v := range r.Invariants {
		if v.Passed {
			held++
		}
	}
	facts := []string{r.meshLine(), fmtDur(r.duration()),
		plural(r.Writes, "write") + ", " + plural(r.Deletes, "delete"),
		fmt.Sprintf("%d of %d invariants held", held, len(r.Invariants))}
	if r.Description != "" {
		facts = append([]string{r.Description}, facts...)
	}
	c.text(16, y+32, fmt.Sprintf(` font-size="12" fill="%s"`, colMuted), strings.Join(facts, " · "))
	if r.Error != "" {
		c.text(16, y+48, fmt.Sprintf(` font-size="12" fill="%s"`, colBad), "stopped early: "+truncate(r.Error, 180))
	}
}

// niceStep is the step between ticks of an axis that long: the smallest
// of 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300… seconds that makes
// at most 12 ticks (and so at least 5).
func niceStep(span time.Duration) float64 {
	secs := span.Seconds()
	steps := []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}
	for _, s := range steps {
		if secs/s <= 11 {
			return s
		}
	}
	s := 3600.0
	for secs/s > 11 {
		s *= 2
	}
	return s
}

// grid draws the time axis: light vertical lines from top to bottom and
// the tick labels at labelY.
func (c *svgCanvas) grid(top, bottom, labelY float64) {
	span := c.end.Sub(c.start)
	step := niceStep(span)
	c.printf(`<g stroke="%s" stroke-width="1">`+"\n", colGrid)
	n := int(math.Floor(span.Seconds()/step+1e-9)) + 1
	for i := range n {
		x := c.x(c.start.Add(time.Duration(float64(i) * step * float64(time.Second))))
		c.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x, top, x, bottom+4)
	}
	c.printf("</g>\n")
	c.printf(`<g font-size="11" fill="%s" text-anchor="middle">`+"\n", colMuted)
	for i := range n {
		secs := float64(i) * step
		x := c.x(c.start.Add(time.Duration(secs * float64(time.Second))))
		label := fmt.Sprintf("%.0fs", secs)
		if step < 1 {
			label = fmt.Sprintf("%.1fs", secs)
		}
		c.text(x, labelY, "", label)
	}
	c.printf("</g>\n")
}

// legendItem is one entry of the legend: a swatch drawn by draw at (x, y)
// (its top left, 14×12) and a label.
type legendItem struct {
	label string
	draw  func(c *svgCanvas, x, y float64)
}

func (c *svgCanvas) legendItems() []legendItem {
	box := func(fill, extra string) func(*svgCanvas, float64, float64) {
		return func(c *svgCanvas, x, y float64) {
			c.printf(`<rect x="%.1f" y="%.1f" width="14" height="12" fill="%s"%s/>`+"\n", x, y, fill, extra)
		}
	}
	items := []legendItem{
		{"answered", box(colUp, "")},
		{"down", box("url(#down)", "")},
		{"leader", func(c *svgCanvas, x, y float64) {
			box(colUp, "")(c, x, y)
			c.printf(`<rect x="%.1f" y="%.1f" width="14" height="5" fill="%s"/>`+"\n", x, y+4, colLeader)
			c.crown(x+2, y-2)
		}},
	}
	for _, k := range c.faultKinds() {
		col := kindColour(k)
		items = append(items, legendItem{string(k), box(col, fmt.Sprintf(` fill-opacity="0.35" stroke="%s"`, col))})
	}
	items = append(items,
		legendItem{"violation", func(c *svgCanvas, x, y float64) { c.diamond(x+7, y+6) }},
		legendItem{"recovered", func(c *svgCanvas, x, y float64) { c.bracket(x, x+14, y+6, colMuted) }},
		legendItem{"not recovered", func(c *svgCanvas, x, y float64) { c.bracket(x, x+14, y+6, colBad) }},
		legendItem{"writes", box(colWrites, "")},
		legendItem{"deletes", box(colDeletes, "")},
	)
	return items
}

// legendPlaces is where each legend item goes, wrapping at the right
// margin: its x and its row.
func (c *svgCanvas) legendPlaces(items []legendItem) (xs []float64, rows []int) {
	x, row := c.x0, 0
	for _, it := range items {
		w := 14 + 6 + textWidth(it.label, 12) + 18
		if x+w > svgWidth-svgMarginR && x > c.x0 {
			x, row = c.x0, row+1
		}
		xs, rows = append(xs, x), append(rows, row)
		x += w
	}
	return xs, rows
}

func (c *svgCanvas) legendHeight(items []legendItem) float64 {
	_, rows := c.legendPlaces(items)
	if len(rows) == 0 {
		return 0
	}
	return float64(rows[len(rows)-1]+1) * 20
}

func (c *svgCanvas) legend(y float64, items []legendItem) {
	xs, rows := c.legendPlaces(items)
	c.text(16, y+10, fmt.Sprintf(` font-size="12" fill="%s"`, colMuted), "legend")
	for i, it := range items {
		ry := y + float64(rows[i])*20
		it.draw(c, xs[i], ry)
		c.text(xs[i]+20, ry+10, ` font-size="12"`, it.label)
	}
}

// faultKinds are the kinds of the run's faults and recoveries, in the
// legend's order, unknown kinds last by name.
func (c *svgCanvas) faultKinds() []EventKind {
	seen := map[EventKind]bool{}
	for _, e := range c.r.Timeline {
		if isFaultKind(e.Kind) {
			seen[e.Kind] = true
		}
	}
	for _, rc := range c.r.Recoveries {
		seen[rc.Kind] = true
	}
	var out []EventKind
	for _, kc := range kindColours {
		if seen[kc.kind] {
			out = append(out, kc.kind)
			delete(seen, kc.kind)
		}
	}
	var rest []EventKind
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// esc escapes s for SVG text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// truncate shortens s to n runes, ending it with "…" if it was longer.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// textWidth guesses how wide s is drawn in a sans-serif font of that size.
func textWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * 0.6
}
