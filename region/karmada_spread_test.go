package region

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// Compatibility with Karmada's selection by spread constraints
// (pkg/scheduler/core/spreadconstraint), read at commit f8fdd02d (after
// v1.19.0-rc.0). Each case names the test of
// pkg/scheduler/core/spreadconstraint it comes from, with its inputs and
// Karmada's answer.
//
// Karmada's unit tests hand its functions cluster scores, and for regions
// group scores, of any value; its score plugins give 0 or 100 (100 on the
// clusters of the previous placement, ClusterLocality). Shoal has no free
// score: it ranks clusters by overflow tier, previous placement, untolerated
// PreferNoSchedule taints, room and name (rankCompare). So a Karmada cluster
// score s, which only ranks clusters in these tests, is given as (100-s)/10
// untolerated PreferNoSchedule taints: the clusters rank as Karmada's scores
// and available replicas rank them. Group scores are set on the groups as
// given, for chooseGroups to rank them; the other steps are Shoal's own
// (groupBounds, chooseGroups, keepClusters, the steps of selectBySpread).
//
// Cases whose answer Shoal does not reproduce carry differs, the reason;
// they assert Shoal's answer. Those of region and group selection all come
// from one difference: Karmada searches every combination of groups
// (select_groups.go, findFeasiblePaths) for the one with the highest total
// score that holds the cluster constraint's minGroups clusters, where Shoal
// takes groups greedily in rank order (spread.go), so when the best ranked
// groups hold too few clusters Shoal finds no placement where Karmada finds
// one among lower ranked groups.
//
// Test_GroupClustersWithScore's group counts are in karmada_zones_test.go;
// its cluster order is Test_sortClusters' rule, checked below.

// karmadaMember is a cluster of Karmada's spread tests with Karmada's score
// (a multiple of 10, ranked as (100-score)/10 PreferNoSchedule taints) and
// available replicas; topology as cl's.
func karmadaMember(name, topology string, score int, avail int64) ClusterInfo {
	c := pods(cl(name, topology), avail)
	for i := range (100 - score) / 10 {
		c.Taints = append(c.Taints, api.Taint{Key: fmt.Sprintf("score-%d", i), Effect: api.TaintEffectPreferNoSchedule})
	}
	return c
}

// ranked gives the candidates the scheduler makes of clusters for w, in
// rank order.
func ranked(w Workload, cs []ClusterInfo) []*schedCandidate {
	run := &schedRun{w: w}
	out := make([]*schedCandidate, 0, len(cs))
	for _, c := range cs {
		cand := run.newCandidate(c, 0)
		out = append(out, &cand)
	}
	slices.SortFunc(out, rankCompare)
	return out
}

// nameSet gives the names of the candidates, sorted, space-separated.
func nameSet(cs []*schedCandidate) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// sortedWords sorts a space-separated list.
func sortedWords(s string) string {
	f := strings.Fields(s)
	slices.Sort(f)
	return strings.Join(f, " ")
}

