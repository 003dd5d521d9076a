package chaos

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The report tests share t0 and at with the invariant tests.

// sampleReport is a run over three regions with a kill, a cut of a
// region, a delay everywhere, an edge flap never healed and a forge, two
// broken promises and writes throughout.
func sampleReport() *Report {
	r := &Report{
		Scenario:    "region-kill",
		Description: "kill a peer, cut a region, flap the edge",
		Seed:        42,
		Short:       true,
		Mesh:        MeshShape{Regions: 3, Clusters: 6, Edge: []string{"edge-a"}},
		Started:     t0,
		Ended:       at(95),
		Timeline: []Event{
			{At: at(0), Kind: EventNote, Detail: "step 1: apply web"},
			{At: at(10), Kind: EventKill, ID: 1, Clusters: []string{"eu-1"}, Detail: "SIGKILL"},
			{At: at(20), Kind: EventFlap, ID: 4, Regions: []string{"edge-a"}, Edge: true, Detail: "uplink 2s down, 2s up"},
			{At: at(30), Kind: EventHeal, Heals: []int{1}, Detail: "restarted"},
			{At: at(40), Kind: EventCut, ID: 2, Regions: []string{"us"}, Detail: "both ways"},
			{At: at(50), Kind: EventForge, ID: 5, Clusters: []string{"us-1"}, Detail: "us-1 speaking for eu"},
			{At: at(55), Kind: EventHeal, Heals: []int{2}},
			{At: at(60), Kind: EventDelay, ID: 3, Detail: "200ms ± 50ms"},
			{At: at(70), Kind: EventHeal, Heals: []int{3}},
		},
		Peers: []PeerTrack{
			{Region: "eu", Cluster: "eu-1", Down: []Span{{at(10), at(31)}}, Leader: []Span{{at(0), at(10)}}},
			{Region: "eu", Cluster: "eu-2", Leader: []Span{{at(12), at(95)}}},
			{Region: "eu", Cluster: "eu-3"},
			{Region: "us", Cluster: "us-1", Leader: []Span{{at(0), at(95)}}},
			{Region: "us", Cluster: "us-2"},
			{Region: "edge-a", Cluster: "edge-a-1", Down: []Span{{at(22), at(24)}, {at(26), at(28)}}, Leader: []Span{{at(0), at(95)}}},
		},
		Recoveries: []Recovery{
			{FaultID: 1, Kind: EventKill, From: at(10), Took: 14200 * time.Millisecond, Recovered: true},
			{FaultID: 4, Kind: EventFlap, From: at(20)},
			{FaultID: 2, Kind: EventCut, From: at(55), Took: 3100 * time.Millisecond, Recovered: true},
			{FaultID: 3, Kind: EventDelay, From: at(70), Took: 800 * time.Millisecond, Recovered: true},
		},
		Invariants: []Verdict{
			{Name: "no-lost-write", Promise: "every acknowledged write is kept", Passed: true},
			{Name: "one-leader", Promise: "at most one leader per region and term", Count: 7, Violations: []Violation{
				{At: at(11), Message: "two leaders <&> in eu", Evidence: "eu-1 term 3\neu-2 term 3"},
				{At: at(12), Message: "two leaders in eu again"},
				{At: at(13), Message: "third"}, {At: at(14), Message: "fourth"},
				{At: at(15), Message: "fifth"}, {At: at(16), Message: "sixth, not printed"},
			}},
			{Name: "recover-in-time", Promise: "replicas Ready within 30s of a heal", Count: 1, Violations: []Violation{
				{At: at(50), Message: "flap #4 not recovered"},
			}},
		},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for ms := 0; ms < 95000; ms += 150 {
		kind := EventWrite
		if rng.IntN(10) == 0 {
			kind = EventDelete
		}
		if ms > 40000 && ms < 55000 && rng.IntN(3) > 0 {
			continue // the cut slows writes down
		}
		r.Count(Event{At: t0.Add(time.Duration(ms) * time.Millisecond), Kind: kind})
	}
	r.ByKind = Summarize(r.Recoveries)
	return r
}

func TestSummarize(t *testing.T) {
	var rs []Recovery
	for _, i := range rand.New(rand.NewPCG(3, 4)).Perm(100) {
		rs = append(rs, Recovery{Kind: EventKill, Took: time.Duration(i+1) * time.Millisecond, Recovered: true})
	}
	rs = append(rs,
		Recovery{Kind: EventKill}, Recovery{Kind: EventKill, Took: time.Hour}, // not recovered: not counted in durations
		Recovery{Kind: EventStop},
		Recovery{Kind: EventCut, Took: 7 * time.Second, Recovered: true},
	)
	got := Summarize(rs)
	want := []RecoveryStats{
		{Kind: EventCut, Faults: 1, Recovered: 1, Min: 7 * time.Second, Median: 7 * time.Second, P99: 7 * time.Second, Max: 7 * time.Second},
		{Kind: EventKill, Faults: 102, Recovered: 100, Min: time.Millisecond, Median: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond},
		{Kind: EventStop, Faults: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Summarize:\n got %+v\nwant %+v", got, want)
	}
	if got := Summarize(nil); got == nil || len(got) != 0 {
		t.Errorf("Summarize(nil) = %#v, want an empty slice", got)
	}
}

func TestNearestRank(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v))
		}
		return ds
	}
	for _, tc := range []struct {
		ds       []time.Duration
		p50, p99 time.Duration
	}{
		{ms(5), 5, 5},
		{ms(1, 2), 1, 2},
		{ms(1, 2, 3), 2, 3},
		{ms(1, 2, 3, 4), 2, 4},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 5, 10},
	} {
		if got := nearestRank(tc.ds, 50); got != tc.p50 {
			t.Errorf("p50 of %v = %v, want %v", tc.ds, got, tc.p50)
		}
		if got := nearestRank(tc.ds, 99); got != tc.p99 {
			t.Errorf("p99 of %v = %v, want %v", tc.ds, got, tc.p99)
		}
	}
}

