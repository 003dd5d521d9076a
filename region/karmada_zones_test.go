package region

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// Compatibility with Karmada's handling of clusters in several zones
// (spec.zones), read at commit f8fdd02d (v1.19.0-rc.0-18). The first tests
// take the inputs and verdicts of Karmada's own unit tests, naming each;
// the last one holds Shoal's cases for what Karmada's code does but no
// Karmada test shows (a cluster in several zone groups), naming the code.
// Karmada selects by region and cluster only; Shoal also selects zone
// groups (see spread.go), counting them as Karmada's grouping does.

func TestKarmadaSpreadFilterZones(t *testing.T) {
	// pkg/scheduler/framework/plugins/spreadconstraint/spread_constraint_test.go,
	// TestSpreadConstraint_Filter: "spread by zone - zones present" passes,
	// "spread by zone - zones missing" is unschedulable ("cluster(s) did
	// not have zones property").
	w := work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{spread("zone", 1, 1)}})
	r := Schedule(w, []ClusterInfo{cl("present", "/us-west-2a/"), cl("missing", "")}, testNow)
	if got := asMap(r.Targets); !reflect.DeepEqual(got, map[string]int32{"present": 1}) {
		t.Fatalf("targets %v (%s), want present only", r.Targets, r.Reason)
	}
	if len(r.Filtered) != 1 || r.Filtered[0].Cluster != "missing" || r.Filtered[0].Reason != "has no zone to spread by" {
		t.Fatalf("filtered %v", r.Filtered)
	}
}

// groupCount counts the groups of each spread constraint over candidates.
func groupCount(t *testing.T, scs []api.SpreadConstraint, cs []ClusterInfo) map[string]int {
	t.Helper()
	plan, err := parseSpread(scs)
	if err != nil {
		t.Fatal(err)
	}
	var cands []*schedCandidate
	for _, c := range cs {
		cands = append(cands, &schedCandidate{ClusterInfo: c})
	}
	out := map[string]int{}
	for _, g := range plan.groups {
		groups, _ := groupCandidates(cands, g.keys)
		out[g.noun] = len(groups)
	}
	return out
}

