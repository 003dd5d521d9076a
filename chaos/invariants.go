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

// The invariants. Each is a Checker built with its parameters; it keeps
// only the latest state per key (per peer, cluster, object or term), never
// the samples themselves, so that a long run costs no more memory than a
// short one. Every checker implements Counter: it keeps at most
// MaxViolations violations and counts them all.

// CheckParams are the bounds the invariants are judged by.
type CheckParams struct {
	// Recover is how long after a fault is over every workload's desired
	// replicas must be Ready again.
	Recover time.Duration
	// Settle is how long after a heal a cluster still counts as disturbed
	// by the fault it ended.
	Settle time.Duration
	// Autonomy is how long an edge region rides out a flapping uplink with
	// no workload churn.
	Autonomy time.Duration
	// StatusBound is the age past which a status must no longer be shown
	// as Ready.
	StatusBound time.Duration
	// Guarded are the workloads ("Kind namespace/name") guarded against
	// running twice.
	Guarded []string
}

// DefaultCheckers returns every invariant, judged by p, in the order the
// report lists them.
func DefaultCheckers(p CheckParams) []Checker {
	return []Checker{
		NewWritesKept(),
		NewOneLeaderPerTerm(),
		NewRecovery(p.Recover, p.Guarded...),
		NewNoDeleteWhileCutOff(p.Settle, p.Guarded...),
		NewNoEdgeChurn(p.Autonomy),
		NewGuardedOnce(p.Guarded),
		NewNoStaleReady(p.StatusBound),
		NewNoResurrection(),
		NewConverged(),
	}
}

// MaxViolations is how many violations one checker keeps; it counts them
// all (Counter).
const MaxViolations = 100

// Counter is implemented by a checker that keeps at most MaxViolations
// violations: Count is how many it saw in all, kept or not.
type Counter interface {
	Count() int
}

// violations keeps the first MaxViolations violations and counts them all.
type violations struct {
	kept []Violation
	n    int
}

func (v *violations) add(at time.Time, evidence, format string, args ...any) {
	v.n++
	if len(v.kept) < MaxViolations {
		v.kept = append(v.kept, Violation{At: at, Message: fmt.Sprintf(format, args...), Evidence: evidence})
	}
}

// Count is how many violations were seen, kept or not.
func (v *violations) Count() int { return v.n }

func (v *violations) list() []Violation { return slices.Clone(v.kept) }

// isFault reports whether e begins a fault: it has an ID and is neither a
// heal, a write, a delete, a note nor a forged request (which must merely
// be refused).
func isFault(e Event) bool {
	switch e.Kind {
	case EventHeal, EventWrite, EventDelete, EventNote, EventForge, EventAssert:
		return false
	}
	return e.ID > 0
}

// clock prints a moment for evidence.
func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// describe names a fault for evidence: "fault 3 (cut eu-1, us-1)".
func describe(e Event) string {
	on := strings.Join(append(slices.Clone(e.Clusters), e.Regions...), ", ")
	if on == "" {
		return fmt.Sprintf("fault %d (%s at %s)", e.ID, e.Kind, clock(e.At))
	}
	return fmt.Sprintf("fault %d (%s %s at %s)", e.ID, e.Kind, on, clock(e.At))
}

// observeFinal hands c the final samples, as the last ones of the run.
func observeFinal(c Checker, f Final) {
	for _, s := range finalSamples(f) {
		c.Observe(s)
	}
}

// finalSamples are f's samples, each dated f.At if it carries no time.
func finalSamples(f Final) []Sample {
	out := slices.Clone(f.Samples)
	for i := range out {
		if out[i].At.IsZero() {
			out[i].At = f.At
		}
	}
	return out
}

// ownSim is the simulated cluster of the sample's own peer, nil when the
// peer did not answer or the sample holds another cluster's.
func ownSim(s Sample) *api.SimulationView {
	if !s.Up || s.Sim == nil || (s.Sim.Cluster != "" && s.Sim.Cluster != s.Cluster) {
		return nil
	}
	return s.Sim
}

