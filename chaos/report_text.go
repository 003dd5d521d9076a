package chaos

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// How much of a report WriteText prints.
const (
	// textTimelineMax is the longest timeline printed whole; a longer one
	// is printed as its first and last textTimelineEnds events.
	textTimelineMax  = 200
	textTimelineEnds = 100
	// textViolationsMax is how many violations are printed per invariant.
	textViolationsMax = 5
)

// WriteText writes the report for a person at a terminal: a header, the
// timeline, recoveries by kind of fault, every invariant's verdict with up
// to five of its violations, and a closing line of totals. It writes in
// one call, so w gets the whole report or an error.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	r.textHeader(&b)
	r.textTimeline(&b)
	r.textRecoveries(&b)
	if len(r.Measures) > 0 {
		b.WriteString("\nMeasured\n")
		for _, m := range r.Measures {
			fmt.Fprintf(&b, "  %s: %s\n", m.Name, fmtDur(m.Took))
		}
	}
	r.textInvariants(&b)
	held := 0
	for _, v := range r.Invariants {
		if v.Passed {
			held++
		}
	}
	fmt.Fprintf(&b, "\n%s and %s acknowledged; %d of %d invariants held.\n",
		plural(r.Writes, "write"), plural(r.Deletes, "delete"), held, len(r.Invariants))
	// The tables pad a last empty cell (an event without detail).
	lines := bytes.Split(b.Bytes(), []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimRight(l, " ")
	}
	_, err := w.Write(bytes.Join(lines, []byte("\n")))
	return err
}

func (r *Report) textHeader(b *bytes.Buffer) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	scenario := r.Scenario
	if r.Description != "" {
		scenario += " — " + r.Description
	}
	fmt.Fprintf(tw, "Scenario\t%s\n", scenario)
	variant := "full variant"
	if r.Short {
		variant = "short variant"
	}
	fmt.Fprintf(tw, "Seed\t%d (%s)\n", r.Seed, variant)
	fmt.Fprintf(tw, "Mesh\t%s\n", r.meshLine())
	ran := "not recorded"
	if !r.Started.IsZero() {
		ran = fmt.Sprintf("%s from %s", fmtDur(r.duration()),
			r.Started.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintf(tw, "Ran\t%s\n", ran)
	fmt.Fprintf(tw, "Result\t%s\n", r.resultLine())
	tw.Flush()
}

func (r *Report) meshLine() string {
	s := plural(r.Mesh.Regions, "region") + ", " + plural(r.Mesh.Clusters, "cluster")
	if len(r.Mesh.Edge) > 0 {
		s += " (edge: " + strings.Join(r.Mesh.Edge, ", ") + ")"
	}
	return s
}

func (r *Report) resultLine() string {
	s := "FAILED"
	if r.Passed {
		s = "PASSED"
	}
	if r.Error != "" {
		s += " — stopped early: " + r.Error
	}
	return s
}

func (r *Report) textTimeline(b *bytes.Buffer) {
	fmt.Fprintf(b, "\nTimeline (%s)\n", plural(len(r.Timeline), "event"))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	line := func(e Event) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.offset(e.At), eventName(e), eventTargets(e), eventDetail(e))
	}
	n := len(r.Timeline)
	if n <= textTimelineMax {
		for _, e := range r.Timeline {
			line(e)
		}
	} else {
		for _, e := range r.Timeline[:textTimelineEnds] {
			line(e)
		}
		// A line without cells would break the columns in two blocks
		// aligned apart; this one keeps the first column.
		fmt.Fprintf(tw, "  …\t%d more events\t\t\n", n-2*textTimelineEnds)
		for _, e := range r.Timeline[n-textTimelineEnds:] {
			line(e)
		}
	}
	tw.Flush()
}