func TestCount(t *testing.T) {
	r := &Report{Started: t0}
	for _, e := range []Event{
		{At: at(0.2), Kind: EventWrite}, {At: at(0.9), Kind: EventDelete},
		{At: at(3.5), Kind: EventWrite}, {At: at(1.5), Kind: EventWrite}, // late
		{At: at(3.6), Kind: EventNote},
	} {
		r.Count(e)
	}
	want := []Activity{{t0, 1, 1}, {at(1), 1, 0}, {at(3), 1, 0}}
	if r.Writes != 3 || r.Deletes != 1 || !slices.Equal(r.Activity, want) {
		t.Errorf("Count: writes %d deletes %d activity %+v", r.Writes, r.Deletes, r.Activity)
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"region-kill — kill a peer", "42 (short variant)", "3 regions, 6 clusters (edge: edge-a)", "1m35s from", "FAILED",
		"+10.0s  kill #1", "eu-1", "ends #1: restarted", "ends #2", "region us", "region edge-a; edge uplink", "delay #3  all",
		"PASS no-lost-write — every acknowledged write is kept",
		"FAIL one-leader — at most one leader per region and term (7 violations)",
		"+11.0s  two leaders <&> in eu", "eu-1 term 3\n", "eu-2 term 3", "… 2 more",
		"FAIL recover-in-time — replicas Ready within 30s of a heal (1 violation)",
		"not recovered: flap #4, measured from +20.0s",
		"1 of 3 invariants held",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sixth") {
		t.Error("text prints more than five violations of an invariant")
	}
	// The recovery table, right-aligned numbers under their headers.
	for _, re := range []string{
		`kind\s+faults\s+recovered\s+min\s+median\s+p99\s+max`,
		`kill\s+1\s+1\s+14\.2s\s+14\.2s\s+14\.2s\s+14\.2s`,
		`flap\s+1\s+0\s+—\s+—\s+—\s+—`,
		`delay\s+1\s+1\s+800ms`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("recovery table lacks %s:\n%s", re, out)
		}
	}
}

