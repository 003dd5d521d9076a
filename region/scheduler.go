package region

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/shoalmesh/shoal/api"
)

// The scheduler is a pure function: Schedule(workload, clusters, now) gives
// the replicas per cluster with Karmada's semantics. It reads no clock, no map
// order and not the order of its cluster list, so every region leader that
// runs it on the same inputs gets the same answer.
//
// A run goes, for each clusterAffinity term tried:
//
//  1. filter (scheduler.go): clusterAffinity (or the term's own affinity and,
//     for a workload, its overflowAffinities, each cluster tagged with the
//     tier it first matches), taint tolerations, presence of the fields the
//     spread constraints group by;
//  2. select (spread.go): spreadConstraints pick groups and clusters;
//  3. divide (divide.go, overflow.go): replicaScheduling assigns replicas to
//     the selected clusters, tier after tier when the term has
//     overflowAffinities, keeping the previous assignment where the
//     strategy allows.

// ClusterInfo is what the scheduler knows of one cluster.
type ClusterInfo struct {
	api.ClusterFacts
	Taints []api.Taint
	// Available is what the cluster can still run (nil: unknown, taken as
	// unlimited). Replicas this workload already has there (per
	// Workload.Previous) are not included in Available; the scheduler adds
	// them back where it needs the cluster's whole room for the workload.
	Available *api.Resources
	// Autonomy is how long the cluster may be unreachable before its
	// workloads move (an edge cluster's autonomy period; 0: the region's
	// default tolerations). The leader applies it before scheduling.
	Autonomy time.Duration
}

// Target is the number of replicas one cluster runs.
type Target struct {
	Cluster  string
	Replicas int32
}

// Workload is one resource template to place, with its defaulted placement
// and its previous placement.
type Workload struct {
	Key api.ObjectKey
	// UID stands for the uid of the resource template, which Karmada's
	// division uses to break ties between equal clusters: by name
	// ascending or descending as its hash is even or odd (empty:
	// ascending). Shoal sets it to WorkloadUID(Key).
	UID string
	// HasReplicas is false for kinds propagated whole (ConfigMap, Service,
	// ...): every selected cluster gets it, with Replicas 0 in the targets.
	HasReplicas bool
	Replicas    int32
	PerReplica  api.Resources
	// Placement is the defaulted placement of the matching policy.
	Placement api.Placement
	// Previous is the last binding's targets (nil: first schedule).
	Previous []Target
	// PreviousAffinityTerm names the clusterAffinities term used last time.
	PreviousAffinityTerm string
}

// workloadUIDSpace is the namespace of the UUIDs WorkloadUID makes. It
// must never change: that would flip the ties of half the workloads.
var workloadUIDSpace = uuid.MustParse("7586f2ae-6f91-482d-9171-7ee015a34cad")

// WorkloadUID gives the UID of a workload: a name-based (version 5) UUID of
// its key. Karmada uses the template's Kubernetes uid, which Shoal's
// templates do not have, and no identity the region state replicates is
// fixed from the key alone (an object's created time or first version
// depends on which region wrote it first), whereas every region of the mesh
// must divide the same way. Unlike a Kubernetes uid it survives deleting
// and re-creating the object, which keeps the same ties.
func WorkloadUID(key api.ObjectKey) string {
	return uuid.NewSHA1(workloadUIDSpace, []byte(key.String())).String()
}

// Diagnosis says why a cluster was filtered out.
type Diagnosis struct {
	Cluster string
	Reason  string
}

// Result is the scheduler's decision for one workload.
type Result struct {
	// Targets are sorted by cluster name. For a workload with replicas
	// there is no entry with 0 replicas, except when the workload wants 0
	// replicas: then every selected cluster is listed with 0, so that the
	// placement (and the scaled-to-zero object) is kept, as Karmada does.
	// For a workload without replicas every selected cluster is listed
	// with 0.
	Targets []Target
	// AffinityTerm is the clusterAffinities term used; "" when the
	// placement has clusterAffinity or no affinity, or when unschedulable.
	AffinityTerm string
	// Unschedulable is true when no placement satisfies the policy; the
	// caller keeps the previous binding then. Targets is nil.
	Unschedulable bool
	// Reason is a human summary: "3/3 clusters feasible", or what failed.
	Reason string
	// Filtered lists the clusters the filters removed, by name (for
	// clusterAffinities, those of the last term tried).
	Filtered []Diagnosis
}

