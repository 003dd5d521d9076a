package chaos

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// NoStaleReady promises that no status older than its stated bound is
// shown as Ready. In every answering peer's view it judges
//
//   - a cluster shown Ready with an Age (the other region's summary it
//     comes from) older than the bound, and a placement with such an Age
//     shown Healthy (or Ready) or with Ready replicas: each reported once
//     per viewer and cluster (or placement) for as long as it lasts;
//   - a cluster the harness killed or stopped, and has not brought back,
//     shown Ready by another peer more than the bound after the fault
//     began: reported once per fault, viewer and cluster.
type noStaleReady struct {
	bound   time.Duration
	regions regions
	// down are the kills and stops not yet healed.
	down map[int]Event
	// stale is, per viewer, what it shows stale now (already reported).
	stale map[string]map[string]bool
	// shownUp is, per fault, the viewers and clusters already reported.
	shownUp map[int]map[string]bool
	violations
}

// NewNoStaleReady returns the "no stale status shown as Ready" invariant;
// bound is the status bound.
func NewNoStaleReady(bound time.Duration) Checker {
	return &noStaleReady{bound: bound, regions: regions{}, down: map[int]Event{},
		stale: map[string]map[string]bool{}, shownUp: map[int]map[string]bool{}}
}

func (c *noStaleReady) Name() string { return "no-stale-ready" }
func (c *noStaleReady) Promise() string {
	return fmt.Sprintf("no status older than its bound (%s) is shown as Ready, and no killed or stopped cluster is shown Ready past it", c.bound)
}

func (c *noStaleReady) Event(e Event) {
	switch {
	case (e.Kind == EventKill || e.Kind == EventStop) && e.ID > 0:
		c.down[e.ID] = e
	case e.Kind == EventHeal:
		for _, id := range e.Heals {
			delete(c.down, id)
			delete(c.shownUp, id)
		}
	}
}

// older parses age and reports whether it is past the bound.
func (c *noStaleReady) older(age string) (time.Duration, bool) {
	if age == "" {
		return 0, false
	}
	d, err := time.ParseDuration(age)
	return d, err == nil && d > c.bound
}

func (c *noStaleReady) Observe(s Sample) {
	c.regions.learn(s)
	if !s.Up {
		return
	}
	now := map[string]bool{}
	was := c.stale[s.Cluster]
	for _, cv := range s.Clusters {
		age, old := c.older(cv.Age)
		if cv.Health != "Ready" || !old {
			continue
		}
		key := "cluster " + cv.Name
		if now[key] = true; !was[key] {
			c.add(s.At, fmt.Sprintf("%s's view at %s: cluster %s (region %s) Ready, age %s, bound %s",
				s.Cluster, clock(s.At), cv.Name, cv.Region, age, c.bound),
				"%s shows cluster %s Ready from a status %s old, past the %s bound", s.Cluster, cv.Name, age.Round(time.Millisecond), c.bound)
		}
	}
	for _, w := range s.Workloads {
		for _, p := range w.Placements {
			age, old := c.older(p.Age)
			if !old || (p.Health != "Healthy" && p.Health != "Ready" && p.ReadyReplicas == 0) {
				continue
			}
			key := "placement " + workloadKey(w).String() + " " + p.Cluster
			if now[key] = true; !was[key] {
				c.add(s.At, fmt.Sprintf("%s's view at %s: %s on %s (region %s) health %s, %d of %d replicas Ready, age %s, bound %s",
					s.Cluster, clock(s.At), workloadKey(w).Display(), p.Cluster, p.Region, p.Health, p.ReadyReplicas, p.Replicas, age, c.bound),
					"%s shows %s on cluster %s %s from a status %s old, past the %s bound",
					s.Cluster, workloadKey(w).Display(), p.Cluster, readyWord(p.Health, p.ReadyReplicas), age.Round(time.Millisecond), c.bound)
			}
		}
	}
	c.stale[s.Cluster] = now
	for _, id := range slices.Sorted(maps.Keys(c.down)) {
		f := c.down[id]
		if !s.At.After(f.At.Add(c.bound)) {
			continue
		}
		for _, cv := range s.Clusters {
			if cv.Health != "Ready" || cv.Name == s.Cluster || !c.regions.names(f, cv.Name) {
				continue
			}
			key := s.Cluster + " " + cv.Name
			if c.shownUp[id] == nil {
				c.shownUp[id] = map[string]bool{}
			}
			if c.shownUp[id][key] {
				continue
			}
			c.shownUp[id][key] = true
			c.add(s.At, fmt.Sprintf("%s's view at %s: cluster %s Ready (age %q); %s, not healed; %s after it began, bound %s",
				s.Cluster, clock(s.At), cv.Name, cv.Age, describe(f), s.At.Sub(f.At).Round(time.Millisecond), c.bound),
				"%s shows cluster %s Ready %s after it was %s, past the %s bound",
				s.Cluster, cv.Name, s.At.Sub(f.At).Round(time.Millisecond), map[EventKind]string{EventKill: "killed", EventStop: "stopped"}[f.Kind], c.bound)
		}
	}
}

func readyWord(health string, ready int32) string {
	if health == "Healthy" || health == "Ready" {
		return health
	}
	return fmt.Sprintf("with %d Ready replicas", ready)
}

func (c *noStaleReady) Finish(f Final) []Violation {
	observeFinal(c, f)
	return c.list()
}
