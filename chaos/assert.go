package chaos

import (
	"context"
	"fmt"
	"strings"
)

// assert checks an assert step's condition once, now, and records the
// verdict (EventAssert) for the assertions checker.
func (r *runner) assert(ctx context.Context, what string) {
	var ok bool
	var why string
	if what == "invariants" {
		failed := r.rec.failing()
		ok, why = len(failed) == 0, "violated so far: "+strings.Join(failed, ", ")
	} else {
		ok, why = r.holds(ctx, what)
	}
	e := Event{Kind: EventAssert, Detail: what + ": held"}
	if !ok {
		e.Detail, e.Failed = fmt.Sprintf("%s: did not hold: %s", what, why), true
	}
	r.record(e)
}

// asserts reports whether the scenario has an assert step.
func (s *Scenario) asserts() bool {
	var any func([]Step) bool
	any = func(steps []Step) bool {
		for _, st := range steps {
			if st.Assert != "" || st.Repeat != nil && any(st.Repeat.Steps) {
				return true
			}
		}
		return false
	}
	return any(s.Steps)
}

// assertions is the checker of a scenario's assert steps: every one must
// have held.
type assertions struct{ violations }

// NewAssertions returns the checker of the scenario's assert steps.
func NewAssertions() Checker { return &assertions{} }

func (c *assertions) Name() string    { return "assertions" }
func (c *assertions) Promise() string { return "every assert step of the scenario held when it ran" }

func (c *assertions) Event(e Event) {
	if e.Kind == EventAssert && e.Failed {
		c.add(e.At, e.Detail, "assert %s", strings.SplitN(e.Detail, ":", 2)[0])
	}
}

func (c *assertions) Observe(Sample) {}

func (c *assertions) Finish(Final) []Violation { return c.list() }
