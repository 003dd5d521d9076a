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
//     clusters that lack the field (Karmada's SpreadConstraint filter; for
//     zone, clusters without any zone).
//   - A cluster in several zones is in the group of each of them, and adds
//     its room to each (Karmada's generateZoneInfo over spec.zones). Groups
//     are counted, not clusters: one cluster in three zones makes three
//     zone groups towards minGroups, and a selection of groups counts
//     towards maxGroups only the groups it chose, not the other zones of
//     their clusters (Karmada's selectGroups counts the groups of a path).
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
//     name). When it is the only constraint and the strategy divides by
//     room (dynamic weights, Aggregated), the best ranked that lack room
//     for all replicas are swapped for roomier ones, as Karmada's
//     selectClustersByAvailableResource does (pickByRoom).
//
// Karmada supports only region and cluster spreading in its selection and
// searches group combinations depth-first; Shoal generalises to every
// field and label, applied from the widest (provider, region, zone, then
// labels in the order given) to the cluster, with the greedy ranking above,
// and when the groups so taken hold fewer clusters than the cluster
// constraint needs, it runs Karmada's search (spread_search.go).
// Where groups overlap (clusters in several zones): a group is taken for
// stickiness only if it brings clusters of the previous placement that the
// groups taken lack (the one bringing most first); the other groups by
// score, size and name among those that bring any cluster the groups taken
// lack, and those that bring none last; the cluster constraint's maxGroups
// no longer caps the number of groups (one cluster may stand for several);
// and the clusters kept under it are picked to cover as many chosen groups
// as they can. With disjoint groups all this is the order described above.

type spreadGroup struct {
	noun string // "region", `label "rack"`
	// keys gives the groups a cluster is in: one value, several (zones)
	// or none (the cluster lacks the field). A single value is given in
	// buf (of length 1, the caller's, reused from call to call), so the
	// answer is only good until the next call.
	keys     func(c api.ClusterFacts, buf []string) []string
	min, max int
}

// one makes a single-valued key in buf; an empty value is no group.
func one(v string, buf []string) []string {
	if v == "" {
		return nil
	}
	buf[0] = v
	return buf[:1]
}

