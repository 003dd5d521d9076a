package chaos

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAssertionsCheckerCatchesAFailedAssert(t *testing.T) {
	c := NewAssertions()
	wantNone(t, run(t, c, final(10), Event{At: at(1), Kind: EventAssert, Detail: "ready: held"}))
	c = NewAssertions()
	vs := run(t, c, final(10), Event{At: at(1), Kind: EventAssert, Detail: "ready: held"},
		Event{At: at(2), Kind: EventAssert, Detail: "converged: did not hold: digests differ", Failed: true})
	if len(vs) != 1 || vs[0].Message != "assert converged" || !strings.Contains(vs[0].Evidence, "digests differ") {
		t.Fatalf("violations %+v", vs)
	}
}

// alwaysViolated is a checker with one violation from the start.
type alwaysViolated struct{ violations }

func (c *alwaysViolated) Name() string             { return "planted" }
func (c *alwaysViolated) Promise() string          { return "never holds" }
func (c *alwaysViolated) Event(Event)              {}
func (c *alwaysViolated) Observe(Sample)           {}
func (c *alwaysViolated) Finish(Final) []Violation { return c.list() }
func newAlwaysViolated() *alwaysViolated {
	c := &alwaysViolated{}
	c.add(at(0), "planted", "planted")
	return c
}

func TestAssertInvariantsFailsOnceAnInvariantWasViolated(t *testing.T) {
	for _, tc := range []struct {
		checkers []Checker
		failed   bool
	}{
		{[]Checker{NewWritesKept(), NewAssertions()}, false},
		{[]Checker{NewWritesKept(), newAlwaysViolated(), NewAssertions()}, true},
	} {
		r := testRunner(newShape(1, 1), 1)
		report := &Report{}
		r.rec = newRecorder(report, r.d.Peers(), tc.checkers)
		r.assert(context.Background(), "invariants")
		r.rec.close(time.Now())
		if len(report.Timeline) != 1 || report.Timeline[0].Failed != tc.failed {
			t.Fatalf("timeline %+v; want one assert, failed %v", report.Timeline, tc.failed)
		}
		if tc.failed && !strings.Contains(report.Timeline[0].Detail, "violated so far: planted") {
			t.Errorf("detail %q does not name the violated invariant", report.Timeline[0].Detail)
		}
		if got := tc.checkers[len(tc.checkers)-1].Finish(Final{}); (len(got) > 0) != tc.failed {
			t.Errorf("assertions checker: %+v", got)
		}
	}
}

func TestAssertStepsAreValidated(t *testing.T) {
	s, err := Parse([]byte("name: x\nmesh: {regions: 1, clusters: 1}\nsteps:\n  - assert: ready\n  - repeat: {times: 2, steps: [{assert: invariants}]}\n"), false, "")
	if err != nil || !s.asserts() {
		t.Fatalf("scenario with asserts: %v", err)
	}
	_, err = Parse([]byte("name: x\nmesh: {regions: 1, clusters: 1}\nsteps:\n  - assert: happy\n"), false, "")
	if err == nil || !strings.Contains(err.Error(), `assert "happy": want one of ready, regions, converged, leaders, invariants`) {
		t.Fatalf("an unknown assert: %v", err)
	}
	if s, _ := Parse([]byte("name: x\nmesh: {regions: 1, clusters: 1}\nsteps:\n  - wait: ready\n"), false, ""); s.asserts() {
		t.Fatal("a scenario without assert steps says it has some")
	}
}
