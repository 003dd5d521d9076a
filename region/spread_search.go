package region

import (
	"cmp"
	"slices"
	"strings"
)

// When the groups taken by rank (chooseGroups) hold fewer clusters than the
// cluster constraint's minGroups, Karmada's selectGroups
// (pkg/scheduler/core/spreadconstraint/select_groups.go) does not give up:
// it searches, depth first, every combination of between minGroups and
// maxGroups groups, groups ordered by fewer clusters, then higher score,
// then name, recording each combination that first reaches the clusters
// needed; of those it prefers the highest total score, then the most
// clusters, then the one found first, and then a found combination that is
// a prefix of it (groups by score) over it. searchGroups is that search.
// It runs only when the greedy choice falls short, only over disjoint
// groups (Karmada's groups are regions; zones may overlap) and only for up
// to maxSearchGroups groups, as the search is exponential.

const maxSearchGroups = 16

type groupPath struct {
	id     int
	groups []clusterGroup // by score descending, then value
	score  int64
	value  int
}

// searchGroups gives the groups Karmada's search selects, or nil if there
// is no combination holding target clusters.
func searchGroups(groups []clusterGroup, minG, maxG, target int) []clusterGroup {
	if len(groups) == 0 || len(groups) > maxSearchGroups || overlapping(groups) {
		return nil
	}
	gs := slices.Clone(groups)
	slices.SortFunc(gs, func(a, b clusterGroup) int {
		if c := cmp.Compare(len(a.clusters), len(b.clusters)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var paths []groupPath
	var cur []clusterGroup
	id := 0
	var dfs func(sum, begin int)
	dfs = func(sum, begin int) {
		if sum >= target && len(cur) >= minG && len(cur) <= maxG {
			id++
			p := groupPath{id: id, groups: slices.Clone(cur)}
			for _, g := range p.groups {
				p.score += g.score
				p.value += len(g.clusters)
			}
			slices.SortFunc(p.groups, func(a, b clusterGroup) int {
				if c := cmp.Compare(b.score, a.score); c != 0 {
					return c
				}
				return strings.Compare(a.value, b.value)
			})
			paths = append(paths, p)
			return
		}
		if len(cur) >= maxG {
			return
		}
		for i := begin; i < len(gs); i++ {
			cur = append(cur, gs[i])
			dfs(sum+len(gs[i].clusters), i+1)
			cur = cur[:len(cur)-1]
			if len(gs) == minG {
				break
			}
		}
	}
	dfs(0, 0)
	if len(paths) == 0 {
		return nil
	}
	slices.SortStableFunc(paths, func(a, b groupPath) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.value, a.value); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	best := paths[0]
	for _, p := range paths[1:] {
		if isPrefixPath(p, best) {
			best = p
		}
	}
	return best.groups
}

// isPrefixPath reports whether sub is shorter than p and its groups are
// p's first ones.
func isPrefixPath(sub, p groupPath) bool {
	if len(sub.groups) >= len(p.groups) {
		return false
	}
	for i, g := range sub.groups {
		if p.groups[i].value != g.value {
			return false
		}
	}
	return true
}

// overlapping reports whether a cluster is in more than one group.
func overlapping(groups []clusterGroup) bool {
	seen := map[*schedCandidate]bool{}
	for _, g := range groups {
		for _, c := range g.clusters {
			if seen[c] {
				return true
			}
			seen[c] = true
		}
	}
	return false
}