// keyBuf is the buffer spreadGroup.keys answers single values in.
func keyBuf() []string { return make([]string, 1) }

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
		f    api.SpreadFieldValue
		keys func(api.ClusterFacts, []string) []string
	}{
		{api.SpreadByFieldProvider, func(c api.ClusterFacts, buf []string) []string { return one(c.Provider, buf) }},
		{api.SpreadByFieldRegion, func(c api.ClusterFacts, buf []string) []string { return one(c.Region, buf) }},
		{api.SpreadByFieldZone, func(c api.ClusterFacts, _ []string) []string { return c.Zones }},
	}
	for _, f := range fields {
		if sc, ok := byField[f.f]; ok {
			p.groups = append(p.groups, spreadGroup{noun: string(f.f), keys: f.keys, min: sc.MinGroups, max: sc.MaxGroups})
		}
	}
	for _, sc := range labels {
		label := sc.SpreadByLabel
		p.groups = append(p.groups, spreadGroup{
			noun: fmt.Sprintf("label %q", label),
			keys: func(c api.ClusterFacts, buf []string) []string { return one(c.Labels[label], buf) },
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
	var needRoom int64
	if st.needsRoom() {
		needRoom = int64(replicas)
	}
	cands := feasible
	var chosen []clusterGroup
	for _, g := range plan.groups {
		groups, overlap := groupCandidates(cands, g.keys)
		minG, maxG, err := groupBounds(g, plan, groups, overlap)
		if err != nil {
			return nil, err
		}
		for i := range groups {
			groups[i].score = groupScore(groups[i].clusters, st, replicas, minG)
		}
		chosen = chooseGroups(groups, minG, maxG, plan.clusterMin, needRoom)
		cands = distinctClusters(chosen)
		slices.SortFunc(cands, rankCompare)
	}
	cands, err := keepClusters(cands, chosen, plan, needRoom)
	if err != nil {
		return nil, err
	}
	// A narrower constraint may have left too few groups of a wider one.
	for _, g := range plan.groups {
		if groups, _ := groupCandidates(cands, g.keys); len(groups) < max(g.min, 1) {
			return nil, fmt.Errorf("spreadConstraints: the other constraints leave %d %s, minGroups is %d", len(groups), g.noun, max(g.min, 1))
		}
	}
	return cands, nil
}

// groupBounds gives how many of the groups of constraint g may be selected:
// at least minGroups (1 if unset), at most maxGroups (all if unset), and,
// when groups do not overlap, at most the cluster constraint's maxGroups;
// an error when that cannot be.
func groupBounds(g spreadGroup, plan spreadPlan, groups []clusterGroup, overlap bool) (minG, maxG int, err error) {
	minG = max(g.min, 1)
	maxG = len(groups)
	if g.max > 0 {
		maxG = min(maxG, g.max)
	}
	if plan.hasCluster && plan.clusterMax > 0 && !overlap {
		// Every selected group needs a cluster of its own.
		maxG = min(maxG, plan.clusterMax)
	}
	if len(groups) < minG {
		return 0, 0, fmt.Errorf("spreadConstraints: %d %s among feasible clusters (%s), minGroups is %d",
			len(groups), g.noun, groupValues(groups), minG)
	}
	if maxG < minG {
		return 0, 0, fmt.Errorf("spreadConstraints: at most %d %s can be selected, minGroups is %d", maxG, g.noun, minG)
	}
	return minG, maxG, nil
}

// keepClusters applies the cluster constraint to the ranked candidates of
// the chosen groups (all feasible clusters without group constraints);
// needRoom is the replicas to find room for when the strategy divides by
// room, else 0. The result is in rank order.
func keepClusters(cands []*schedCandidate, chosen []clusterGroup, plan spreadPlan, needRoom int64) ([]*schedCandidate, error) {
	if !plan.hasCluster {
		return cands, nil
	}
	minC := max(plan.clusterMin, 1)
	if len(cands) < minC {
		return nil, fmt.Errorf("spreadConstraints: %d clusters selectable, minGroups is %d", len(cands), minC)
	}
	maxC := plan.clusterMax
	switch {
	case maxC <= 0 || maxC >= len(cands):
		return cands, nil
	case len(plan.groups) == 0 && needRoom > 0:
		return pickByRoom(cands, maxC, needRoom), nil
	}
	return pickClusters(cands, chosen, maxC), nil
}

// chooseGroups ranks the scored groups of one spread constraint and gives
// those selected, at least minG (there are as many) and at most maxG: first
// minG, then every group that brings a cluster of the previous placement,
// then more while the selected clusters are fewer than clusterMin or have
// room for fewer than needRoom replicas. Groups are ranked by their clusters
// of the previous placement, then by groupCompare; with overlapping groups a
// group is taken for what it brings that the groups taken lack (see the
// comment at the top of this file). groups is reordered.
func chooseGroups(groups []clusterGroup, minG, maxG, clusterMin int, needRoom int64) []clusterGroup {
	slices.SortFunc(groups, func(a, b clusterGroup) int {
		if c := cmp.Compare(b.prev, a.prev); c != 0 {
			return c
		}
		return groupCompare(a, b)
	})
	// Groups are taken in that order, except that the group bringing the
	// most clusters of the previous placement that the groups taken so far
	// lack comes first, and then the best (groupCompare) of those bringing
	// any cluster they lack. With disjoint groups that is the order as
	// sorted.
	k, t := 0, taken{in: map[*schedCandidate]bool{}}
	take := func() { t.add(groups[k]); k++ }
	bringsPrev := func(cg clusterGroup) int { return t.gain(cg, true) }
	brings := func(cg clusterGroup) int { return min(t.gain(cg, false), 1) }
	for k < minG && (promote(groups, k, bringsPrev, nil) || promote(groups, k, brings, groupCompare)) {
		take()
	}
	for k < minG {
		take()
	}
	// Keep every group that brings a cluster of the previous placement.
	for promote(groups, k, bringsPrev, nil) {
		take()
	}
	for k < maxG && (len(t.in) < clusterMin || t.room < needRoom) {
		if !promote(groups, k, brings, groupCompare) {
			break
		}
		take()
	}
	if len(t.in) < clusterMin {
		// Too few clusters in the groups by rank: Karmada searches the
		// combinations (spread_search.go).
		if found := searchGroups(groups, minG, maxG, clusterMin); found != nil {
			return found
		}
	}
	return groups[:min(k, maxG)]
}

// groupCompare orders groups with the same previous clusters: higher score,
// then more clusters, then by value.
func groupCompare(a, b clusterGroup) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.clusters), len(a.clusters)); c != 0 {
		return c
	}
	return strings.Compare(a.value, b.value)
}

// promote moves the group from index k on with the highest gain to index
// k, the others keeping their order, and reports whether there was one with
// a gain above 0. A tie goes to the first by before, or by index if before
// is nil.
func promote(groups []clusterGroup, k int, gain func(clusterGroup) int, before func(a, b clusterGroup) int) bool {
	best, bestGain := -1, 0
	for i := k; i < len(groups); i++ {
		n := gain(groups[i])
		if n > bestGain || n == bestGain && n > 0 && before != nil && before(groups[i], groups[best]) < 0 {
			best, bestGain = i, n
		}
	}
	if best < 0 {
		return false
	}
	g := groups[best]
	copy(groups[k+1:best+1], groups[k:best])
	groups[k] = g
	return true
}

