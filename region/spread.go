package region

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// Selection by spreadConstraints, after Karmada's
// pkg/scheduler/core/spreadconstraint (group_clusters.go,
// select_clusters*.go, select_groups.go):
//
//   - A spread constraint by provider, region, zone or label filters out
//     clusters that lack the field (Karmada's SpreadConstraint filter).
//   - Static-weight division ignores spreadConstraints for selection
//     (Karmada's shouldIgnoreSpreadConstraint): every feasible cluster is a
//     schedCandidate and the weights decide.
//   - Groups are ranked by the clusters of the previous placement they hold
//     (stickiness: Karmada scores those clusters higher), then by a score
//     like Karmada's calcGroupScore (Divided: the room towards an even
//     share, capped; Duplicated: how many clusters can run all replicas),
//     then by size and name. As many groups as minGroups are taken, more if
//     needed to keep every group that runs the workload, to reach the
//     cluster constraint's minGroups, or (dynamic weights, Aggregated) to
//     have room for all replicas; never more than maxGroups.
//   - The cluster constraint then keeps at most maxGroups clusters: first
//     the best cluster of each selected group (as Karmada's region
//     selection does), then the rest by rank (earlier overflow tier first,
//     then previous placement, fewer PreferNoSchedule taints, more room,
//     name).
//
// Karmada supports only region and cluster spreading in its selection and
// searches group combinations depth-first; Shoal generalises to every
// field and label, applied from the widest (provider, region, zone, then
// labels in the order given) to the cluster, with the greedy ranking above.

type spreadGroup struct {
	noun     string // "region", `label "rack"`
	key      func(api.ClusterFacts) string
	min, max int
}

type spreadPlan struct {
	groups     []spreadGroup
	hasCluster bool
	clusterMin int
	clusterMax int
}

func (p spreadPlan) empty() bool { return len(p.groups) == 0 && !p.hasCluster }

// parseSpread orders the constraints from the widest group to the cluster.
func parseSpread(scs []api.SpreadConstraint) (spreadPlan, error) {
	var p spreadPlan
	byField := map[api.SpreadFieldValue]api.SpreadConstraint{}
	var labels []api.SpreadConstraint
	seen := map[string]bool{}
	for i, sc := range scs {
		switch {
		case sc.SpreadByField != "" && sc.SpreadByLabel != "":
			return p, fmt.Errorf("spreadConstraints[%d]: spreadByField and spreadByLabel are exclusive", i)
		case sc.SpreadByField != "":
			if seen["f/"+string(sc.SpreadByField)] {
				return p, fmt.Errorf("spreadConstraints[%d]: spreadByField %s given twice", i, sc.SpreadByField)
			}
			seen["f/"+string(sc.SpreadByField)] = true
			byField[sc.SpreadByField] = sc
		case sc.SpreadByLabel != "":
			if seen["l/"+sc.SpreadByLabel] {
				return p, fmt.Errorf("spreadConstraints[%d]: spreadByLabel %s given twice", i, sc.SpreadByLabel)
			}
			seen["l/"+sc.SpreadByLabel] = true
			labels = append(labels, sc)
		default:
			return p, fmt.Errorf("spreadConstraints[%d]: one of spreadByField and spreadByLabel is required", i)
		}
	}
	for f := range byField {
		switch f {
		case api.SpreadByFieldCluster, api.SpreadByFieldProvider, api.SpreadByFieldRegion, api.SpreadByFieldZone:
		default:
			return p, fmt.Errorf("spreadConstraints: unknown spreadByField %q", f)
		}
	}
	fields := []struct {
		f   api.SpreadFieldValue
		key func(api.ClusterFacts) string
	}{
		{api.SpreadByFieldProvider, func(c api.ClusterFacts) string { return c.Provider }},
		{api.SpreadByFieldRegion, func(c api.ClusterFacts) string { return c.Region }},
		{api.SpreadByFieldZone, func(c api.ClusterFacts) string { return c.Zone }},
	}
	for _, f := range fields {
		if sc, ok := byField[f.f]; ok {
			p.groups = append(p.groups, spreadGroup{noun: string(f.f), key: f.key, min: sc.MinGroups, max: sc.MaxGroups})
		}
	}
	for _, sc := range labels {
		label := sc.SpreadByLabel
		p.groups = append(p.groups, spreadGroup{
			noun: fmt.Sprintf("label %q", label),
			key:  func(c api.ClusterFacts) string { return c.Labels[label] },
			min:  sc.MinGroups, max: sc.MaxGroups,
		})
	}
	if sc, ok := byField[api.SpreadByFieldCluster]; ok {
		p.hasCluster, p.clusterMin, p.clusterMax = true, sc.MinGroups, sc.MaxGroups
	}
	return p, nil
}

// clusterGroup is the clusters sharing one value of a spread key, in rank
// order.
type clusterGroup struct {
	value    string
	clusters []*schedCandidate
	prev     int   // clusters with previous replicas
	score    int64 // see groupScore
}

