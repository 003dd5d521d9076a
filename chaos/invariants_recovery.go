package chaos

import (
	"fmt"
	"slices"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// Recovery promises that after each fault every workload's desired
// replicas are Ready again within the stated time, and measures how long
// each fault took.
//
// A fault is measured from the moment it is over: from the heal that
// names it, or, for a fault never healed (a kill the mesh must ride out),
// from its start. The mesh is recovered at the first sample from a peer
// that answers, is not stale and is not one of an open fault's clusters,
// in which every workload with replicas has, over its non-evicting
// placements, as many replicas bound and Ready as it desires, none of
// those placements Unknown.
//
// A recovery counts only at a moment when no fault that is later healed
// was open: faults that overlap all recover at the same sample, each
// measured from its own end. The checker does not know when a fault
// begins whether it will be healed, so it records each recovery as it
// comes and takes back those that a later heal shows fell inside the
// healed fault.
type recovery struct {
	within time.Duration
	// guarded workloads ("Kind namespace/name") are not moved off a lost
	// cluster that may still run them: the takeover does not wait for
	// them.
	guarded map[string]bool
	faults  []*measuredFault
	byID    map[int]*measuredFault
	// replicas is set once any sample showed a workload with replicas;
	// from then on a view with none is not a recovered mesh.
	replicas bool
	// notReady says why the latest eligible sample was not recovered.
	notReady string
	violations
}

// measuredFault is one fault and its recovery so far.
type measuredFault struct {
	event  Event
	healed bool
	healAt time.Time
	// recovered is set, with at and by, by the first qualifying sample
	// since the fault was over; a later heal may take it back.
	recovered bool
	at        time.Time
	by        string
	// rode is set, with rodeAt, by the first qualifying sample while the
	// fault held that shows every workload's desired replicas Ready on
	// clusters the fault does not act on (the takeover).
	rode   bool
	rodeAt time.Time
}

// takeoverKinds are the faults the mesh must ride out: a cluster lost,
// its replicas run elsewhere while it is.
var takeoverKinds = []EventKind{EventKill, EventStop, EventNotReady}

// from is when the fault is over, as far as known.
func (f *measuredFault) from() time.Time {
	if f.healed {
		return f.healAt
	}
	return f.event.At
}

// NewRecovery returns the "replicas Ready again within the stated time"
// invariant, judged with within (no bound when zero: only a fault never
// recovered is then a violation). The takeover while a fault holds does
// not wait for the guarded workloads ("Kind namespace/name"): the
// partition guard keeps them where they may still run.
func NewRecovery(within time.Duration, guarded ...string) RecoveryChecker {
	c := &recovery{within: within, byID: map[int]*measuredFault{}, guarded: map[string]bool{}}
	for _, k := range guarded {
		c.guarded[k] = true
	}
	return c
}

func (c *recovery) Name() string { return "recovery" }
func (c *recovery) Promise() string {
	return fmt.Sprintf("after each fault, every workload's desired replicas are Ready again within %s", c.within)
}

func (c *recovery) Event(e Event) {
	if isFault(e) {
		if _, dup := c.byID[e.ID]; !dup {
			f := &measuredFault{event: e}
			c.faults = append(c.faults, f)
			c.byID[e.ID] = f
		}
		return
	}
	if e.Kind != EventHeal {
		return
	}
	for _, id := range e.Heals {
		healed := c.byID[id]
		if healed == nil || healed.healed {
			continue
		}
		healed.healed, healed.healAt, healed.recovered = true, e.At, false
		// The fault was open until now: no recovery could count while it
		// was.
		for _, f := range c.faults {
			if f.recovered && !f.at.Before(healed.event.At) {
				f.recovered = false
			}
		}
	}
}

func (c *recovery) Observe(s Sample) {
	if !c.eligible(s) {
		return
	}
	for _, f := range c.faults {
		if !f.healed && !f.rode && slices.Contains(takeoverKinds, f.event.Kind) && !s.At.Before(f.event.At) &&
			c.readyOutside(s.Workloads, f.event.Clusters) {
			f.rode, f.rodeAt = true, s.At
		}
	}
	ok, why := c.ready(s.Workloads)
	if !ok {
		c.notReady = fmt.Sprintf("%s at %s: %s", s.Cluster, clock(s.At), why)
		return
	}
	for _, f := range c.faults {
		if !f.recovered && !s.At.Before(f.from()) {
			f.recovered, f.at, f.by = true, s.At, s.Cluster
		}
	}
}

// eligible reports whether s may show the mesh recovered: its peer
// answered, has caught up with a leader and is not the target of a fault
// still open.
func (c *recovery) eligible(s Sample) bool {
	if !s.Up || (s.Status != nil && s.Status.Stale) {
		return false
	}
	for _, f := range c.faults {
		if !f.healed && slices.Contains(f.event.Clusters, s.Cluster) {
			return false
		}
	}
	return true
}

// ready reports whether every workload with replicas has its desired
// replicas bound and Ready, or says which one does not.
func (c *recovery) ready(ws []api.WorkloadView) (bool, string) {
	n := 0
	for _, w := range ws {
		if w.WithoutReplicas {
			continue
		}
		n++
		c.replicas = true
		var bound, ready int32
		for _, p := range w.Placements {
			if p.Evicting {
				continue // kept until replaced, or held on a failed cluster
			}
			if p.Health == "Unknown" {
				return false, fmt.Sprintf("%s shows its placement on %s Unknown", workloadKey(w).Display(), p.Cluster)
			}
			bound += p.Replicas
			ready += min(p.ReadyReplicas, p.Replicas)
		}
		if bound != w.DesiredReplicas || ready != w.DesiredReplicas {
			return false, fmt.Sprintf("%s has %d of %d desired replicas Ready (%d bound)",
				workloadKey(w).Display(), ready, w.DesiredReplicas, bound)
		}
	}
	if n == 0 && c.replicas {
		return false, "no workload with replicas shown"
	}
	return true, ""
}

// readyOutside reports whether every workload with replicas has at least
// its desired replicas Ready on clusters other than lost, none of those
// placements Unknown: the mesh ran it without them.
func (c *recovery) readyOutside(ws []api.WorkloadView, lost []string) bool {
	n := 0
	for _, w := range ws {
		if w.WithoutReplicas {
			continue
		}
		n++
		c.replicas = true
		if c.guarded[workloadKey(w).Display()] {
			continue
		}
		var ready int32
		for _, p := range w.Placements {
			if slices.Contains(lost, p.Cluster) || p.Health == "Unknown" {
				continue
			}
			ready += min(p.ReadyReplicas, p.Replicas)
		}
		if ready < w.DesiredReplicas {
			return false
		}
	}
	return n > 0 || !c.replicas
}

// Recoveries is each fault's recovery in the order the faults began (a
// fault not recovered (yet) has Recovered false), each followed, for a
// fault the mesh must ride out, by its takeover.
func (c *recovery) Recoveries() []Recovery {
	out := make([]Recovery, 0, len(c.faults))
	for _, f := range c.faults {
		r := Recovery{FaultID: f.event.ID, Kind: f.event.Kind, Phase: PhaseHeal, From: f.from(), Recovered: f.recovered}
		if f.recovered {
			r.Took = f.at.Sub(r.From)
		}
		out = append(out, r)
		if slices.Contains(takeoverKinds, f.event.Kind) {
			t := Recovery{FaultID: f.event.ID, Kind: f.event.Kind, Phase: PhaseTakeover, From: f.event.At, Recovered: f.rode}
			if f.rode {
				t.Took = f.rodeAt.Sub(f.event.At)
			}
			out = append(out, t)
		}
	}
	return out
}

func (c *recovery) Finish(fin Final) []Violation {
	observeFinal(c, fin)
	for _, f := range c.faults {
		measured := "its start (never healed)"
		if f.healed {
			measured = "its heal at " + clock(f.healAt)
		}
		switch {
		case !f.recovered:
			why := c.notReady
			if why == "" {
				why = "no eligible peer answered"
			}
			c.add(fin.At, fmt.Sprintf("measured from %s; last not recovered: %s", measured, why),
				"%s never recovered: not every workload's desired replicas Ready again by the end", describe(f.event))
		case c.within > 0 && f.at.Sub(f.from()) > c.within:
			c.add(f.at, fmt.Sprintf("measured from %s; first recovered view: %s at %s", measured, f.by, clock(f.at)),
				"%s took %s to recover, more than %s", describe(f.event), f.at.Sub(f.from()).Round(time.Millisecond), c.within)
		}
	}
	return c.list()
}