// taken is the clusters of the groups taken so far and their room.
type taken struct {
	in   map[*schedCandidate]bool
	room int64
}

func (t *taken) add(g clusterGroup) {
	for _, c := range g.clusters {
		if !t.in[c] {
			t.in[c] = true
			t.room += c.room()
		}
	}
}

// gain counts the clusters of g (those of the previous placement, with
// prevOnly) not taken yet.
func (t *taken) gain(g clusterGroup, prevOnly bool) int {
	n := 0
	for _, c := range g.clusters {
		if (!prevOnly || c.prev > 0) && !t.in[c] {
			n++
		}
	}
	return n
}

// pickClusters keeps maxC of the ranked candidates: first, one at a time,
// the cluster in the most chosen groups that no kept cluster is in yet (the
// better ranked on a tie; with one group per cluster, the best of each
// group), then the rest by rank; the result stays in rank order.
func pickClusters(cands []*schedCandidate, chosen []clusterGroup, maxC int) []*schedCandidate {
	groupsOf := map[*schedCandidate][]int{}
	for i, cg := range chosen {
		for _, c := range cg.clusters {
			groupsOf[c] = append(groupsOf[c], i)
		}
	}
	covered := make([]bool, len(chosen))
	picked := make(map[*schedCandidate]bool, maxC)
	for len(picked) < maxC {
		var best *schedCandidate
		bestN := 0
		for _, c := range cands {
			n := 0
			for _, i := range groupsOf[c] {
				if !covered[i] {
					n++
				}
			}
			if n > bestN && !picked[c] {
				best, bestN = c, n
			}
		}
		if best == nil {
			break
		}
		picked[best] = true
		for _, i := range groupsOf[best] {
			covered[i] = true
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

// pickByRoom keeps maxC of the ranked candidates when the cluster
// constraint is the only one and the strategy divides by room, as Karmada's
// selectClustersByAvailableResource does: the maxC best, and while they
// have room for fewer than need replicas, each kept cluster from the worst
// ranked up is swapped, once, for the cluster left out with the most room,
// if it has more (on a tie the first in the left-out list, which is in rank
// order but for the swapped-out clusters, each in the place of the one
// swapped in, as in Karmada's). The result is in rank order.
func pickByRoom(cands []*schedCandidate, maxC int, need int64) []*schedCandidate {
	buf := slices.Clone(cands)
	kept, rest := buf[:maxC], buf[maxC:]
	room := func() int64 {
		var sum int64
		for _, c := range kept {
			sum += c.room()
		}
		return sum
	}
	for i := len(kept) - 1; i >= 0 && room() < need; i-- {
		best, most := -1, kept[i].room()
		for j, c := range rest {
			if c.room() > most {
				best, most = j, c.room()
			}
		}
		if best >= 0 {
			kept[i], rest[best] = rest[best], kept[i]
		}
	}
	slices.SortFunc(kept, rankCompare)
	return kept
}

// groupCandidates splits ranked candidates by their keys, keeping rank order
// inside each group; a candidate without a key is in no group, one with
// several keys (zones) in the group of each, and overlap says whether any
// candidate is in more than one group.
func groupCandidates(cands []*schedCandidate, keys func(api.ClusterFacts, []string) []string) (groups []clusterGroup, overlap bool) {
	idx := map[string]int{}
	buf := keyBuf()
	for _, c := range cands {
		vs := keys(c.ClusterFacts, buf)
		in := 0
		for _, v := range vs {
			i, ok := idx[v]
			if !ok {
				i = len(groups)
				idx[v] = i
				groups = append(groups, clusterGroup{value: v})
			}
			if n := len(groups[i].clusters); n > 0 && groups[i].clusters[n-1] == c {
				continue // a key given twice
			}
			in++
			groups[i].clusters = append(groups[i].clusters, c)
			if c.prev > 0 {
				groups[i].prev++
			}
		}
		overlap = overlap || in > 1
	}
	return groups, overlap
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

// distinctClusters gives the clusters of the groups, each once.
func distinctClusters(gs []clusterGroup) []*schedCandidate {
	var out []*schedCandidate
	seen := map[*schedCandidate]bool{}
	for _, g := range gs {
		for _, c := range g.clusters {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func groupValues(gs []clusterGroup) string {
	vs := make([]string, 0, len(gs))
	for _, g := range gs {
		vs = append(vs, g.value)
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}