func TestKarmadaSelectBestClusters(t *testing.T) {
	// select_clusters_test.go, TestSelectBestClusters: four clusters, one
	// cluster constraint, no region one. Karmada's bare Divided (no
	// division preference) keeps the replicas needed, as a strategy that
	// divides by room does; its webhook would make it Weighted, whose
	// static weights ignore spread constraints. So it is run with both
	// strategies that divide by room.
	members := []ClusterInfo{
		karmadaMember("member4", "R2/Z2/P2", 60, 50),
		karmadaMember("member2", "R1/Z2/P1", 40, 60),
		karmadaMember("member3", "R1/Z1/P2", 30, 80),
		karmadaMember("member1", "R1/Z1/P1", 20, 40),
	}
	byRoom := []struct {
		name string
		rs   *api.ReplicaSchedulingStrategy
	}{{"dynamic weights", dynamic()}, {"Aggregated", aggregated()}}
	type selCase struct {
		name     string
		rs       *api.ReplicaSchedulingStrategy
		replicas int32
		minG     int
		maxG     int
		want     string // the clusters selected, or "!" for none
	}
	tests := []selCase{
		{"select clusters by cluster score", nil, 100, 1, 2, "member4 member2"},
		{"select clusters by cluster score and ignore available resources when scheduling strategy is duplicated",
			duplicated(), 120, 1, 2, "member4 member2"},
		{"select clusters by cluster score and ignore available resources when scheduling strategy is static weight",
			static(weight(2, "member1")), 120, 1, 2, "member4 member2 member3 member1"},
		{"select clusters by cluster score and exceeded the number of available clusters.", nil, 30, 7, 7, "!"},
	}
	for _, s := range byRoom {
		tests = append(tests,
			selCase{"select clusters by cluster score and satisfy available resources (" + s.name + ")", s.rs, 120, 1, 2, "member4 member3"},
			selCase{"select clusters by cluster score and insufficient resources (" + s.name + ")", s.rs, 200, 1, 2, "!"})
	}
	for _, tt := range tests {
		t.Run("select_clusters_test.go: "+tt.name, func(t *testing.T) {
			w := work(tt.replicas, api.Placement{ReplicaScheduling: tt.rs,
				SpreadConstraints: []api.SpreadConstraint{spread("cluster", tt.minG, tt.maxG)}})
			plan, err := parseSpread(w.Placement.SpreadConstraints)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := strategyOf(w)
			got, err := selectBySpread(ranked(w, members), plan, st, tt.replicas)
			r := Schedule(w, members, testNow)
			if tt.want == "!" {
				// Karmada fails the selection; Shoal may instead fail the
				// division, for want of room: unschedulable either way.
				if err == nil && !r.Unschedulable {
					t.Fatalf("selected %s and scheduled %v, want no placement", nameSet(got), r.Targets)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, w := nameSet(got), sortedWords(tt.want); g != w {
				t.Fatalf("selected %s, want %s", g, w)
			}
			if r.Unschedulable {
				t.Fatalf("unschedulable: %s", r.Reason)
			}
			if st == strategyStaticWeight {
				return // the weights, not the selection, decide the targets
			}
			var targets []string
			for _, tg := range r.Targets {
				targets = append(targets, tg.Cluster)
			}
			if g, w := strings.Join(targets, " "), sortedWords(tt.want); g != w {
				t.Fatalf("scheduled on %s, want %s", g, w)
			}
		})
	}
}

// karmadaRegion is a region of Karmada's tests: its group score as given
// and its clusters.
type karmadaRegion struct {
	name     string
	score    int64
	clusters []ClusterInfo
}

// selectRegions runs Shoal's steps of selectBySpread for a region and a
// cluster constraint over the regions, with the region scores given
// instead of groupScore's.
func selectRegions(regions []karmadaRegion, region, cluster api.SpreadConstraint) ([]*schedCandidate, error) {
	plan, err := parseSpread([]api.SpreadConstraint{region, cluster})
	if err != nil {
		return nil, err
	}
	w := work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{region, cluster}})
	var groups []clusterGroup
	for _, r := range regions {
		groups = append(groups, clusterGroup{value: r.name, clusters: ranked(w, r.clusters), score: r.score})
	}
	minG, maxG, err := groupBounds(plan.groups[0], plan, groups, false)
	if err != nil {
		return nil, err
	}
	chosen := chooseGroups(groups, minG, maxG, plan.clusterMin, 0)
	cands := distinctClusters(chosen)
	slices.SortFunc(cands, rankCompare)
	return keepClusters(cands, chosen, plan, 0)
}

