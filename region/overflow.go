package region

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// Overflow tiers: a clusterAffinities term's overflowAffinities, Karmada
// v1.18's "Overflow Cluster Affinities" (read at commit f8fdd02d, after
// v1.19.0-rc.0):
//
//   - Filter (clusteraffinity plugin): a workload — something with replicas
//     to place, or whose replicas request resources — may run on a cluster
//     that matches the term's own affinity or any of its overflowAffinities;
//     anything else only on the term's own clusters.
//   - Tier (spreadconstraint/group_clusters.go getClusterOverflowOrder): a
//     cluster is in tier 0 when it matches the term's own affinity, else in
//     tier i for the first overflowAffinities entry i (from 1) it matches.
//   - Select: candidates are ranked by tier before anything else
//     (spreadconstraint/util.go sortClusters), so spread constraints take
//     clusters of earlier tiers first.
//   - Divide (core/common.go assignWorkloadReplicas, on when the term has
//     overflowAffinities at all, enableOverflow): the tiers are taken in
//     order; tier i gets min(remaining, the sum of its clusters' available
//     replicas), where a cluster's available replicas count what the
//     workload already runs there; that share is divided inside the tier
//     by the policy's own strategy with the tier's clusters and their
//     previous replicas only; the rest goes on to the next tier. Replicas
//     left after the last tier make the term unschedulable.
//
// So a scale up fills the term's own clusters first and spills into the
// first overflow tier, then the next; a scale down shrinks the last tier in
// use first ("reverse contraction" in Karmada v1.18's release notes), since
// the earlier tiers keep min(replicas, their room).
//
// Karmada runs the division again only when something asks for it: the
// replicas no longer add up (a scale, or a cluster's replicas evicted),
// the placement changed, a rescheduling was asked for. Room freed in an
// earlier tier therefore does not pull replicas back from a later one, and
// a preferred cluster that fails and returns does not take its replicas
// back by itself (the overflow proposal says so, "to avoid replica
// flapping"). Shoal runs the scheduler whenever its inputs change, so for
// the divided strategies it keeps a previous placement whose replicas on
// the selected clusters add up to the wanted count, as Karmada would by not
// running at all. (Shoal's failback, which restores what ran before a
// failover once the cluster is stable, applies to these workloads as to
// every other; Karmada has no failback.) Duplicated is rescheduled by
// Karmada every time, so it is not kept.
//
// Karmada's division does not look at the strategy when it splits tiers,
// although its webhook and Shoal's validation reject overflowAffinities
// with Duplicated and static weights: with Duplicated every cluster of a
// tier runs that tier's whole share, with static weights each tier's share
// is divided by the weights of its clusters. Shoal does the same for a
// placement that did not go through validation.

// termAffinity is the cluster affinity one scheduling attempt filters by.
type termAffinity struct {
	// name is the clusterAffinities term; "" for clusterAffinity or none.
	name string
	// tiers[0] is the term's own affinity (nil: every cluster matches);
	// tiers[i] its i-th overflowAffinities entry.
	tiers []*api.ClusterAffinity
	// tierNames are the affinityNames of the tiers (tierNames[0] is name).
	tierNames []string
	// overflow is Karmada's enableOverflow: the term has overflowAffinities,
	// even an empty list.
	overflow bool
}

func affinityOfTerm(t *api.ClusterAffinityTerm) termAffinity {
	ta := termAffinity{
		name:      t.AffinityName,
		tiers:     []*api.ClusterAffinity{&t.ClusterAffinity},
		tierNames: []string{t.AffinityName},
		overflow:  t.OverflowAffinities != nil,
	}
	for i := range t.OverflowAffinities {
		ta.tiers = append(ta.tiers, &t.OverflowAffinities[i].ClusterAffinity)
		ta.tierNames = append(ta.tierNames, t.OverflowAffinities[i].AffinityName)
	}
	return ta
}

// matchTier gives the tier of the first affinity of the term the cluster
// matches, or why it matches none.
func (in *schedRun) matchTier(c ClusterInfo, ta termAffinity) (int, string) {
	n := 1
	if in.workload() {
		n = len(ta.tiers)
	}
	var why string
	for i := 0; i < n; i++ {
		ok, reason := ta.tiers[i].Matches(c.ClusterFacts)
		if ok {
			return i, ""
		}
		if i == 0 {
			why = reason
		}
	}
	switch {
	case ta.name == "":
		return 0, "does not match clusterAffinity (" + why + ")"
	case n > 1:
		return 0, fmt.Sprintf("does not match clusterAffinities term %q (%s) nor its overflowAffinities", ta.name, why)
	}
	return 0, fmt.Sprintf("does not match clusterAffinities term %q (%s)", ta.name, why)
}

// divideTiers divides replicas over the selected clusters (in rank order,
// so by tier) tier after tier.
func divideTiers(st replicaStrategy, w Workload, replicas int32, sel []*schedCandidate) ([]Target, error) {
	byTier := map[int][]*schedCandidate{}
	for _, c := range sel {
		byTier[c.tier] = append(byTier[c.tier], c)
	}
	if len(byTier) == 0 {
		return nil, nil
	}
	order := slices.Sorted(maps.Keys(byTier))
	tiers := make([][]*schedCandidate, 0, len(order))
	for _, k := range order {
		tiers = append(tiers, byTier[k])
	}
	if replicas == 0 {
		// Karmada stops after the first tier that has clusters: the
		// placement kept at zero replicas is that tier's.
		return divideReplicas(st, w, 0, tiers[0], 0)
	}
	if st != strategyDuplicated {
		var assigned int64
		for _, c := range sel {
			assigned += int64(c.prev)
		}
		if assigned == int64(replicas) {
			// Karmada would not reschedule: nothing to divide.
			var out []Target
			for _, c := range sel {
				if c.prev > 0 {
					out = append(out, Target{Cluster: c.Name, Replicas: c.prev})
				}
			}
			return out, nil
		}
	}
	remaining := int64(replicas)
	var out []Target
	for _, cs := range tiers {
		var room int64
		for _, c := range cs {
			room = min(room+c.room(), unlimitedReplicas)
		}
		share := min(remaining, room)
		if share == 0 {
			continue
		}
		ts, err := divideReplicas(st, w, int32(share), cs, int64(replicas))
		if err != nil {
			return nil, err
		}
		out = append(out, nonZeroTargets(ts)...)
		if remaining -= share; remaining == 0 {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: the term's clusters and its overflow tiers can take %d replicas, %d wanted",
		errInsufficient, int64(replicas)-remaining, replicas)
}

// tierSummary tells how many replicas each tier got: "; on-prem 4, cloud 2".
func tierSummary(ta termAffinity, sel []*schedCandidate, targets []Target) string {
	tierOf := make(map[string]int, len(sel))
	for _, c := range sel {
		tierOf[c.Name] = c.tier
	}
	per := make([]int64, len(ta.tiers))
	for _, t := range targets {
		per[tierOf[t.Cluster]] += int64(t.Replicas)
	}
	var parts []string
	for i, n := range per {
		if n > 0 || i == 0 {
			parts = append(parts, fmt.Sprintf("%s %d", ta.tierNames[i], n))
		}
	}
	return "; replicas by tier: " + strings.Join(parts, ", ")
}