// selectBySpread picks the clusters to divide replicas over from the
// feasible ones (given in rank order); the result is in rank order.
func selectBySpread(feasible []*schedCandidate, plan spreadPlan, st replicaStrategy, replicas int32) ([]*schedCandidate, error) {
	if plan.empty() || st == strategyStaticWeight {
		return feasible, nil
	}
	cands := feasible
	var chosen []clusterGroup
	for _, g := range plan.groups {
		groups := groupCandidates(cands, g.key)
		minG := max(g.min, 1)
		maxG := len(groups)
		if g.max > 0 {
			maxG = min(maxG, g.max)
		}
		if plan.hasCluster && plan.clusterMax > 0 {
			// Every selected group needs a cluster of its own.
			maxG = min(maxG, plan.clusterMax)
		}
		if len(groups) < minG {
			return nil, fmt.Errorf("spreadConstraints: %d %s among feasible clusters (%s), minGroups is %d",
				len(groups), g.noun, groupValues(groups), minG)
		}
		if maxG < minG {
			return nil, fmt.Errorf("spreadConstraints: at most %d %s can be selected, minGroups is %d", maxG, g.noun, minG)
		}
		for i := range groups {
			groups[i].score = groupScore(groups[i].clusters, st, replicas, minG)
		}
		slices.SortFunc(groups, func(a, b clusterGroup) int {
			if c := cmp.Compare(b.prev, a.prev); c != 0 {
				return c
			}
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			if c := cmp.Compare(len(b.clusters), len(a.clusters)); c != 0 {
				return c
			}
			return strings.Compare(a.value, b.value)
		})
		k := minG
		for k < len(groups) && groups[k].prev > 0 {
			k++
		}
		for k < maxG && (countClusters(groups[:k]) < plan.clusterMin ||
			st.needsRoom() && groupsRoom(groups[:k]) < int64(replicas)) {
			k++
		}
		chosen = groups[:min(k, maxG)]
		cands = nil
		for _, cg := range chosen {
			cands = append(cands, cg.clusters...)
		}
		slices.SortFunc(cands, rankCompare)
	}
	if plan.hasCluster {
		minC := max(plan.clusterMin, 1)
		if len(cands) < minC {
			return nil, fmt.Errorf("spreadConstraints: %d clusters selectable, minGroups is %d", len(cands), minC)
		}
		if maxC := plan.clusterMax; maxC > 0 && maxC < len(cands) {
			cands = pickClusters(cands, chosen, maxC)
		}
	}
	// A narrower constraint may have left too few groups of a wider one.
	for _, g := range plan.groups {
		if n := len(groupCandidates(cands, g.key)); n < max(g.min, 1) {
			return nil, fmt.Errorf("spreadConstraints: the other constraints leave %d %s, minGroups is %d", n, g.noun, max(g.min, 1))
		}
	}
	return cands, nil
}

// pickClusters keeps maxC of the ranked candidates: the best of each chosen
// group first, then by rank; the result stays in rank order.
func pickClusters(cands []*schedCandidate, chosen []clusterGroup, maxC int) []*schedCandidate {
	picked := make(map[*schedCandidate]bool, maxC)
	for _, cg := range chosen {
		if len(picked) < maxC {
			picked[cg.clusters[0]] = true
		}
	}
	for _, c := range cands {
		if len(picked) >= maxC {
			break
		}
		picked[c] = true
	}
	out := make([]*schedCandidate, 0, maxC)
	for _, c := range cands {
		if picked[c] {
			out = append(out, c)
		}
	}
	return out
}

// groupCandidates splits ranked candidates by key, keeping rank order inside each
// group.
func groupCandidates(cands []*schedCandidate, key func(api.ClusterFacts) string) []clusterGroup {
	idx := map[string]int{}
	var groups []clusterGroup
	for _, c := range cands {
		v := key(c.ClusterFacts)
		i, ok := idx[v]
		if !ok {
			i = len(groups)
			idx[v] = i
			groups = append(groups, clusterGroup{value: v})
		}
		groups[i].clusters = append(groups[i].clusters, c)
		if c.prev > 0 {
			groups[i].prev++
		}
	}
	return groups
}

// groupScore ranks groups with the same number of previous clusters, after
// Karmada's calcGroupScore: for Duplicated, how many of its clusters can
// run every replica; for Divided by room, its room towards an even share of
// the replicas over minGroups groups (so groups that can take their share
// rank alike); otherwise nothing.
func groupScore(cs []*schedCandidate, st replicaStrategy, replicas int32, minGroups int) int64 {
	switch {
	case replicas == 0:
		return 0
	case st == strategyDuplicated:
		var n int64
		for _, c := range cs {
			if c.room() >= int64(replicas) {
				n++
			}
		}
		return n
	case st.needsRoom():
		share := int64(replicas)/int64(max(minGroups, 1)) + 1
		var room int64
		for _, c := range cs {
			room += c.room()
		}
		return min(room, share)
	}
	return 0
}

func countClusters(gs []clusterGroup) int {
	n := 0
	for _, g := range gs {
		n += len(g.clusters)
	}
	return n
}

func groupsRoom(gs []clusterGroup) int64 {
	var n int64
	for _, g := range gs {
		for _, c := range g.clusters {
			n += c.room()
		}
	}
	return n
}

func groupValues(gs []clusterGroup) string {
	vs := make([]string, 0, len(gs))
	for _, g := range gs {
		vs = append(vs, g.value)
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}
