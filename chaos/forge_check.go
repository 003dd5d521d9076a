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
// went as it must: a forged one refused, and the truthful control that
// comes with it accepted (without it, refusals could be those of a peer
// that refuses everything).
func NewForgeRefused() Checker { return &forgeRefused{} }

func (c *forgeRefused) Name() string { return "forged-identity-refused" }

func (c *forgeRefused) Promise() string {
	return "a peer's certificate never speaks for another cluster or region"
}

func (c *forgeRefused) Event(e Event) {
	if e.Kind == EventForge && e.Value != "as it must" {
		c.vs = append(c.vs, Violation{At: e.At,
			Message:  fmt.Sprintf("probe with the certificate of %s did not go as it must", strings.Join(e.Clusters, " against ")),
			Evidence: e.Detail})
	}
}

func (c *forgeRefused) Observe(Sample) {}

func (c *forgeRefused) Finish(Final) []Violation { return c.vs }
