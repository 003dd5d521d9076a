package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// The invariants judged on what the simulated clusters hold: the truth of
// what runs, whatever any peer believes.

// NoDeleteWhileCutOff promises that nothing is deleted from a cluster
// merely because it was unreachable or its peer restarted. It follows the
// objects each cluster's simulated cluster holds (from its own peer's
// samples). A cluster is disturbed from a fault that names it in Clusters
// (its peer killed, stopped, restarted, cut from its region, flapping, or
// the cluster NotReady) until settle after the heal that ends it. A fault
// between regions names regions only: the region's leader still reaches
// its clusters, and what it decides for them meanwhile (a new split of
// the work, a guarded workload fenced) is not a cluster cut off. An object gone
// from a cluster that was disturbed at any moment since the object was
// last seen, or back with another UID, is a violation unless the harness
// deleted it in between; an object whose UID changes with no harness
// delete in between is a violation ("recreated") whether or not the
// cluster was disturbed.
type noDeleteWhileCutOff struct {
	settle  time.Duration
	regions regions
	guarded map[string]bool
	// open are the faults begun and not healed.
	open map[int]Event
	// settling is, per cluster, the disturbance that ends last among
	// those healed.
	settling map[string]settling
	// deletes is each harness delete's latest time, by its Key.
	deletes map[string]time.Time
	// held is, per cluster, what its simulated cluster held when last
	// seen.
	held map[string]map[api.ObjectKey]heldObject
	violations
}

type settling struct {
	fault  Event
	healAt time.Time
	until  time.Time
}

type heldObject struct {
	uid  string
	seen time.Time
}

// NewNoDeleteWhileCutOff returns the "nothing deleted because cut off or
// restarted" invariant; settle is how long after its heal a fault still
// disturbs a cluster.
// Guarded workloads ("Kind namespace/name") are left to GuardedOnce: the
// partition guard stops them on purpose (a region without a majority, a
// region taken over coming back).
func NewNoDeleteWhileCutOff(settle time.Duration, guarded ...string) Checker {
	c := &noDeleteWhileCutOff{settle: settle, regions: regions{}, open: map[int]Event{}, guarded: map[string]bool{},
		settling: map[string]settling{}, deletes: map[string]time.Time{}, held: map[string]map[api.ObjectKey]heldObject{}}
	for _, k := range guarded {
		c.guarded[k] = true
	}
	return c
}

func (c *noDeleteWhileCutOff) Name() string { return "no-delete-while-cut-off" }
func (c *noDeleteWhileCutOff) Promise() string {
	return "nothing is deleted from a cluster merely because it was unreachable or its peer restarted, and nothing is recreated behind the harness's back"
}

// disturbs reports whether fault e disturbs cluster.
func (c *noDeleteWhileCutOff) disturbs(e Event, cluster string) bool {
	switch e.Kind {
	case EventKill, EventStop, EventRestart, EventCut, EventFlap, EventNotReady:
		return slices.Contains(e.Clusters, cluster)
	}
	return false
}

func (c *noDeleteWhileCutOff) Event(e Event) {
	switch {
	case isFault(e):
		c.open[e.ID] = e
	case e.Kind == EventDelete && e.Key != "":
		c.deletes[e.Key] = e.At
	case e.Kind == EventHeal:
		for _, id := range e.Heals {
			f, ok := c.open[id]
			if !ok {
				continue
			}
			delete(c.open, id)
			for _, cluster := range c.named(f) {
				if s := c.settling[cluster]; e.At.Add(c.settle).After(s.until) {
					c.settling[cluster] = settling{fault: f, healAt: e.At, until: e.At.Add(c.settle)}
				}
			}
		}
	}
}

// named are the clusters fault f disturbs, of those known.
func (c *noDeleteWhileCutOff) named(f Event) []string {
	out := slices.Clone(f.Clusters)
	for cluster := range c.regions {
		if !slices.Contains(out, cluster) && c.disturbs(f, cluster) {
			out = append(out, cluster)
		}
	}
	return slices.DeleteFunc(out, func(cluster string) bool { return !c.disturbs(f, cluster) })
}

// disturbedSince says which fault disturbed cluster at some moment since
// since, or "" when none did.
func (c *noDeleteWhileCutOff) disturbedSince(cluster string, since time.Time) string {
	for _, id := range slices.Sorted(maps.Keys(c.open)) {
		if f := c.open[id]; c.disturbs(f, cluster) {
			return describe(f) + ", still open"
		}
	}
	if s, ok := c.settling[cluster]; ok && !s.until.Before(since) {
		return fmt.Sprintf("%s, healed at %s, settling until %s", describe(s.fault), clock(s.healAt), clock(s.until))
	}
	return ""
}

// deletedSince reports whether the harness deleted k at or after t.
func (c *noDeleteWhileCutOff) deletedSince(k api.ObjectKey, t time.Time) bool {
	for _, n := range harnessNames(k) {
		if d, ok := c.deletes[n]; ok && !d.Before(t) {
			return true
		}
	}
	return false
}