func TestKarmadaSelectBestClustersByRegion(t *testing.T) {
	// select_clusters_by_region_test.go, Test_selectBestClustersByRegion.
	// Every cluster is in provider P1 and zone Z1 of its region.
	m := func(name, region string, score int, avail int64) ClusterInfo {
		return karmadaMember(name, region+"/Z1/P1", score, avail)
	}
	r1r2 := func(m2avail int64) []karmadaRegion {
		return []karmadaRegion{
			{"R1", 100, []ClusterInfo{m("member1", "R1", 100, 40), m("member2", "R1", 80, m2avail)}},
			{"R2", 80, []ClusterInfo{m("member3", "R2", 80, 40), m("member4", "R2", 80, 40), m("member5", "R2", 60, 40)}},
		}
	}
	tests := []struct {
		name            string
		regions         []karmadaRegion
		region, cluster api.SpreadConstraint
		want            string // clusters selected, "!" for none
		differs         string
		shoal           string // Shoal's answer where it differs
	}{
		{name: "select cluster from the region with the higher score", regions: r1r2(40),
			region: spread("region", 1, 1), cluster: spread("cluster", 2, 2), want: "member1 member2"},
		{name: "select cluster from the region with enough clusters", regions: r1r2(40),
			region: spread("region", 1, 1), cluster: spread("cluster", 3, 3), want: "member3 member4 member5"},
		{name: "select cluster from the region with enough clusters and higher score", regions: []karmadaRegion{
			{"R1", 90, []ClusterInfo{m("member1", "R1", 90, 40)}},
			{"R2", 70, []ClusterInfo{m("member2", "R2", 70, 40), m("member3", "R2", 60, 40), m("member4", "R2", 30, 40)}},
			{"R3", 80, []ClusterInfo{m("member5", "R3", 80, 40), m("member6", "R3", 50, 60)}},
			{"R4", 50, []ClusterInfo{m("member7", "R4", 50, 50), m("member8", "R4", 40, 50), m("member9", "R4", 10, 50), m("member10", "R4", 0, 50)}},
		}, region: spread("region", 2, 2), cluster: spread("cluster", 4, 5), want: "member1 member2 member3 member4"},
		{name: "select cluster from more than `minGroups` regions with enough clusters and higher score", regions: []karmadaRegion{
			{"R1", 70, []ClusterInfo{m("member1", "R1", 70, 40)}},
			{"R2", 40, []ClusterInfo{m("member2", "R2", 40, 40), m("member3", "R2", 40, 40), m("member4", "R2", 40, 40)}},
			{"R3", 60, []ClusterInfo{m("member5", "R3", 60, 40), m("member6", "R3", 50, 60)}},
			{"R4", 70, []ClusterInfo{m("member7", "R4", 70, 100)}},
			{"R5", 50, []ClusterInfo{m("member8", "R5", 50, 50)}},
		}, region: spread("region", 1, 3), cluster: spread("cluster", 6, 8), want: "member1 member5 member2 member6 member3 member4"},
		{name: "no enough region", regions: r1r2(40),
			region: spread("region", 3, 3), cluster: spread("cluster", 3, 3), want: "!"},
		{name: "no enough clusters", regions: r1r2(60),
			region: spread("region", 1, 1), cluster: spread("cluster", 4, 4), want: "!"},
		{name: "no more regions to replace", regions: []karmadaRegion{
			{"R1", 100, []ClusterInfo{m("member1", "R1", 100, 40), m("member2", "R1", 80, 20)}},
		}, region: spread("region", 1, 1), cluster: spread("cluster", 3, 4), want: "!"},
	}
	for _, tt := range tests {
		t.Run("select_clusters_by_region_test.go: "+tt.name, func(t *testing.T) {
			want := tt.want
			if tt.differs != "" {
				want = tt.shoal
			}
			got, err := selectRegions(tt.regions, tt.region, tt.cluster)
			switch {
			case want == "!" && err == nil:
				t.Fatalf("selected %s, want none (Karmada: %s; %s)", nameSet(got), tt.want, tt.differs)
			case want != "!" && err != nil:
				t.Fatalf("%v, want %s", err, want)
			case want != "!" && nameSet(got) != sortedWords(want):
				t.Fatalf("selected %s, want %s", nameSet(got), sortedWords(want))
			}
		})
	}
}