func (r *Report) textRecoveries(b *bytes.Buffer) {
	stats := r.ByKind
	if len(stats) == 0 {
		stats = Summarize(r.Recoveries)
	}
	b.WriteString("\nRecoveries by kind of fault\n")
	if len(stats) == 0 {
		b.WriteString("  none measured\n")
		return
	}
	// Numbers align right; the kinds, padded to one width, stay left,
	// and the cell padding indents them.
	label := func(s RecoveryStats) string {
		if s.Phase == "" {
			return string(s.Kind)
		}
		return string(s.Kind) + " (" + s.Phase + ")"
	}
	kw := len("kind")
	for _, s := range stats {
		kw = max(kw, len(label(s)))
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tfaults\trecovered\tmin\tmedian\tp99\tmax\t\n", kw, "kind")
	for _, s := range stats {
		durs := [4]string{"—", "—", "—", "—"}
		if s.Recovered > 0 {
			durs = [4]string{fmtDur(s.Min), fmtDur(s.Median), fmtDur(s.P99), fmtDur(s.Max)}
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%s\t%s\t%s\t%s\t\n",
			kw, label(s), s.Faults, s.Recovered, durs[0], durs[1], durs[2], durs[3])
	}
	tw.Flush()
	for _, rc := range r.Recoveries {
		if !rc.Recovered && rc.Phase != PhaseTakeover {
			fmt.Fprintf(b, "  not recovered: %s #%d, measured from %s\n", rc.Kind, rc.FaultID, r.offset(rc.From))
		}
	}
}

func (r *Report) textInvariants(b *bytes.Buffer) {
	b.WriteString("\nInvariants\n")
	if len(r.Invariants) == 0 {
		b.WriteString("  none checked\n")
	}
	for _, v := range r.Invariants {
		if v.Passed {
			fmt.Fprintf(b, "  PASS %s — %s\n", v.Name, v.Promise)
			continue
		}
		count := max(v.Count, len(v.Violations))
		fmt.Fprintf(b, "  FAIL %s — %s (%s)\n", v.Name, v.Promise, plural(count, "violation"))
		shown := v.Violations[:min(len(v.Violations), textViolationsMax)]
		for _, x := range shown {
			fmt.Fprintf(b, "       %s  %s\n", r.offset(x.At), x.Message)
			if x.Evidence != "" {
				ev := strings.TrimRight(x.Evidence, "\n")
				b.WriteString("           " + strings.ReplaceAll(ev, "\n", "\n           ") + "\n")
			}
		}
		if rest := count - len(shown); rest > 0 {
			fmt.Fprintf(b, "       … %d more\n", rest)
		}
	}
}

// offset is t as seconds since the run started, "+12.3s"; "?" when either
// is unknown.
func (r *Report) offset(t time.Time) string {
	if t.IsZero() || r.Started.IsZero() {
		return "?"
	}
	d := t.Sub(r.Started)
	if d < 0 {
		return fmt.Sprintf("-%.1fs", -d.Seconds())
	}
	return fmt.Sprintf("+%.1fs", d.Seconds())
}

// duration is how long the run took, zero when not recorded.
func (r *Report) duration() time.Duration {
	if r.Started.IsZero() || r.Ended.Before(r.Started) {
		return 0
	}
	return r.Ended.Sub(r.Started)
}

// eventName is the event's kind, with the fault's ID when it has one.
func eventName(e Event) string {
	if e.ID != 0 {
		return fmt.Sprintf("%s #%d", e.Kind, e.ID)
	}
	return string(e.Kind)
}

// isFaultKind says whether an event of kind k is a fault (has an ID, may be
// healed).
func isFaultKind(k EventKind) bool {
	switch k {
	case EventHeal, EventWrite, EventDelete, EventNote:
		return false
	}
	return true
}

// eventTargets says what an event acted on: its clusters, its regions,
// "all" for a fault that names neither, the key of a write.
func eventTargets(e Event) string {
	var parts []string
	if len(e.Clusters) > 0 {
		parts = append(parts, strings.Join(e.Clusters, ","))
	}
	if len(e.Regions) > 0 {
		word := "region "
		if len(e.Regions) > 1 {
			word = "regions "
		}
		parts = append(parts, word+strings.Join(e.Regions, ","))
	}
	if e.Edge {
		parts = append(parts, "edge uplink")
	}
	if e.Key != "" {
		k := e.Key
		if e.Via != "" {
			k += " via " + e.Via
		}
		parts = append(parts, k)
	}
	if len(parts) == 0 && isFaultKind(e.Kind) {
		return "all"
	}
	return strings.Join(parts, "; ")
}

// eventDetail is the event's detail, after the faults a heal ends.
func eventDetail(e Event) string {
	if len(e.Heals) == 0 {
		return e.Detail
	}
	ids := make([]string, len(e.Heals))
	for i, id := range e.Heals {
		ids[i] = "#" + strconv.Itoa(id)
	}
	s := "ends " + strings.Join(ids, ", ")
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// fmtDur is d rounded to the millisecond.
func fmtDur(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