// Schedule places a workload on clusters. It never panics and never
// mutates its arguments. now decides whether NoExecute tolerationSeconds
// have run out.
//
// With clusterAffinities the terms are tried in order starting from
// PreviousAffinityTerm when it still exists (Karmada starts from the
// observed term and does not go back to earlier ones), moving to the next
// term when one gives no feasible placement. A term's overflowAffinities
// belong to the term: they are tiers inside it (overflow.go), not further
// terms, and the term's name is what Result.AffinityTerm records.
func Schedule(w Workload, clusters []ClusterInfo, now time.Time) Result {
	in := newSchedRun(w, clusters, now)
	terms := w.Placement.ClusterAffinities
	if len(terms) == 0 {
		return in.scheduleTerm(termAffinity{tiers: []*api.ClusterAffinity{w.Placement.ClusterAffinity}})
	}
	start := 0
	for i, t := range terms {
		if w.PreviousAffinityTerm != "" && t.AffinityName == w.PreviousAffinityTerm {
			start = i
			break
		}
	}
	var fails []string
	var last Result
	for i := start; i < len(terms); i++ {
		r := in.scheduleTerm(affinityOfTerm(&terms[i]))
		if !r.Unschedulable {
			r.AffinityTerm = terms[i].AffinityName
			return r
		}
		fails = append(fails, fmt.Sprintf("term %q: %s", terms[i].AffinityName, r.Reason))
		last = r
	}
	last.Reason = "no clusterAffinities term is feasible: " + strings.Join(fails, "; ")
	return last
}

// candidateBuf holds a scheduling pass's candidates: Schedule runs for
// every workload of a region on every change, and a fresh slab of a
// hundred clusters each time is most of what the garbage collector would
// otherwise chase. Nothing of it outlives scheduleTerm (results are
// values).
type candidateBuf struct {
	slab     []schedCandidate
	feasible []*schedCandidate
}

var candidatePool = sync.Pool{New: func() any { return new(candidateBuf) }}

// take gives the slab and the feasible list, empty, with room for n.
func (b *candidateBuf) take(n int) ([]schedCandidate, []*schedCandidate) {
	if cap(b.slab) < n {
		b.slab, b.feasible = make([]schedCandidate, 0, n), make([]*schedCandidate, 0, n)
	}
	return b.slab[:0], b.feasible[:0]
}

// release clears what the pass put in and returns the buffer to the pool.
func (b *candidateBuf) release() {
	clear(b.slab[:cap(b.slab)])
	clear(b.feasible[:cap(b.feasible)])
	candidatePool.Put(b)
}

// schedCandidate is a cluster that passed the filters, with what selection and
// division need to know of it.
type schedCandidate struct {
	ClusterInfo
	// prev is the replicas the workload had there (0 if none).
	prev int32
	// free is how many more replicas fit in Available; unlimited
	// (math.MaxInt32) when unknown.
	free    int64
	unknown bool
	// prefer counts untolerated PreferNoSchedule taints: they only lower
	// the cluster's rank.
	prefer int
	// tier is Karmada's OverflowOrder: 0 for the term's own affinity (and
	// for every cluster without overflowAffinities), i for the term's i-th
	// overflowAffinities entry that the cluster matches first.
	tier int
}

// room is the replicas of this workload the cluster could hold in all: its
// free room plus what the workload already runs there.
func (c *schedCandidate) room() int64 {
	if c.unknown {
		return unlimitedReplicas
	}
	return c.free + int64(c.prev)
}