func (c *noDeleteWhileCutOff) Observe(s Sample) {
	c.regions.learn(s)
	sim := ownSim(s)
	if sim == nil {
		return
	}
	held := c.held[s.Cluster]
	if held == nil {
		held = map[api.ObjectKey]heldObject{}
		c.held[s.Cluster] = held
	}
	present := make(map[api.ObjectKey]bool, len(sim.Objects))
	for _, o := range sim.Objects {
		k := simKey(o)
		if c.guarded[k.Display()] {
			continue
		}
		present[k] = true
		h, ok := held[k]
		if ok && h.uid != o.UID && !c.deletedSince(k, h.seen) {
			ev := fmt.Sprintf("%s held it with uid %s at %s, with uid %s at %s; no harness delete of it in between",
				s.Cluster, h.uid, clock(h.seen), o.UID, clock(s.At))
			if why := c.disturbedSince(s.Cluster, h.seen); why != "" {
				ev += "; disturbed by " + why
			}
			c.add(s.At, ev, "%s was recreated on %s (uid %s, then %s)", k.Display(), s.Cluster, h.uid, o.UID)
		}
		held[k] = heldObject{uid: o.UID, seen: s.At}
	}
	var gone []api.ObjectKey
	for k := range held {
		if !present[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b api.ObjectKey) int { return cmp.Compare(a.String(), b.String()) })
	for _, k := range gone {
		h := held[k]
		delete(held, k)
		if c.deletedSince(k, h.seen) {
			continue
		}
		if why := c.disturbedSince(s.Cluster, h.seen); why != "" {
			c.add(s.At, fmt.Sprintf("%s held it (uid %s) at %s and no longer at %s; no harness delete of it since; disturbed by %s",
				s.Cluster, h.uid, clock(h.seen), clock(s.At), why),
				"%s was deleted from %s while the cluster was disturbed", k.Display(), s.Cluster)
		}
	}
}

func (c *noDeleteWhileCutOff) Finish(f Final) []Violation {
	observeFinal(c, f)
	return c.list()
}

// GuardedOnce promises that a workload guarded against running twice
// never has two active copies. It keeps, per cluster, the active replicas
// of each guarded workload in the latest view of that cluster's simulated
// cluster (a peer that does not answer keeps its last count: its cluster
// runs on), and the desired replicas from the peers' views (the largest
// any peer currently shows). More active replicas in all than desired is a
// violation, reported when the excess begins or changes.
type guardedOnce struct {
	keys map[string]bool
	// active maps a guarded key to each cluster's active replicas.
	active map[string]map[string]int32
	// desired maps a guarded key to each peer's view of its desired
	// replicas.
	desired map[string]map[string]int32
	// excess is the excess last reported per key.
	excess map[string]string
	violations
}

// NewGuardedOnce returns the "a guarded workload never runs twice"
// invariant for the workloads keys ("Kind namespace/name").
func NewGuardedOnce(keys []string) Checker {
	c := &guardedOnce{keys: map[string]bool{}, active: map[string]map[string]int32{},
		desired: map[string]map[string]int32{}, excess: map[string]string{}}
	for _, k := range keys {
		c.keys[k] = true
		c.active[k] = map[string]int32{}
		c.desired[k] = map[string]int32{}
	}
	return c
}

func (c *guardedOnce) Name() string { return "guarded-once" }
func (c *guardedOnce) Promise() string {
	return "a workload guarded against running twice never has more active replicas, over all clusters, than it desires"
}

func (c *guardedOnce) Event(Event) {}