func simKey(o api.SimObjectView) api.ObjectKey {
	return api.ObjectKey{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

func workloadKey(w api.WorkloadView) api.ObjectKey {
	return api.ObjectKey{APIVersion: w.APIVersion, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
}

// harnessNames are the forms the harness's Key of a write or delete may
// take for an object: "namespace/name" for a ConfigMap, and for any kind
// "Kind/namespace/name", "Kind namespace/name" or the full key.
func harnessNames(k api.ObjectKey) []string {
	nsName := k.Name
	if k.Namespace != "" {
		nsName = k.Namespace + "/" + k.Name
	}
	names := []string{k.Kind + "/" + nsName, k.Display(), k.String()}
	if k.Kind == "ConfigMap" {
		names = append(names, nsName)
	}
	return names
}

// regions learns which region each cluster belongs to, from the samples'
// peers and the clusters they list.
type regions map[string]string

func (r regions) learn(s Sample) {
	if s.Cluster != "" && s.Region != "" {
		r[s.Cluster] = s.Region
	}
	for _, c := range s.Clusters {
		if c.Name != "" && c.Region != "" {
			r[c.Name] = c.Region
		}
	}
}

// names reports whether e names cluster, in its Clusters or through its
// region in its Regions.
func (r regions) names(e Event, cluster string) bool {
	if slices.Contains(e.Clusters, cluster) {
		return true
	}
	reg, ok := r[cluster]
	return ok && slices.Contains(e.Regions, reg)
}

// WritesKept promises that no acknowledged write is ever lost. It judges
// at the end: the last acknowledged write or delete of each key is what
// every region must hold in Final.Objects (the value written, or nothing).
type writesKept struct {
	last map[string]Event
	violations
}

// NewWritesKept returns the "no acknowledged write lost" invariant.
func NewWritesKept() Checker { return &writesKept{last: map[string]Event{}} }

func (c *writesKept) Name() string { return "writes-kept" }
func (c *writesKept) Promise() string {
	return "no acknowledged write is ever lost: every region ends with the last acknowledged value of each key, and without each key last deleted"
}

func (c *writesKept) Event(e Event) {
	if (e.Kind == EventWrite || e.Kind == EventDelete) && e.Key != "" {
		c.last[e.Key] = e
	}
}

func (c *writesKept) Observe(Sample) {}

func (c *writesKept) Finish(f Final) []Violation {
	if len(c.last) > 0 && len(f.Objects) == 0 {
		c.add(f.At, "Final.Objects holds no region", "%d acknowledged writes could not be checked: the final state holds no region's objects", len(c.last))
	}
	for _, region := range slices.Sorted(maps.Keys(f.Objects)) {
		objects := f.Objects[region]
		for _, key := range slices.Sorted(maps.Keys(c.last)) {
			e := c.last[key]
			value, held := objects[key]
			ack := fmt.Sprintf("%s of %s acknowledged by %s at %s", e.Kind, key, e.Via, clock(e.At))
			switch {
			case e.Kind == EventDelete && held:
				c.add(f.At, ack+fmt.Sprintf("; region %s ends with value %q", region, value),
					"deleted key %s is present in region %s: expected absent, found %q", key, region, value)
			case e.Kind == EventWrite && !held:
				c.add(f.At, ack+fmt.Sprintf(" (value %q); region %s ends without the key", e.Value, region),
					"write of key %s lost in region %s: expected %q, found absent", key, region, e.Value)
			case e.Kind == EventWrite && value != e.Value:
				c.add(f.At, ack+fmt.Sprintf(" (value %q); region %s ends with %q", e.Value, region, value),
					"write of key %s lost in region %s: expected %q, found %q", key, region, e.Value, value)
			}
		}
	}
	return c.list()
}

// OneLeaderPerTerm promises at most one leader per region per Raft term.
// It judges every sample in which a peer says it is its region's leader:
// two clusters saying so for the same region and term is a violation,
// reported once per region and term.
type oneLeaderPerTerm struct {
	// leaders maps a region and term to the clusters that claimed it and
	// when each first did.
	leaders  map[regionTerm]map[string]time.Time
	reported map[regionTerm]bool
	violations
}

type regionTerm struct {
	region string
	term   uint64
}

// NewOneLeaderPerTerm returns the "at most one leader per region and term"
// invariant.
func NewOneLeaderPerTerm() Checker {
	return &oneLeaderPerTerm{leaders: map[regionTerm]map[string]time.Time{}, reported: map[regionTerm]bool{}}
}

func (c *oneLeaderPerTerm) Name() string { return "one-leader-per-term" }
func (c *oneLeaderPerTerm) Promise() string {
	return "at most one leader per region per Raft term"
}

func (c *oneLeaderPerTerm) Event(Event) {}

func (c *oneLeaderPerTerm) Observe(s Sample) {
	if !s.Up || s.Status == nil || s.Status.State != "Leader" {
		return
	}
	rt := regionTerm{region: cmp.Or(s.Status.Region, s.Region), term: s.Status.Term}
	cluster := cmp.Or(s.Cluster, s.Status.Cluster)
	claims := c.leaders[rt]
	if claims == nil {
		claims = map[string]time.Time{}
		c.leaders[rt] = claims
	}
	if _, ok := claims[cluster]; !ok {
		claims[cluster] = s.At
	}
	if len(claims) < 2 || c.reported[rt] {
		return
	}
	c.reported[rt] = true
	names := slices.Sorted(maps.Keys(claims))
	var ev []string
	for _, n := range names {
		ev = append(ev, fmt.Sprintf("%s said Leader of term %d at %s", n, rt.term, clock(claims[n])))
	}
	c.add(s.At, strings.Join(ev, "; "), "region %s has %d leaders in term %d: %s", rt.region, len(names), rt.term, strings.Join(names, ", "))
}

func (c *oneLeaderPerTerm) Finish(f Final) []Violation {
	observeFinal(c, f)
	return c.list()
}

// NoResurrection promises that no deleted object comes back. After the
// harness deletes a key (and until it writes it again), a peer that showed
// the key since its last write, then showed it gone in a sample begun
// after the delete, and later shows it again is a violation, and so is
// the key in any region's final objects. A peer that never showed the
// key's last write may still receive it before the delete (writes of one
// region travel in order): its absence is no sign it saw the delete.
type noResurrection struct {
	// deleted maps each deleted key to its delete.
	deleted map[string]Event
	// gone maps a peer to the deleted keys it has shown absent.
	gone map[string]map[string]time.Time
	// shown maps a peer to the keys it has shown since their last write.
	shown map[string]map[string]bool
	// ops keeps each key's last few writes and deletes, for evidence.
	ops map[string][]string
	violations
}

// opsKept is how many of a key's writes and deletes evidence recalls.
const opsKept = 4

// NewNoResurrection returns the "no deleted object comes back" invariant.
func NewNoResurrection() Checker {
	return &noResurrection{deleted: map[string]Event{}, gone: map[string]map[string]time.Time{},
		shown: map[string]map[string]bool{}, ops: map[string][]string{}}
}

// history recalls a key's last writes and deletes.
func (c *noResurrection) history(key string) string {
	if len(c.ops[key]) == 0 {
		return ""
	}
	return "; its last writes: " + strings.Join(c.ops[key], ", ")
}

func (c *noResurrection) Name() string { return "no-resurrection" }
func (c *noResurrection) Promise() string {
	return "no deleted object comes back: once a peer shows a deleted key gone, it never shows it again, and no region holds it at the end"
}

func (c *noResurrection) Event(e Event) {
	if e.Kind == EventAttempt && e.Detail != "delete" {
		// A write on its way may show before it is acknowledged: the key
		// is no longer deleted.
		e.Kind = EventWrite
	}
	if e.Key == "" || (e.Kind != EventWrite && e.Kind != EventDelete) {
		return
	}
	op := fmt.Sprintf("%s %q via %s at %s", e.Kind, e.Value, e.Via, clock(e.At))
	if e.Via == "" {
		op = fmt.Sprintf("%s %q sent at %s", e.Kind, e.Value, clock(e.At))
	}
	if e.Kind == EventDelete {
		op = fmt.Sprintf("delete via %s at %s", e.Via, clock(e.At))
	}
	if h := append(c.ops[e.Key], op); len(h) > opsKept {
		c.ops[e.Key] = h[len(h)-opsKept:]
	} else {
		c.ops[e.Key] = h
	}
	if e.Kind == EventDelete {
		c.deleted[e.Key] = e
	} else {
		delete(c.deleted, e.Key)
	}
	for _, keys := range c.gone {
		delete(keys, e.Key)
	}
	if e.Kind == EventWrite {
		for _, keys := range c.shown {
			delete(keys, e.Key)
		}
	}
}

func (c *noResurrection) Observe(s Sample) {
	if !s.Up {
		return
	}
	present := map[string]bool{}
	for _, w := range s.Workloads {
		for _, n := range harnessNames(workloadKey(w)) {
			present[n] = true
		}
	}
	shown := c.shown[s.Cluster]
	if shown == nil {
		shown = map[string]bool{}
		c.shown[s.Cluster] = shown
	}
	for key := range present {
		shown[key] = true
	}
	gone := c.gone[s.Cluster]
	if gone == nil {
		gone = map[string]time.Time{}
		c.gone[s.Cluster] = gone
	}
	for key, d := range c.deleted {
		since, wasGone := gone[key]
		switch {
		case !present[key] && !wasGone && shown[key] && !s.At.Before(d.At):
			gone[key] = s.At
		case present[key] && wasGone:
			delete(gone, key)
			c.add(s.At, fmt.Sprintf("delete of %s acknowledged by %s at %s; %s showed it gone at %s and again at %s%s",
				key, d.Via, clock(d.At), s.Cluster, clock(since), clock(s.At), c.history(key)),
				"deleted key %s came back on peer %s", key, s.Cluster)
		}
	}
}

func (c *noResurrection) Finish(f Final) []Violation {
	observeFinal(c, f)
	for _, region := range slices.Sorted(maps.Keys(f.Objects)) {
		for _, key := range slices.Sorted(maps.Keys(c.deleted)) {
			if v, held := f.Objects[region][key]; held {
				d := c.deleted[key]
				c.add(f.At, fmt.Sprintf("delete of %s acknowledged by %s at %s, not written since; region %s ends with value %q%s",
					key, d.Via, clock(d.At), region, v, c.history(key)),
					"deleted key %s is back in region %s", key, region)
			}
		}
	}
	return c.list()
}