// rankCompare orders clusters by preference for selection: earlier
// overflow tiers first (Karmada sorts by OverflowOrder before the score),
// then clusters that already run the workload (stickiness, Karmada's
// ClusterLocality score), then fewer untolerated PreferNoSchedule taints,
// then more room, then name.
func rankCompare(a, b *schedCandidate) int {
	if c := cmp.Compare(a.tier, b.tier); c != 0 {
		return c
	}
	if c := cmp.Compare(boolRank(b.prev > 0), boolRank(a.prev > 0)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.prefer, b.prefer); c != 0 {
		return c
	}
	if c := cmp.Compare(b.room(), a.room()); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// schedRun is the part of a run shared by every affinity term.
type schedRun struct {
	w        Workload
	replicas int32
	clusters []ClusterInfo // sorted by name
	dup      map[string]bool
	prev     map[string]int32 // summed Previous replicas by cluster
	inPrev   map[string]bool  // clusters listed in Previous, even with 0
	now      time.Time
	keyBuf   []string // for spreadGroup.keys
}

func newSchedRun(w Workload, clusters []ClusterInfo, now time.Time) *schedRun {
	byName := func(a, b ClusterInfo) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(clusters, byName) {
		// Sorted here, on a copy; the leader's list comes sorted and is
		// only read.
		clusters = slices.Clone(clusters)
		slices.SortFunc(clusters, byName)
	}
	in := &schedRun{
		w:        w,
		replicas: max(w.Replicas, 0),
		clusters: clusters,
		dup:      map[string]bool{},
		prev:     map[string]int32{},
		inPrev:   map[string]bool{},
		now:      now,
		keyBuf:   keyBuf(),
	}
	if !w.HasReplicas {
		in.replicas = 0
	}
	for i := 1; i < len(in.clusters); i++ {
		if in.clusters[i].Name == in.clusters[i-1].Name {
			in.dup[in.clusters[i].Name] = true
		}
	}
	for _, t := range w.Previous {
		in.inPrev[t.Cluster] = true
		if t.Replicas > 0 {
			in.prev[t.Cluster] = int32(min(int64(in.prev[t.Cluster])+int64(t.Replicas), maxReplicas))
		}
	}
	return in
}

// workload is Karmada's ResourceBindingSpec.IsWorkload for a template with
// one pod template: it has replicas to place, or its replicas request
// resources. Only a workload may use a term's overflowAffinities.
func (in *schedRun) workload() bool {
	per := in.w.PerReplica
	return in.w.HasReplicas && (in.replicas > 0 || per.CPUMilli > 0 || per.MemoryBytes > 0)
}

// scheduleTerm runs filter, select and divide for one cluster affinity.
func (in *schedRun) scheduleTerm(ta termAffinity) Result {
	p := in.w.Placement
	st, err := strategyOf(in.w)
	if err != nil {
		return Result{Unschedulable: true, Reason: err.Error()}
	}
	spreads, err := parseSpread(p.SpreadConstraints)
	if err != nil {
		return Result{Unschedulable: true, Reason: err.Error()}
	}
	buf := candidatePool.Get().(*candidateBuf)
	defer buf.release()
	slab, feasible := buf.take(len(in.clusters))
	var filtered []Diagnosis
	for _, c := range in.clusters {
		tier, reason := in.filter(c, ta, spreads)
		if reason != "" {
			filtered = append(filtered, Diagnosis{Cluster: c.Name, Reason: reason})
			continue
		}
		slab = append(slab, in.newCandidate(c, tier))
		feasible = append(feasible, &slab[len(slab)-1])
	}
	if len(feasible) == 0 {
		return Result{Unschedulable: true, Reason: noFeasibleReason(len(in.clusters), filtered), Filtered: filtered}
	}
	summary := fmt.Sprintf("%d/%d clusters feasible", len(feasible), len(in.clusters))
	slices.SortFunc(feasible, rankCompare)
	selected, err := selectBySpread(feasible, spreads, st, in.replicas)
	if err != nil {
		return Result{Unschedulable: true, Reason: summary + ", but " + err.Error(), Filtered: filtered}
	}
	var targets []Target
	if ta.overflow && in.workload() {
		targets, err = divideTiers(st, in.w, in.replicas, selected)
		if err == nil {
			summary += tierSummary(ta, selected, targets)
		}
	} else {
		targets, err = divideReplicas(st, in.w, in.replicas, selected, int64(in.replicas))
	}
	if err != nil {
		return Result{Unschedulable: true, Reason: summary + ", but " + err.Error(), Filtered: filtered}
	}
	slices.SortFunc(targets, func(a, b Target) int { return strings.Compare(a.Cluster, b.Cluster) })
	return Result{Targets: targets, Reason: summary, Filtered: filtered}
}

// filter gives why the cluster cannot run the workload, or "" and the
// overflow tier it belongs to.
func (in *schedRun) filter(c ClusterInfo, ta termAffinity, spreads spreadPlan) (tier int, reason string) {
	if c.Name == "" {
		return 0, "cluster has no name"
	}
	if in.dup[c.Name] {
		return 0, "duplicate cluster name"
	}
	tier, reason = in.matchTier(c, ta)
	if reason != "" {
		return 0, reason
	}
	return tier, in.filterTaintsAndSpread(c, spreads)
}

// filterTaintsAndSpread gives why a cluster the affinity admits cannot run
// the workload, or "".
func (in *schedRun) filterTaintsAndSpread(c ClusterInfo, spreads spreadPlan) string {
	taints := c.Taints
	if in.inPrev[c.Name] {
		// NoSchedule keeps new workloads out but leaves running ones be:
		// as in Karmada's TaintToleration filter, a cluster already in the
		// placement only has to tolerate NoExecute taints.
		taints = nil
		for _, t := range c.Taints {
			if t.Effect == api.TaintEffectNoExecute {
				taints = append(taints, t)
			}
		}
	}
	if t, bad := api.Untolerated(in.w.Placement.ClusterTolerations, taints, in.now); bad {
		return fmt.Sprintf("taint %s not tolerated", t)
	}
	for _, g := range spreads.groups {
		if len(g.keys(c.ClusterFacts, in.keyBuf)) == 0 {
			return fmt.Sprintf("has no %s to spread by", g.noun)
		}
	}
	return ""
}

func (in *schedRun) newCandidate(c ClusterInfo, tier int) schedCandidate {
	cand := schedCandidate{ClusterInfo: c, prev: in.prev[c.Name], tier: tier}
	cand.free, cand.unknown = estimateReplicas(c.Available, in.w.PerReplica)
	for _, t := range c.Taints {
		if t.Effect != api.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for _, tol := range in.w.Placement.ClusterTolerations {
			if tol.ToleratesTaint(t) {
				ok = true
				break
			}
		}
		if !ok {
			cand.prefer++
		}
	}
	return cand
}

func noFeasibleReason(total int, filtered []Diagnosis) string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d clusters are feasible", total)
	for i, d := range filtered {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(d.Cluster + ": " + d.Reason)
	}
	return b.String()
}