func (c *guardedOnce) Observe(s Sample) {
	if !s.Up || len(c.keys) == 0 {
		return
	}
	for _, w := range s.Workloads {
		if k := workloadKey(w).Display(); c.keys[k] {
			d := w.DesiredReplicas
			if w.WithoutReplicas {
				d = 1
			}
			c.desired[k][s.Cluster] = d
		}
	}
	if sim := ownSim(s); sim != nil {
		for k := range c.keys {
			delete(c.active[k], s.Cluster)
		}
		for _, o := range sim.Objects {
			k := simKey(o).Display()
			if !c.keys[k] {
				continue
			}
			n := int32(1) // an object without replicas is one copy
			switch {
			case o.Ready != nil:
				n = *o.Ready
			case o.Replicas != nil:
				n = *o.Replicas
			}
			if n > 0 {
				c.active[k][s.Cluster] += n
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.keys)) {
		c.check(s, k)
	}
}

func (c *guardedOnce) check(s Sample, k string) {
	if len(c.desired[k]) == 0 {
		return // not yet seen in any view
	}
	var desired int32
	var by string
	for _, peer := range slices.Sorted(maps.Keys(c.desired[k])) {
		if d := c.desired[k][peer]; by == "" || d > desired {
			desired, by = d, peer
		}
	}
	var sum int32
	var runs []string
	for _, cluster := range slices.Sorted(maps.Keys(c.active[k])) {
		n := c.active[k][cluster]
		sum += n
		runs = append(runs, fmt.Sprintf("%s %d", cluster, n))
	}
	if sum <= desired {
		delete(c.excess, k)
		return
	}
	sig := strings.Join(runs, ", ")
	if c.excess[k] == sig {
		return
	}
	c.excess[k] = sig
	c.add(s.At, fmt.Sprintf("active replicas by cluster (latest view of each simulated cluster, as of %s): %s; desired %d as %s shows it",
		clock(s.At), sig, desired, by),
		"guarded workload %s runs %d active replicas, more than the %d desired: %s", k, sum, desired, sig)
}

func (c *guardedOnce) Finish(f Final) []Violation {
	observeFinal(c, f)
	return c.list()
}

// Converged promises that after the last heal every region converges to
// the same object versions and every cluster runs exactly its bound
// replicas. It judges only the Final state: every region's digest must be
// the same, and in each answering peer's last sample its own simulated
// cluster must run, for each workload with replicas, the replicas that
// peer's view binds to it (non-evicting placements), and no replicas of a
// workload not bound to it.
type converged struct {
	violations
}

// NewConverged returns the "converged after the last heal" invariant.
func NewConverged() Checker { return &converged{} }

func (c *converged) Name() string { return "converged" }
func (c *converged) Promise() string {
	return "after the last heal every region holds the same object versions and every cluster runs exactly the replicas bound to it"
}

func (c *converged) Event(Event)    {}
func (c *converged) Observe(Sample) {}

func (c *converged) Finish(f Final) []Violation {
	regs := slices.Sorted(maps.Keys(f.Digests))
	for _, r := range regs {
		if f.Digests[r] != f.Digests[regs[0]] {
			var ds []string
			for _, r := range regs {
				ds = append(ds, fmt.Sprintf("%s=%s", r, f.Digests[r]))
			}
			c.add(f.At, "digests: "+strings.Join(ds, ", "), "regions did not converge: their digests differ (%s)", strings.Join(regs, ", "))
			break
		}
	}
	for _, s := range finalSamples(f) {
		if sim := ownSim(s); sim != nil {
			c.replicas(s, sim)
		}
	}
	return c.list()
}

// replicas compares what s's own cluster runs with what s's view binds to
// it.
func (c *converged) replicas(s Sample, sim *api.SimulationView) {
	type binding struct {
		replicas int32
		evicting bool
		bound    bool
	}
	bindings := map[api.ObjectKey]*binding{}
	without := map[api.ObjectKey]bool{}
	var keys []api.ObjectKey
	for _, w := range s.Workloads {
		k := workloadKey(w)
		if w.WithoutReplicas {
			without[k] = true
			continue
		}
		for _, p := range w.Placements {
			if p.Cluster != s.Cluster {
				continue
			}
			b := bindings[k]
			if b == nil {
				b = &binding{}
				bindings[k] = b
				keys = append(keys, k)
			}
			if p.Evicting {
				b.evicting = true
			} else {
				b.bound = true
				b.replicas += p.Replicas
			}
		}
	}
	runs := map[api.ObjectKey]api.SimObjectView{}
	for _, o := range sim.Objects {
		runs[simKey(o)] = o
	}
	for _, k := range keys {
		b := bindings[k]
		if !b.bound {
			continue
		}
		o, ok := runs[k]
		switch {
		case !ok && b.replicas > 0:
			c.add(s.At, fmt.Sprintf("%s's view at %s binds %d replicas of it to %s; its simulated cluster does not hold it", s.Cluster, clock(s.At), b.replicas, s.Cluster),
				"%s does not run %s: expected %d replicas, found none", s.Cluster, k.Display(), b.replicas)
		case ok && (o.Replicas == nil || *o.Replicas != b.replicas):
			found := "no replica count"
			if o.Replicas != nil {
				found = fmt.Sprintf("%d", *o.Replicas)
			}
			c.add(s.At, fmt.Sprintf("%s's view at %s binds %d replicas of it to %s; its simulated cluster runs %s (uid %s)", s.Cluster, clock(s.At), b.replicas, s.Cluster, found, o.UID),
				"%s runs %s replicas of %s, expected %d", s.Cluster, found, k.Display(), b.replicas)
		}
	}
	for _, o := range sim.Objects {
		k := simKey(o)
		if o.Replicas == nil || *o.Replicas == 0 || without[k] {
			continue
		}
		if b := bindings[k]; b != nil && b.bound {
			continue
		}
		why := "no placement of it on " + s.Cluster
		if b := bindings[k]; b != nil && b.evicting {
			why = "only an evicting placement of it on " + s.Cluster + " (kept until replaced)"
		}
		c.add(s.At, fmt.Sprintf("%s's simulated cluster runs %d replicas of it (uid %s); %s's view at %s shows %s", s.Cluster, *o.Replicas, o.UID, s.Cluster, clock(s.At), why),
			"%s runs replicas of %s not bound to it", s.Cluster, k.Display())
	}
}