func TestKarmadaSelectGroups(t *testing.T) {
	// select_groups_test.go, TestSelectGroups: groups given by their
	// number of clusters (value) and score (weight), between minGroups and
	// maxGroups of them to select, holding at least target clusters. As
	// region groups under a region and a cluster constraint (minGroups
	// target, no maxGroups).
	type group struct {
		name   string
		value  int
		weight int64
	}
	tests := []struct {
		name       string
		groups     []group
		minG, maxG int
		target     int
		expected   string // groups selected, "" for none
		differs    string
	}{
		{name: "empty groups", minG: 2, maxG: 3, target: 1},
		{name: "no enough groups", groups: []group{{"R1", 1, 80}}, minG: 2, maxG: 3, target: 1},
		{name: "no enough value", groups: []group{{"R1", 1, 80}, {"R2", 2, 30}}, minG: 2, maxG: 3, target: 4},
		{name: "select one group", groups: []group{{"R1", 1, 80}}, minG: 1, maxG: 3, target: 1, expected: "R1"},
		{name: "prioritize one path", groups: []group{{"R1", 1, 80}, {"R3", 1, 80}, {"R2", 1, 60}, {"R5", 2, 60}, {"R4", 5, 50}, {"R6", 3, 50}},
			minG: 1, maxG: 3, target: 10, expected: "R5 R4 R6"},
		{name: "select groups with less total number", groups: []group{{"R1", 1, 80}, {"R2", 4, 40}, {"R3", 1, 30}, {"R4", 3, 30}, {"R5", 3, 20}, {"R6", 5, 10}},
			minG: 2, maxG: 6, target: 5, expected: "R1 R2"},
		{name: "select groups with the highest score", groups: []group{{"R1", 1, 60}, {"R2", 1, 50}, {"R3", 1, 40}, {"R4", 3, 30}, {"R5", 3, 20}, {"R6", 3, 10}},
			minG: 1, maxG: 3, target: 6, expected: "R1 R4 R5"},
		{name: "select groups that are chosen earlier", groups: []group{{"R1", 1, 60}, {"R2", 2, 50}, {"R3", 3, 40}, {"R4", 4, 30}},
			minG: 1, maxG: 2, target: 5, expected: "R1 R4"},
		{name: "select groups with greater value", groups: []group{{"R4", 1, 60}, {"R3", 3, 50}, {"R1", 3, 40}, {"R2", 4, 30}},
			minG: 1, maxG: 2, target: 5, expected: "R3 R1"},
	}
	for _, tt := range tests {
		t.Run("select_groups_test.go: "+tt.name, func(t *testing.T) {
			var regions []karmadaRegion
			for _, g := range tt.groups {
				r := karmadaRegion{name: g.name, score: g.weight}
				for i := range g.value {
					r.clusters = append(r.clusters, cl(fmt.Sprintf("%s-%d", g.name, i), g.name+"//"))
				}
				regions = append(regions, r)
			}
			got, err := selectRegions(regions, spread("region", tt.minG, tt.maxG), spread("cluster", tt.target, 0))
			var selected []string
			if err == nil {
				for _, c := range got {
					if !slices.Contains(selected, c.Region) {
						selected = append(selected, c.Region)
					}
				}
			}
			slices.Sort(selected)
			want := sortedWords(tt.expected)
			if tt.differs != "" {
				want = "" // Shoal selects none, see differs
			}
			if g := strings.Join(selected, " "); g != want {
				t.Fatalf("selected groups %q, want %q (Karmada %q; %s)", g, want, tt.expected, tt.differs)
			}
		})
	}
}

