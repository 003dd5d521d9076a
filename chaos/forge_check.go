package chaos

import (
	"fmt"
	"strings"
)

// forgeRefused is the invariant of the forged-identity probes: a peer's
// certificate never speaks for another cluster or region.
type forgeRefused struct {
	vs []Violation
}

// NewForgeRefused checks that every forged-identity attempt (EventForge)
// was refused.
func NewForgeRefused() Checker { return &forgeRefused{} }

func (c *forgeRefused) Name() string { return "forged-identity-refused" }

func (c *forgeRefused) Promise() string {
	return "a peer's certificate never speaks for another cluster or region"
}

func (c *forgeRefused) Event(e Event) {
	if e.Kind == EventForge && e.Value != "refused" {
		c.vs = append(c.vs, Violation{At: e.At,
			Message:  fmt.Sprintf("the certificate of %s was accepted speaking for someone else", strings.Join(e.Clusters, " against ")),
			Evidence: e.Detail})
	}
}

func (c *forgeRefused) Observe(Sample) {}

func (c *forgeRefused) Finish(Final) []Violation { return c.vs }