func TestWriteTextLongTimeline(t *testing.T) {
	r := &Report{Scenario: "long", Started: t0, Ended: at(300), Passed: true}
	for i := range 250 {
		r.Timeline = append(r.Timeline, Event{At: at(float64(i)), Kind: EventNote, Detail: "note " + strconv.Itoa(i)})
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !regexp.MustCompile(`\n  …\s+50 more events\s*\n  \+150\.0s`).MatchString(out) {
		t.Errorf("long timeline does not say what it left out:\n%s", out)
	}
	for _, want := range []string{"note 0\n", "note 99\n", "note 150\n", "note 249\n", "PASSED"} {
		if !strings.Contains(out, want) {
			t.Errorf("long timeline lacks %q", want)
		}
	}
	for _, not := range []string{"note 100\n", "note 149\n"} {
		if strings.Contains(out, not) {
			t.Errorf("long timeline prints %q, from the middle", not)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	checkXML(t, svg)
	if n := strings.Count(svg, `class="lane"`); n != len(r.Peers) {
		t.Errorf("%d lanes, want one per peer (%d)", n, len(r.Peers))
	}
	violations := 0
	for _, v := range r.Invariants {
		violations += len(v.Violations)
	}
	if n := strings.Count(svg, `class="violation"`); n != violations {
		t.Errorf("%d violation markers, want %d", n, violations)
	}
	if n := strings.Count(svg, `class="recovery"`); n != len(r.Recoveries) {
		t.Errorf("%d recoveries drawn, want %d", n, len(r.Recoveries))
	}
	if !strings.Contains(svg, "two leaders &lt;&amp;&gt; in eu") || strings.Contains(svg, "<&>") {
		t.Error("a violation's message is not escaped")
	}
	for _, want := range []string{"region-kill", "seed 42", "FAILED", "eu-1", "edge-a", "kill #1", "flap #4 not recovered", "14.2s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("picture lacks %q", want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, span := range []time.Duration{
		time.Second, 3 * time.Second, 10 * time.Second, 45 * time.Second, 95 * time.Second,
		4 * time.Minute, 17 * time.Minute, time.Hour, 5 * time.Hour, 40 * time.Hour,
	} {
		step := niceStep(span)
		ticks := int(span.Seconds()/step) + 1
		if ticks < 5 || ticks > 12 {
			t.Errorf("span %v: step %vs makes %d ticks, want 5 to 12", span, step, ticks)
		}
	}
}

func TestSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "region-kill")
	r := sampleReport()
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	// Saved twice: the second replaces the first.
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"report.json", "timeline.svg"}) {
		t.Errorf("dir holds %v, want report.json and timeline.svg only", names)
	}
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Scenario != r.Scenario || len(back.Peers) != len(r.Peers) || back.Recoveries[0].Took != r.Recoveries[0].Took {
		t.Errorf("report.json does not give the report back: %+v", back)
	}
	if !strings.Contains(string(data), "two leaders <&> in eu") {
		t.Error("report.json escapes <&> for HTML")
	}
	svg, err := os.ReadFile(filepath.Join(dir, "timeline.svg"))
	if err != nil {
		t.Fatal(err)
	}
	checkXML(t, string(svg))
}

func TestSaveFailsWithoutTempFiles(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	err := writeAtomic(dir, "report.json", func(w io.Writer) error {
		w.Write([]byte(`{"half":`))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("writeAtomic = %v, want the writer's error", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed write left %v", entries)
	}
}

func TestEmptyReport(t *testing.T) {
	for name, r := range map[string]*Report{
		"zero":    {},
		"started": {Scenario: "empty", Started: t0, Ended: at(30), Passed: true},
	} {
		var svg, text bytes.Buffer
		if err := r.WriteSVG(&svg); err != nil {
			t.Fatal(err)
		}
		checkXML(t, svg.String())
		if !strings.Contains(svg.String(), "no peers recorded") {
			t.Errorf("%s: picture does not say there are no peers", name)
		}
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "0 writes and 0 deletes acknowledged; 0 of 0 invariants held.") {
			t.Errorf("%s: text:\n%s", name, text.String())
		}
	}
}

// checkXML fails t unless s is well-formed XML with an svg root.
func checkXML(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("picture is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
}
