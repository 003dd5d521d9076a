package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// NoEdgeChurn promises that an edge region whose uplink flaps has no
// workload churn while its autonomy period holds. From a flap of an edge
// uplink until its heal, or until autonomy after it began if that comes
// first, the edge clusters' simulated clusters must keep every object
// with replicas (same UID, same replica count, none started), and no
// peer's view may change the replicas it places on those clusters or
// show a placement there evicting. Each change is a violation.
//
// The baselines are the latest state known when the flap began: the
// checker keeps the latest simulated objects with replicas of every
// cluster, and each peer's latest placements on the clusters known to be
// edge (a view marks them Edge); for a flap of clusters not known to be
// edge, a peer's first view within the window is its baseline.
type noEdgeChurn struct {
	autonomy time.Duration
	regions  regions
	// edge are the clusters any view marked Edge or any edge flap named.
	edge map[string]bool
	// sims is each cluster's latest objects with replicas.
	sims map[string]map[api.ObjectKey]simReplicas
	// places is each peer's latest placements on edge clusters.
	places  map[string]map[placeKey]placeState
	windows []*edgeWindow
	violations
}

type simReplicas struct {
	uid      string
	replicas int32
	at       time.Time
}

type placeKey struct {
	workload api.ObjectKey
	cluster  string
}

type placeState struct {
	replicas int32
	evicting bool
	at       time.Time
}

// edgeWindow is one flap's autonomy period and what must not change in
// it.
type edgeWindow struct {
	fault    Event
	end      time.Time
	clusters map[string]bool
	sims     map[string]map[api.ObjectKey]simReplicas
	places   map[string]map[placeKey]placeState
}

// NewNoEdgeChurn returns the "no churn while an edge link flaps"
// invariant; autonomy is how long an edge region rides out its uplink's
// flapping.
func NewNoEdgeChurn(autonomy time.Duration) Checker {
	return &noEdgeChurn{autonomy: autonomy, regions: regions{}, edge: map[string]bool{},
		sims: map[string]map[api.ObjectKey]simReplicas{}, places: map[string]map[placeKey]placeState{}}
}

func (c *noEdgeChurn) Name() string { return "no-edge-churn" }
func (c *noEdgeChurn) Promise() string {
	return fmt.Sprintf("an edge region whose uplink flaps has no workload churn for %s (its autonomy period) or until healed", c.autonomy)
}

func (c *noEdgeChurn) Event(e Event) {
	switch {
	case e.Kind == EventFlap && e.Edge && e.ID > 0:
		w := &edgeWindow{fault: e, end: e.At.Add(c.autonomy), clusters: map[string]bool{},
			sims: map[string]map[api.ObjectKey]simReplicas{}, places: map[string]map[placeKey]placeState{}}
		known := true
		for _, cl := range e.Clusters {
			w.clusters[cl] = true
		}
		for cl, reg := range c.regions {
			if slices.Contains(e.Regions, reg) {
				w.clusters[cl] = true
			}
		}
		for cl := range w.clusters {
			known = known && c.edge[cl]
			if s, ok := c.sims[cl]; ok {
				w.sims[cl] = maps.Clone(s)
			}
		}
		if known {
			for peer, ps := range c.places {
				w.places[peer] = maps.Clone(ps)
				maps.DeleteFunc(w.places[peer], func(k placeKey, _ placeState) bool { return !w.clusters[k.cluster] })
			}
		}
		for cl := range w.clusters {
			c.edge[cl] = true
		}
		c.windows = append(c.windows, w)
	case e.Kind == EventHeal:
		for _, w := range c.windows {
			if slices.Contains(e.Heals, w.fault.ID) && e.At.Before(w.end) {
				w.end = e.At
			}
		}
	}
}

func (c *noEdgeChurn) Observe(s Sample) {
	c.regions.learn(s)
	for _, cv := range s.Clusters {
		if cv.Edge {
			c.edge[cv.Name] = true
		}
	}
	c.windows = slices.DeleteFunc(c.windows, func(w *edgeWindow) bool { return w.end.Before(s.At) })
	sim := ownSim(s)
	var simNow map[api.ObjectKey]simReplicas
	if sim != nil {
		simNow = simReplicasOf(sim, s.At)
	}
	for _, w := range c.windows {
		if s.At.Before(w.fault.At) || !s.Up {
			continue
		}
		if simNow != nil && w.clusters[s.Cluster] {
			if base, ok := w.sims[s.Cluster]; ok {
				c.compareSims(w, s, base, simNow)
			}
			w.sims[s.Cluster] = simNow
		}
		now := placementsOn(s, func(cl string) bool { return w.clusters[cl] })
		if base, ok := w.places[s.Cluster]; ok {
			c.comparePlaces(w, s, base, now)
		}
		w.places[s.Cluster] = now
	}
	if simNow != nil {
		c.sims[s.Cluster] = simNow
	}
	if s.Up {
		c.places[s.Cluster] = placementsOn(s, func(cl string) bool { return c.edge[cl] })
	}
}