func TestKarmadaGroupClustersZones(t *testing.T) {
	// pkg/scheduler/core/spreadconstraint/group_clusters_test.go,
	// generateClusterScore and Test_GroupClustersWithScore: four clusters
	// (member1 P1/R1/Z1, member2 P1/R1/Z2, member3 P2/R1/Z1, member4
	// P2/R2/Z2), counted in groups only for the fields spread by.
	members := []ClusterInfo{cl("member1", "R1/Z1/P1"), cl("member2", "R1/Z2/P1"), cl("member3", "R1/Z1/P2"), cl("member4", "R2/Z2/P2")}
	one := func(f api.SpreadFieldValue) api.SpreadConstraint { return spread(f, 1, 1) }
	for _, tt := range []struct {
		name string
		scs  []api.SpreadConstraint
		want map[string]int
	}{
		{"test SpreadConstraints is nil", nil, map[string]int{}},
		{"test SpreadConstraints is cluster", []api.SpreadConstraint{one("cluster")}, map[string]int{}},
		{"test SpreadConstraints is zone", []api.SpreadConstraint{one("zone")}, map[string]int{"zone": 2}},
		{"test SpreadConstraints is region", []api.SpreadConstraint{one("region")}, map[string]int{"region": 2}},
		{"test SpreadConstraints is provider", []api.SpreadConstraint{one("provider")}, map[string]int{"provider": 2}},
		{"test SpreadConstraints is provider/region/zone", []api.SpreadConstraint{one("provider"), one("region"), one("zone")},
			map[string]int{"provider": 2, "region": 2, "zone": 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := groupCount(t, tt.scs, members); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("groups %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKarmadaZoneGroupsOfMultiZoneClusters(t *testing.T) {
	// pkg/scheduler/core/spreadconstraint/group_clusters.go,
	// generateZoneInfo: a cluster is appended to the group of each of its
	// spec.zones, and its available replicas added to each group's.
	a := pods(cl("a", "eu/z1,z2/"), 4)
	b := pods(cl("b", "eu/z2/"), 3)
	cands := []*schedCandidate{{ClusterInfo: a}, {ClusterInfo: b}}
	for _, c := range cands {
		*c = (&schedRun{w: work(1, api.Placement{})}).newCandidate(c.ClusterInfo, 0)
	}
	groups, overlap := groupCandidates(cands, func(c api.ClusterFacts, _ []string) []string { return c.Zones })
	if !overlap {
		t.Error("a cluster in two zone groups is not reported as overlap")
	}
	got := map[string][]string{}
	room := map[string]int64{}
	for _, g := range groups {
		for _, c := range g.clusters {
			got[g.value] = append(got[g.value], c.Name)
			room[g.value] += c.room()
		}
	}
	if want := map[string][]string{"z1": {"a"}, "z2": {"a", "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("zone groups %v, want %v", got, want)
	}
	if want := map[string]int64{"z1": 4, "z2": 7}; !reflect.DeepEqual(room, want) {
		t.Errorf("zone groups' room %v, want %v", room, want)
	}
	if n := len(distinctClusters(groups)); n != 2 {
		t.Errorf("the two groups hold %d clusters, want 2 (a once)", n)
	}
}

func TestKarmadaZonesScheduling(t *testing.T) {
	// Shoal's selection over Karmada's zone groups. Karmada counts groups,
	// not clusters: len(GroupClustersInfo.Zones) against minGroups
	// (select_clusters_by_region.go does so for regions) and the groups
	// of a path against [minGroups, maxGroups] (select_groups.go,
	// findFeasiblePaths); fieldSelector zone rules are matchZones'
	// (pkg/util/selector.go).
	dup := func(n int32, scs ...api.SpreadConstraint) Workload {
		return work(n, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: scs})
	}
	field := func(op string, vals ...string) Workload {
		return work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{FieldSelector: &api.FieldSelector{
			MatchExpressions: []api.FieldSelectorRequirement{{Key: "zone", Operator: op, Values: vals}}}}})
	}
	tests := []struct {
		name     string
		w        Workload
		clusters []ClusterInfo
		want     string // as TestSchedule's
		filtered string
	}{
		{name: "one cluster in two zones makes two zone groups (generateZoneInfo)",
			w:        dup(2, spread("zone", 2, 2), spread("cluster", 1, 1)),
			clusters: []ClusterInfo{pods(cl("a", "eu/z1,z2/"), 5)}, want: "a:2"},
		{name: "two clusters in one zone make one zone group",
			w:        dup(2, spread("zone", 2, 2), spread("cluster", 1, 2)),
			clusters: []ClusterInfo{pods(cl("b", "eu/z1/"), 5), pods(cl("c", "eu/z1/"), 5)},
			want:     "!1 zone among feasible clusters (z1), minGroups is 2"},
		{name: "minGroups met by the zones of a multi-zone and a single-zone cluster",
			w:        dup(2, spread("zone", 3, 3), spread("cluster", 2, 2)),
			clusters: []ClusterInfo{pods(cl("a", "eu/z1,z2/"), 5), pods(cl("b", "eu/z3/"), 5)}, want: "a:2 b:2"},
		{name: "the kept cluster covers the chosen groups (cluster maxGroups below zone minGroups)",
			w:        dup(2, spread("zone", 2, 2), spread("cluster", 1, 1)),
			clusters: []ClusterInfo{pods(cl("x", "eu/z1/"), 10), pods(cl("y", "eu/z1,z2/"), 5)}, want: "y:2"},
		{name: "maxGroups counts the groups chosen, not the other zones of their clusters",
			w:        dup(2, spread("zone", 1, 1), spread("cluster", 1, 1)),
			clusters: []ClusterInfo{pods(cl("a", "eu/z1,z2,z3/"), 5)}, want: "a:2"},
		{name: "stickiness adds no group whose previous clusters are already kept",
			w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("zone", 1, 2), spread("cluster", 1, 3)}},
				tg("a:2")...),
			clusters: []ClusterInfo{pods(cl("a", "eu/z1,z2/"), 5), pods(cl("d", "eu/z1/"), 5), pods(cl("e", "eu/z2/"), 5)}, want: "a:2 d:2"},
		{name: "fieldSelector zone In: any zone of the cluster (matchZones)", w: field("In", "z2"),
			clusters: []ClusterInfo{cl("a", "eu/z1,z2/"), cl("b", "eu/z1/")}, want: "a:1",
			filtered: "b=does not match clusterAffinity (fieldSelector zone In [z2])"},
		{name: "fieldSelector zone NotIn: none of its zones (matchZones)", w: field("NotIn", "z2"),
			clusters: []ClusterInfo{cl("a", "eu/z1,z2/"), cl("b", "eu/z1/"), cl("c", "eu//")}, want: "b:1 c:1",
			filtered: "a=does not match clusterAffinity (fieldSelector zone NotIn [z2])"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Schedule(tt.w, tt.clusters, testNow)
			if msg, ok := strings.CutPrefix(tt.want, "!"); ok {
				if !r.Unschedulable || !strings.Contains(r.Reason, msg) {
					t.Fatalf("want unschedulable with %q, got %+v", msg, r)
				}
				return
			}
			if r.Unschedulable {
				t.Fatalf("unschedulable: %s", r.Reason)
			}
			if want := tg(tt.want); !reflect.DeepEqual(r.Targets, want) {
				t.Fatalf("targets = %v, want %v (%s)", r.Targets, want, r.Reason)
			}
			if tt.filtered != "" {
				name, reason, _ := strings.Cut(tt.filtered, "=")
				if !slices.ContainsFunc(r.Filtered, func(d Diagnosis) bool { return d.Cluster == name && d.Reason == reason }) {
					t.Fatalf("filtered %v, want %s: %s", r.Filtered, name, reason)
				}
			}
		})
	}
}
