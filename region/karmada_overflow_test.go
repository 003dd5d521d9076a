package region

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// Compatibility with Karmada's overflowAffinities (v1.18, read at commit
// f8fdd02d, after v1.19.0-rc.0). Where Karmada has a unit test, its inputs
// and expected outputs are taken as facts: a cluster's AvailableReplicas
// there is Shoal's free room plus the cluster's previous replicas, its
// AllocatableReplicas Shoal's free room, and its OverflowOrder the tier of
// the affinity the test's cluster names put it in. Where Karmada's code has
// no test, the case names the function whose rule it checks.

// overflowPlacement is a clusterAffinities placement of one term "primary"
// whose own clusters are own and whose overflow tiers are tiers, in order
// ("overflow-1", "overflow-2", ...), divided by rs.
func overflowPlacement(rs *api.ReplicaSchedulingStrategy, own []string, tiers ...[]string) api.Placement {
	term := api.ClusterAffinityTerm{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: own},
		OverflowAffinities: []api.OverflowClusterAffinity{}}
	for i, names := range tiers {
		term.OverflowAffinities = append(term.OverflowAffinities, api.OverflowClusterAffinity{
			AffinityName: fmt.Sprintf("overflow-%d", i+1), ClusterAffinity: api.ClusterAffinity{ClusterNames: names}})
	}
	return api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{term}, ReplicaScheduling: rs}
}

// scheduled is Schedule's answer as "a:2 b:3 @term", or "!" and the reason.
func scheduled(w Workload, clusters []ClusterInfo) string {
	r := Schedule(w, clusters, testNow)
	if r.Unschedulable {
		return "!" + r.Reason
	}
	var b strings.Builder
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "%s:%d ", t.Cluster, t.Replicas)
	}
	return b.String() + "@" + r.AffinityTerm
}

type overflowCase struct {
	source   string
	w        Workload
	clusters []ClusterInfo
	// want is "a:2 b:3 @term", or "!" and substrings of the reason
	// separated by "|".
	want string
}