func simReplicasOf(sim *api.SimulationView, at time.Time) map[api.ObjectKey]simReplicas {
	out := map[api.ObjectKey]simReplicas{}
	for _, o := range sim.Objects {
		if o.Replicas != nil {
			out[simKey(o)] = simReplicas{uid: o.UID, replicas: *o.Replicas, at: at}
		}
	}
	return out
}

func placementsOn(s Sample, on func(cluster string) bool) map[placeKey]placeState {
	out := map[placeKey]placeState{}
	for _, w := range s.Workloads {
		for _, p := range w.Placements {
			if !on(p.Cluster) {
				continue
			}
			k := placeKey{workload: workloadKey(w), cluster: p.Cluster}
			st := out[k]
			st.replicas += p.Replicas
			st.evicting = st.evicting || p.Evicting
			st.at = s.At
			out[k] = st
		}
	}
	return out
}

// during says, for evidence, which flap a change fell in.
func (w *edgeWindow) during() string {
	return fmt.Sprintf("during %s, autonomy until %s", describe(w.fault), clock(w.end))
}

func (c *noEdgeChurn) compareSims(w *edgeWindow, s Sample, base, now map[api.ObjectKey]simReplicas) {
	for _, k := range sortedKeys(base, now) {
		b, was := base[k]
		n, is := now[k]
		var what string
		switch {
		case was && !is:
			what = fmt.Sprintf("removed (had uid %s, %d replicas at %s)", b.uid, b.replicas, clock(b.at))
		case !was && is:
			what = fmt.Sprintf("started (uid %s, %d replicas)", n.uid, n.replicas)
		case b.uid != n.uid:
			what = fmt.Sprintf("recreated (uid %s at %s, then %s)", b.uid, clock(b.at), n.uid)
		case b.replicas != n.replicas:
			what = fmt.Sprintf("scaled from %d replicas (at %s) to %d", b.replicas, clock(b.at), n.replicas)
		default:
			continue
		}
		c.add(s.At, fmt.Sprintf("%s's simulated cluster at %s: %s %s; %s", s.Cluster, clock(s.At), k.Display(), what, w.during()),
			"edge cluster %s churned while its uplink flapped: %s %s", s.Cluster, k.Display(), what)
	}
}

func (c *noEdgeChurn) comparePlaces(w *edgeWindow, s Sample, base, now map[placeKey]placeState) {
	keys := slices.Collect(maps.Keys(base))
	for k := range now {
		if _, ok := base[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b placeKey) int {
		return cmp.Or(cmp.Compare(a.workload.String(), b.workload.String()), cmp.Compare(a.cluster, b.cluster))
	})
	for _, k := range keys {
		b, was := base[k]
		n, is := now[k]
		var what string
		switch {
		case was && !is:
			what = fmt.Sprintf("is no longer placed there (had %d replicas at %s)", b.replicas, clock(b.at))
		case !was && is:
			what = fmt.Sprintf("is newly placed there with %d replicas", n.replicas)
		case b.replicas != n.replicas:
			what = fmt.Sprintf("changed from %d replicas (at %s) to %d", b.replicas, clock(b.at), n.replicas)
		case n.evicting && !b.evicting:
			what = "became evicting"
		default:
			continue
		}
		c.add(s.At, fmt.Sprintf("%s's view at %s: %s on %s %s; %s", s.Cluster, clock(s.At), k.workload.Display(), k.cluster, what, w.during()),
			"placement of %s on edge cluster %s churned while its uplink flapped, as %s shows it: %s", k.workload.Display(), k.cluster, s.Cluster, what)
	}
}

// sortedKeys is the union of a's and b's keys in key order.
func sortedKeys[V any](a, b map[api.ObjectKey]V) []api.ObjectKey {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y api.ObjectKey) int { return cmp.Compare(x.String(), y.String()) })
	return keys
}

func (c *noEdgeChurn) Finish(f Final) []Violation {
	observeFinal(c, f)
	return c.list()
}