func TestKarmadaCalcGroupScore(t *testing.T) {
	// group_clusters_test.go, Test_CalcGroupScore: which of two groups of
	// five clusters ranks first, for a strategy. A Karmada cluster score of
	// 100 is ClusterLocality's (the cluster runs the workload), 0 the
	// contrary; so a cluster scored 100 has a previous replica here (of its
	// available replicas).
	group := func(name string, scores []int64, avail []int64) clusterGroup {
		g := clusterGroup{value: name}
		for i, s := range scores {
			c := &schedCandidate{ClusterInfo: cl(fmt.Sprintf("%s-member%d", name, i+1), ""), free: avail[i]}
			if s == 100 {
				c.prev, c.free = 1, avail[i]-1
				g.prev++
			}
			g.clusters = append(g.clusters, c)
		}
		return g
	}
	const prevFirst = "Shoal ranks groups by their clusters of the previous placement first and by capacity after; " +
		"Karmada's group score puts capacity first (room, or for Duplicated the clusters that can run every replica, weighted by 1000) " +
		"and the clusters' average score (the previous placement) after"
	tests := []struct {
		id              int
		scores1, avail1 []int64
		scores2, avail2 []int64
		st              replicaStrategy
		replicas        int32
		minGroups       int
		group1Wins      bool
		description     string
		differs         string
	}{
		{1, []int64{100, 100, 0, 0, 0}, []int64{30, 30, 30, 30, 30}, []int64{100, 100, 100, 100, 100}, []int64{30, 30, 30, 10, 10},
			strategyDuplicated, 20, 0, true, "clusters1 meets the replica requirements for a larger number of clusters", prevFirst},
		{2, []int64{100, 100, 0, 0, 0}, []int64{30, 30, 30, 10, 10}, []int64{100, 100, 100, 100, 100}, []int64{30, 30, 30, 10, 10},
			strategyDuplicated, 20, 0, false, "as many clusters meet the requirements, clusters2 has a higher score", ""},
		{3, []int64{100, 100, 0, 0, 0}, []int64{30, 30, 30, 10, 10}, []int64{100, 100, 100, 100, 100}, []int64{10, 10, 10, 5, 5},
			strategyAggregated, 100, 2, true, "clusters1 meets the replica requirements, clusters2 does not", prevFirst},
		{4, []int64{100, 100, 0, 0, 0}, []int64{10, 10, 10, 10, 5}, []int64{100, 100, 100, 100, 100}, []int64{10, 10, 10, 5, 5},
			strategyDynamicWeight, 100, 2, true, "clusters1's available replicas are more than clusters2's", prevFirst},
		// Shoal's static weights ignore spread constraints, so no group is
		// ever ranked for them; ranked anyway, the order is Karmada's.
		{5, []int64{100, 100, 0, 0, 0}, []int64{10, 10, 10, 5, 5}, []int64{100, 100, 100, 100, 100}, []int64{10, 10, 10, 5, 5},
			strategyStaticWeight, 100, 2, false, "clusters2's score is higher", ""},
		{6, []int64{0, 0, 0, 0, 0}, []int64{100, 100, 100, 100, 100}, []int64{100, 100, 100, 100, 100}, []int64{50, 50, 50, 50, 50},
			strategyAggregated, 100, 2, false, "clusters2's score is higher, though its available replicas are fewer", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("group_clusters_test.go: Test_CalcGroupScore %d", tt.id), func(t *testing.T) {
			groups := []clusterGroup{group("clusters1", tt.scores1, tt.avail1), group("clusters2", tt.scores2, tt.avail2)}
			for i := range groups {
				groups[i].score = groupScore(groups[i].clusters, tt.st, tt.replicas, tt.minGroups)
			}
			first := chooseGroups(groups, 1, 1, 0, 0)[0].value
			want := tt.group1Wins != (tt.differs != "")
			if (first == "clusters1") != want {
				t.Fatalf("%s ranks first; Karmada: group 1 wins %v (%s); %s", first, tt.group1Wins, tt.description, tt.differs)
			}
		})
	}
}

func TestKarmadaCalcGroupScoreForDuplicate(t *testing.T) {
	// group_clusters_test.go, Test_CalcGroupScoreForDuplicate: no cluster
	// that can run every replica scores 0.
	for _, tt := range []struct {
		name  string
		avail []int64
	}{
		{"get 0 score when clusters is empty", nil},
		{"get 0 score when all clusters can not meet the replica requirements", []int64{5, 5}},
	} {
		t.Run("group_clusters_test.go: "+tt.name, func(t *testing.T) {
			var cs []*schedCandidate
			for i, a := range tt.avail {
				cs = append(cs, &schedCandidate{ClusterInfo: cl(fmt.Sprintf("member%d", i+1), ""), free: a})
			}
			if s := groupScore(cs, strategyDuplicated, 10, 0); s != 0 {
				t.Fatalf("score %d, want 0", s)
			}
		})
	}
}

func TestKarmadaSortClusters(t *testing.T) {
	// util_test.go, Test_sortClusters: score first, then available
	// replicas where the caller compares them (Karmada's scheduler always
	// does: generateClustersInfo, selectBestClustersByRegion), then name.
	// "same score, default to sort by name" leaves available replicas out;
	// its order is by name and, here, by room as well. Its scores 2 and 1
	// are given as 20 and 10 (karmadaMember takes multiples of 10).
	for _, tt := range []struct {
		name     string
		clusters []ClusterInfo
		want     string
	}{
		{"different scores", []ClusterInfo{karmadaMember("b", "", 20, 0), karmadaMember("a", "", 10, 0)}, "b a"},
		{"same score, default to sort by name", []ClusterInfo{karmadaMember("b", "", 10, 5), karmadaMember("a", "", 10, 10)}, "a b"},
		{"same score, sort by availableReplicas", []ClusterInfo{karmadaMember("a", "", 10, 5), karmadaMember("b", "", 10, 10)}, "b a"},
	} {
		t.Run("util_test.go: "+tt.name, func(t *testing.T) {
			var got []string
			for _, c := range ranked(work(1, api.Placement{}), tt.clusters) {
				got = append(got, c.Name)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Fatalf("order %s, want %s", g, tt.want)
			}
		})
	}
}