func checkOverflowCases(t *testing.T, tests []overflowCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			got := scheduled(tt.w, tt.clusters)
			if strings.HasPrefix(tt.want, "!") {
				if !strings.HasPrefix(got, "!") {
					t.Fatalf("got %q, want unschedulable", got)
				}
				for _, s := range strings.Split(tt.want[1:], "|") {
					if !strings.Contains(got, s) {
						t.Fatalf("reason %q does not contain %q", got, s)
					}
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKarmadaOverflowAffinities(t *testing.T) {
	m1m2 := []ClusterInfo{pods(cl("member1", ""), 10), pods(cl("member2", ""), 10)}
	checkOverflowCases(t, []overflowCase{
		// pkg/scheduler/core/common_test.go TestAssignReplicas.
		{"common_test.go TestAssignReplicas/Overflow: primary group has enough capacity, no overflow needed",
			work(5, overflowPlacement(dynamic(), []string{"member1"}, []string{"member2"})), m1m2, "member1:5 @primary"},
		{"common_test.go TestAssignReplicas/Overflow: primary group capacity exhausted, remaining replicas overflow to next tier",
			work(5, overflowPlacement(dynamic(), []string{"member1"}, []string{"member2"})),
			[]ClusterInfo{pods(cl("member1", ""), 2), pods(cl("member2", ""), 10)}, "member1:2 member2:3 @primary"},
		{"common_test.go TestAssignReplicas/Overflow: all tiers exhausted, scheduling fails",
			work(10, overflowPlacement(dynamic(), []string{"member1"}, []string{"member2"})),
			[]ClusterInfo{pods(cl("member1", ""), 2), pods(cl("member2", ""), 2)},
			"!insufficient capacity|can take 4 replicas, 10 wanted"},
		// AvailableReplicas 5 = AllocatableReplicas 2 + the 3 replicas
		// member1 already runs: tier 0 takes min(8, 5) = 5, by scaling
		// member1 up by 2; the other 3 overflow.
		{"common_test.go TestAssignReplicas/Overflow: AvailableReplicas greater than AllocatableReplicas due to previously assigned replicas",
			work(8, overflowPlacement(dynamic(), []string{"member1"}, []string{"member2"}), tg("member1:3")...),
			[]ClusterInfo{pods(cl("member1", ""), 2), pods(cl("member2", ""), 10)}, "member1:5 member2:3 @primary"},

		// pkg/scheduler/core/common_test.go TestSelectClusters "select
		// clusters with overflow affinities": with one cluster to select,
		// the term's own cluster1 is taken although cluster2 scores
		// higher (here: more room, which Shoal ranks by).
		{"common_test.go TestSelectClusters/select clusters with overflow affinities",
			func() Workload {
				p := overflowPlacement(dynamic(), []string{"cluster1"}, []string{"cluster2"})
				p.SpreadConstraints = []api.SpreadConstraint{spread("cluster", 1, 1)}
				return work(1, p)
			}(),
			[]ClusterInfo{pods(cl("cluster1", ""), 1), pods(cl("cluster2", ""), 20)}, "cluster1:1 @primary"},

		// pkg/scheduler/core/spreadconstraint/group_clusters.go
		// getClusterOverflowOrder (no unit test there): a cluster belongs to
		// the first group that selects it. c is in the term's own affinity
		// and in overflow-1, d in overflow-1 and overflow-2.
		{"group_clusters.go getClusterOverflowOrder: the term's own affinity wins",
			work(4, overflowPlacement(dynamic(), []string{"a", "c"}, []string{"c", "b"})),
			[]ClusterInfo{pods(cl("a", ""), 2), pods(cl("b", ""), 10), pods(cl("c", ""), 2)}, "a:2 c:2 @primary"},
		{"group_clusters.go getClusterOverflowOrder: the first overflow tier wins",
			work(5, overflowPlacement(dynamic(), []string{"a"}, []string{"b", "d"}, []string{"d", "e"})),
			[]ClusterInfo{pods(cl("a", ""), 2), pods(cl("b", ""), 1), pods(cl("d", ""), 2), pods(cl("e", ""), 10)}, "a:2 b:1 d:2 @primary"},

		// pkg/scheduler/framework/plugins/clusteraffinity/cluster_affinity.go
		// Filter: only a workload may use the overflow tiers.
		{"cluster_affinity.go Filter: a kind without replicas uses only the term's own clusters",
			func() Workload {
				w := work(0, overflowPlacement(dynamic(), []string{"member1"}, []string{"member2"}))
				w.HasReplicas, w.PerReplica = false, api.Resources{}
				return w
			}(), m1m2, "member1:0 @primary"},
		{"cluster_affinity.go Filter: zero replicas requesting nothing is not a workload",
			func() Workload {
				w := work(0, overflowPlacement(dynamic(), []string{"x"}, []string{"member2"}))
				w.PerReplica = api.Resources{Pods: 1}
				return w
			}(), m1m2, `!0/2 clusters are feasible|does not match clusterAffinities term "primary" (not in clusterNames)`},
		{"cluster_affinity.go Filter: zero replicas that request resources is a workload",
			work(0, overflowPlacement(dynamic(), []string{"x"}, []string{"member2"})), m1m2, "member2:0 @primary"},

		// pkg/scheduler/core/common.go assignWorkloadReplicas: tiers in
		// order, each takes min(remaining, its available replicas); a tier
		// with nothing available is passed over.
		{"common.go assignWorkloadReplicas: a full tier is passed over",
			work(3, overflowPlacement(aggregated(), []string{"a"}, []string{"b"}, []string{"c"})),
			[]ClusterInfo{pods(cl("a", ""), 1), pods(cl("b", ""), 0), pods(cl("c", ""), 5)}, "a:1 c:2 @primary"},
		{"common.go assignWorkloadReplicas: replicas left after the last tier fall to the next term",
			func() Workload {
				p := overflowPlacement(dynamic(), []string{"a"}, []string{"b"})
				p.ClusterAffinities = append(p.ClusterAffinities, api.ClusterAffinityTerm{AffinityName: "backup",
					ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"c"}}})
				return work(6, p)
			}(),
			[]ClusterInfo{pods(cl("a", ""), 2), pods(cl("b", ""), 2), pods(cl("c", ""), 9)}, "c:6 @backup"},
		// Inside a tier the policy's own division applies, with only the
		// tier's clusters: Aggregated takes as few of them as it can.
		{"common.go assignWorkloadReplicas: Aggregated inside a tier",
			work(9, overflowPlacement(aggregated(), []string{"a"}, []string{"b", "c"})),
			[]ClusterInfo{pods(cl("a", ""), 4), pods(cl("b", ""), 3), pods(cl("c", ""), 6)}, "a:4 c:5 @primary"},
		// The weights of a tier come from calAvailableReplicas for the
		// whole workload (core/util.go): a cluster of unknown capacity
		// weighs all 20 replicas, not the tier's 5 (x:20 y:10 gives 3/2).
		{"util.go calAvailableReplicas: unknown capacity weighs the workload's replicas in every tier",
			work(20, overflowPlacement(dynamic(), []string{"a"}, []string{"x", "y"})),
			[]ClusterInfo{pods(cl("a", ""), 15), cl("x", ""), pods(cl("y", ""), 10)}, "a:15 x:3 y:2 @primary"},
		// enableOverflow does not look at the strategy: with Duplicated
		// (refused by the webhook, and by Shoal's validation) every
		// cluster of a tier runs that tier's share.
		{"common.go enableOverflow and assignByDuplicatedStrategy: Duplicated gets a share per tier",
			work(5, overflowPlacement(duplicated(), []string{"a", "b"}, []string{"c"})),
			[]ClusterInfo{pods(cl("a", ""), 2), pods(cl("b", ""), 1), pods(cl("c", ""), 10)}, "a:3 b:3 c:2 @primary"},
		// enableOverflow: clusterAffinity has no overflow.
		{"common.go enableOverflow: clusterAffinity divides as always",
			work(5, api.Placement{ClusterAffinity: &api.ClusterAffinity{ClusterNames: []string{"a", "b"}}, ReplicaScheduling: dynamic()}),
			[]ClusterInfo{pods(cl("a", ""), 2), pods(cl("b", ""), 10)}, "a:1 b:4 @"},
	})
}

// TestKarmadaOverflowDocumented follows what Karmada documents of the
// feature: its v1.18 release notes (docs/CHANGELOG/CHANGELOG-1.18.md:
// "progressive overflow", "reverse contraction") and the proposal
// (docs/proposals/scheduling/multi-scheduling-group/overflow-affinities:
// an unavailable primary cluster sends the replicas to the next tier; when
// it returns, nothing moves by itself).
func TestKarmadaOverflowDocumented(t *testing.T) {
	unreachable := api.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute, Added: testNow.Add(-time.Minute)}
	tiers := func(replicas int32, prev string) Workload {
		return work(replicas, overflowPlacement(dynamic(), []string{"idc"}, []string{"cloud-1"}, []string{"cloud-2"}), tg(prev)...)
	}
	// idc has room for 4 in all, cloud-1 for 3, cloud-2 for 10; free room
	// is what is left beside the previous replicas.
	clusters := func(idcFree, cloud1Free, cloud2Free int64) []ClusterInfo {
		return []ClusterInfo{pods(cl("idc", ""), idcFree), pods(cl("cloud-1", ""), cloud1Free), pods(cl("cloud-2", ""), cloud2Free)}
	}
	checkOverflowCases(t, []overflowCase{
		{"CHANGELOG-1.18 progressive overflow: first schedule", tiers(3, ""), clusters(4, 3, 10), "idc:3 @primary"},
		{"CHANGELOG-1.18 progressive overflow: scale up fills the primary, then tier 1, then tier 2",
			tiers(9, "idc:3"), clusters(1, 3, 10), "cloud-1:3 cloud-2:2 idc:4 @primary"},
		{"CHANGELOG-1.18 reverse contraction: the last tier in use shrinks first",
			tiers(8, "idc:4 cloud-1:3 cloud-2:2"), clusters(0, 0, 8), "cloud-1:3 cloud-2:1 idc:4 @primary"},
		{"CHANGELOG-1.18 reverse contraction: then the next one",
			tiers(5, "idc:4 cloud-1:3 cloud-2:1"), clusters(0, 0, 9), "cloud-1:1 idc:4 @primary"},
		{"CHANGELOG-1.18 reverse contraction: back to the primary alone",
			tiers(2, "idc:4 cloud-1:1"), clusters(0, 2, 10), "idc:2 @primary"},
		{"proposal: an unavailable primary cluster's replicas go to the next tier",
			tiers(5, "idc:4 cloud-1:1"),
			[]ClusterInfo{tainted(pods(cl("idc", ""), 0), unreachable), pods(cl("cloud-1", ""), 2), pods(cl("cloud-2", ""), 10)},
			"cloud-1:3 cloud-2:2 @primary"},
		{"proposal: when it is back, nothing moves by itself",
			tiers(5, "cloud-1:3 cloud-2:2"), clusters(4, 0, 8), "cloud-1:3 cloud-2:2 @primary"},
		{"proposal: a change of replicas reschedules, preferring the primary again",
			tiers(6, "cloud-1:3 cloud-2:2"), clusters(4, 0, 8), "cloud-1:2 idc:4 @primary"},
	})
}
