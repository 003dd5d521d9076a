package region

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/api"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cl builds a cluster; topology is "region/zones/provider", any part empty,
// zones comma-separated ("eu/z1,z2/aws").
func cl(name, topology string, kv ...string) ClusterInfo {
	parts := strings.Split(topology+"//", "/")
	c := ClusterInfo{ClusterFacts: api.ClusterFacts{Name: name, Region: parts[0], Provider: parts[2]}}
	if parts[1] != "" {
		c.Zones = strings.Split(parts[1], ",")
	}
	if len(kv) > 0 {
		c.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Labels[kv[i]] = kv[i+1]
		}
	}
	return c
}

func pods(c ClusterInfo, n int64) ClusterInfo {
	c.Available = &api.Resources{CPUMilli: n * 100, MemoryBytes: n << 20, Pods: n}
	return c
}

func tainted(c ClusterInfo, ts ...api.Taint) ClusterInfo {
	c.Taints = append(c.Taints, ts...)
	return c
}

var perReplica = api.Resources{CPUMilli: 100, MemoryBytes: 1 << 20, Pods: 1}

func duplicated() *api.ReplicaSchedulingStrategy {
	return &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDuplicated}
}

func static(ws ...api.StaticClusterWeight) *api.ReplicaSchedulingStrategy {
	return &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDivided,
		ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted,
		WeightPreference:          &api.ClusterPreferences{StaticWeightList: ws}}
}

func weight(w int64, names ...string) api.StaticClusterWeight {
	return api.StaticClusterWeight{TargetCluster: api.ClusterAffinity{ClusterNames: names}, Weight: w}
}

func dynamic() *api.ReplicaSchedulingStrategy {
	return &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDivided,
		ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted,
		WeightPreference:          &api.ClusterPreferences{DynamicWeight: api.DynamicWeightByAvailableReplicas}}
}

func aggregated() *api.ReplicaSchedulingStrategy {
	return &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDivided,
		ReplicaDivisionPreference: api.ReplicaDivisionPreferenceAggregated}
}

func spread(field api.SpreadFieldValue, minG, maxG int) api.SpreadConstraint {
	return api.SpreadConstraint{SpreadByField: field, MinGroups: minG, MaxGroups: maxG}
}

func work(replicas int32, p api.Placement, prev ...Target) Workload {
	return Workload{Key: api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
		HasReplicas: true, Replicas: replicas, PerReplica: perReplica, Placement: p, Previous: prev}
}

// tg parses "a:2 b:3" into targets.
func tg(s string) []Target {
	var out []Target
	for _, f := range strings.Fields(s) {
		var t Target
		i := strings.IndexByte(f, ':')
		t.Cluster = f[:i]
		fmt.Sscan(f[i+1:], &t.Replicas)
		out = append(out, t)
	}
	return out
}

func secs(s int64) *int64 { return &s }

func TestSchedule(t *testing.T) {
	abc := []ClusterInfo{cl("a", "eu/eu-1/aws"), cl("b", "eu/eu-2/gcp"), cl("c", "us/us-1/aws")}
	unreachable := api.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute, Added: testNow.Add(-time.Minute)}
	tests := []struct {
		name     string
		w        Workload
		clusters []ClusterInfo
		want     string // targets "a:1 b:2"; "!" + reason substrings separated by "|" for unschedulable
		term     string
		filtered string // "c=not in clusterNames" pairs separated by "|"
	}{
		// Affinity.
		{name: "no placement duplicates everywhere", w: work(2, api.Placement{}), clusters: abc, want: "a:2 b:2 c:2"},
		{name: "clusterNames", w: work(2, api.Placement{ClusterAffinity: &api.ClusterAffinity{ClusterNames: []string{"a", "b"}}, ReplicaScheduling: duplicated()}),
			clusters: abc, want: "a:2 b:2", filtered: "c=does not match clusterAffinity (not in clusterNames)"},
		{name: "exclude", w: work(2, api.Placement{ClusterAffinity: &api.ClusterAffinity{ExcludeClusters: []string{"a"}}, ReplicaScheduling: duplicated()}),
			clusters: abc, want: "b:2 c:2", filtered: "a=does not match clusterAffinity (excluded)"},
		{name: "labelSelector", w: work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}),
			clusters: []ClusterInfo{cl("a", "", "env", "prod"), cl("b", "", "env", "dev")}, want: "a:1", filtered: "b=does not match clusterAffinity (labelSelector does not match)"},
		{name: "fieldSelector In", w: work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{FieldSelector: &api.FieldSelector{MatchExpressions: []api.FieldSelectorRequirement{{Key: "region", Operator: "In", Values: []string{"us"}}}}}}),
			clusters: abc, want: "c:1", filtered: "a=does not match clusterAffinity (fieldSelector region In [us])|b="},
		{name: "fieldSelector NotIn", w: work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{FieldSelector: &api.FieldSelector{MatchExpressions: []api.FieldSelectorRequirement{{Key: "provider", Operator: "NotIn", Values: []string{"aws"}}}}}}),
			clusters: abc, want: "b:1", filtered: "a=does not match clusterAffinity (fieldSelector provider NotIn [aws])|c="},
		{name: "fieldSelector Exists", w: work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{FieldSelector: &api.FieldSelector{MatchExpressions: []api.FieldSelectorRequirement{{Key: "zone", Operator: "Exists"}}}}}),
			clusters: []ClusterInfo{cl("a", "eu/z1/"), cl("b", "eu//")}, want: "a:1", filtered: "b=does not match clusterAffinity (fieldSelector zone Exists)"},

		// Tolerations.
		{name: "NoSchedule filters", w: work(1, api.Placement{}), clusters: []ClusterInfo{tainted(cl("a", ""), api.Taint{Key: "maint", Effect: api.TaintEffectNoSchedule}), cl("b", "")},
			want: "b:1", filtered: "a=taint maint:NoSchedule not tolerated"},
		{name: "NoSchedule tolerated", w: work(1, api.Placement{ClusterTolerations: []api.Toleration{{Key: "maint", Operator: "Exists"}}}),
			clusters: []ClusterInfo{tainted(cl("a", ""), api.Taint{Key: "maint", Effect: api.TaintEffectNoSchedule}), cl("b", "")}, want: "a:1 b:1"},
		{name: "NoSchedule keeps running workloads", w: work(4, api.Placement{ReplicaScheduling: dynamic()}, tg("a:2 b:2")...),
			clusters: []ClusterInfo{tainted(cl("a", ""), api.Taint{Key: "maint", Value: "x", Effect: api.TaintEffectNoSchedule}), cl("b", "")}, want: "a:2 b:2"},
		{name: "NoExecute moves running workloads", w: work(4, api.Placement{ReplicaScheduling: dynamic()}, tg("a:2 b:2")...),
			clusters: []ClusterInfo{tainted(cl("a", ""), unreachable), cl("b", "")}, want: "b:4", filtered: "a=taint cluster.karmada.io/unreachable:NoExecute not tolerated"},
		{name: "tolerationSeconds not yet run out", w: work(4, api.Placement{ReplicaScheduling: dynamic(), ClusterTolerations: []api.Toleration{
			{Key: api.TaintClusterUnreachable, Operator: "Exists", Effect: api.TaintEffectNoExecute, TolerationSeconds: secs(300)}}}, tg("a:2 b:2")...),
			clusters: []ClusterInfo{tainted(cl("a", ""), unreachable), cl("b", "")}, want: "a:2 b:2"},
		{name: "tolerationSeconds run out", w: work(4, api.Placement{ReplicaScheduling: dynamic(), ClusterTolerations: []api.Toleration{
			{Key: api.TaintClusterUnreachable, Operator: "Exists", Effect: api.TaintEffectNoExecute, TolerationSeconds: secs(30)}}}, tg("a:2 b:2")...),
			clusters: []ClusterInfo{tainted(cl("a", ""), unreachable), cl("b", "")}, want: "b:4", filtered: "a=taint cluster.karmada.io/unreachable"},
		{name: "PreferNoSchedule only lowers preference", w: work(3, api.Placement{ReplicaScheduling: aggregated()}),
			clusters: []ClusterInfo{tainted(cl("a", ""), api.Taint{Key: "busy", Effect: api.TaintEffectPreferNoSchedule}), cl("b", "")}, want: "b:3"},
		{name: "PreferNoSchedule cluster still used", w: work(3, api.Placement{ReplicaScheduling: aggregated()}),
			clusters: []ClusterInfo{tainted(cl("a", ""), api.Taint{Key: "busy", Effect: api.TaintEffectPreferNoSchedule})}, want: "a:3"},

		// clusterAffinities.
		{name: "affinities first term", w: work(1, api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{
			{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"a"}}},
			{AffinityName: "backup", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"c"}}}}}),
			clusters: abc, want: "a:1", term: "primary"},
		{name: "affinities fall through on no feasible cluster", w: work(1, api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{
			{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"a"}}},
			{AffinityName: "backup", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"c"}}}}}),
			clusters: []ClusterInfo{tainted(cl("a", ""), unreachable), cl("b", ""), cl("c", "")}, want: "c:1", term: "backup",
			filtered: `a=does not match clusterAffinities term "backup" (not in clusterNames)`},
		{name: "affinities fall through on capacity", w: work(5, api.Placement{ReplicaScheduling: dynamic(), ClusterAffinities: []api.ClusterAffinityTerm{
			{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"a"}}},
			{AffinityName: "backup", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"b"}}}}}),
			clusters: []ClusterInfo{pods(cl("a", ""), 4), pods(cl("b", ""), 10)}, want: "b:5", term: "backup"},
		{name: "affinities stay on the observed term", w: func() Workload {
			w := work(1, api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{
				{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"a"}}},
				{AffinityName: "backup", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"c"}}}}}, tg("c:1")...)
			w.PreviousAffinityTerm = "backup"
			return w
		}(), clusters: abc, want: "c:1", term: "backup"},
		{name: "affinities unknown observed term starts at the first", w: func() Workload {
			w := work(1, api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{
				{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"a"}}}}})
			w.PreviousAffinityTerm = "gone"
			return w
		}(), clusters: abc, want: "a:1", term: "primary"},
		{name: "affinities all fail", w: work(1, api.Placement{ClusterAffinities: []api.ClusterAffinityTerm{
			{AffinityName: "primary", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"x"}}},
			{AffinityName: "backup", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"y"}}}}}),
			clusters: abc, want: `!no clusterAffinities term is feasible|term "primary": 0/3 clusters are feasible|term "backup": 0/3`},

		// Spread constraints.
		{name: "spread by cluster maxGroups", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("cluster", 1, 2)}}),
			clusters: abc, want: "a:2 b:2"},
		{name: "spread by cluster keeps previous clusters", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("cluster", 1, 2)}}, tg("b:2 c:2")...),
			clusters: abc, want: "b:2 c:2"},
		{name: "spread by cluster prefers room", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("cluster", 1, 1)}}),
			clusters: []ClusterInfo{pods(cl("a", ""), 1), pods(cl("b", ""), 9)}, want: "b:2"},
		{name: "spread by cluster minGroups unmet", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("cluster", 4, 4)}}),
			clusters: abc, want: "!3/3 clusters feasible, but spreadConstraints: 3 clusters selectable, minGroups is 4"},
		{name: "spread by region", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("region", 1, 1)}}),
			clusters: abc, want: "a:2 b:2"},
		{name: "spread by region two groups one cluster each", w: work(2, api.Placement{ReplicaScheduling: duplicated(),
			SpreadConstraints: []api.SpreadConstraint{spread("region", 2, 2), spread("cluster", 2, 2)}}),
			clusters: abc, want: "a:2 c:2"},
		{name: "spread by region minGroups unmet", w: work(2, api.Placement{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("region", 3, 3)}}),
			clusters: abc, want: "!spreadConstraints: 2 region among feasible clusters (eu, us), minGroups is 3"},
		{name: "spread by region filters clusters without one", w: work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{spread("region", 1, 2)}}),
			clusters: append([]ClusterInfo{cl("x", "")}, abc...), want: "a:1 b:1", filtered: "x=has no region to spread by"},
		{name: "spread by zone", w: work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{spread("zone", 2, 2)}}),
			clusters: []ClusterInfo{cl("a", "eu/z1/"), cl("b", "eu/z1/"), cl("c", "eu/z2/"), cl("d", "eu/z3/")}, want: "a:1 b:1 c:1"},
		{name: "spread by provider", w: work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{spread("provider", 1, 1)}}, tg("c:1")...),
			clusters: abc, want: "a:1 c:1"},
		{name: "spread by label", w: work(1, api.Placement{SpreadConstraints: []api.SpreadConstraint{{SpreadByLabel: "rack", MinGroups: 2, MaxGroups: 2}}}),
			clusters: []ClusterInfo{cl("a", "", "rack", "r1"), cl("b", "", "rack", "r2"), cl("c", "", "rack", "r3"), cl("d", "")}, want: "a:1 b:1",
			filtered: `d=has no label "rack" to spread by`},
		{name: "spread with dynamic weights adds groups for room", w: work(10, api.Placement{ReplicaScheduling: dynamic(), SpreadConstraints: []api.SpreadConstraint{spread("region", 1, 3)}}),
			clusters: []ClusterInfo{pods(cl("a", "eu//"), 6), pods(cl("c", "us//"), 6)}, want: "a:5 c:5"},
		{name: "static weights ignore spread constraints like Karmada", w: work(4, api.Placement{ReplicaScheduling: static(weight(1, "a", "b", "c")), SpreadConstraints: []api.SpreadConstraint{spread("cluster", 1, 1)}}),
			clusters: abc, want: "a:2 b:1 c:1"},

		// Replica scheduling.
		{name: "duplicated", w: work(3, api.Placement{ReplicaScheduling: duplicated()}), clusters: abc, want: "a:3 b:3 c:3"},
		{name: "static weights 1:2", w: work(9, api.Placement{ReplicaScheduling: static(weight(1, "a"), weight(2, "b"))}), clusters: abc, want: "a:3 b:6"},
		{name: "static weights 1:3 remainder to the heavier", w: work(9, api.Placement{ReplicaScheduling: static(weight(1, "a"), weight(3, "b"))}), clusters: abc, want: "a:2 b:7"},
		{name: "static remainder by name", w: work(7, api.Placement{ReplicaScheduling: static(weight(1, "a", "b"))}), clusters: abc, want: "a:4 b:3"},
		{name: "static ties ignore previous replicas", w: work(7, api.Placement{ReplicaScheduling: static(weight(1, "a", "b"))}, tg("a:3 b:4")...), clusters: abc, want: "a:4 b:3"},
		{name: "static ties by name descending for an odd uid", w: func() Workload {
			w := work(7, api.Placement{ReplicaScheduling: static(weight(1, "a", "b"))})
			w.UID = karmadaOddUID
			return w
		}(), clusters: abc, want: "a:3 b:4"},
		{name: "static largest matching weight", w: work(4, api.Placement{ReplicaScheduling: static(weight(1, "a", "b"), weight(3, "b"))}), clusters: abc, want: "a:1 b:3"},
		{name: "static all zero means equal", w: work(3, api.Placement{ReplicaScheduling: static(weight(0, "a"))}), clusters: abc, want: "a:1 b:1 c:1"},
		{name: "static without preference means equal", w: work(4, api.Placement{ReplicaScheduling: &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDivided}}),
			clusters: abc, want: "a:2 b:1 c:1"},
		{name: "dynamic by available replicas", w: work(6, api.Placement{ReplicaScheduling: dynamic()}),
			clusters: []ClusterInfo{pods(cl("a", ""), 6), pods(cl("b", ""), 3), pods(cl("c", ""), 0)}, want: "a:4 b:2"},
		{name: "dynamic min over cpu memory pods", w: work(3, api.Placement{ReplicaScheduling: dynamic()}),
			clusters: []ClusterInfo{{ClusterFacts: api.ClusterFacts{Name: "a"}, Available: &api.Resources{CPUMilli: 150, MemoryBytes: 100 << 20, Pods: 100}}, pods(cl("b", ""), 2)},
			want:     "a:1 b:2"},
		{name: "dynamic unknown capacity weighs the whole count", w: work(4, api.Placement{ReplicaScheduling: dynamic()}),
			clusters: []ClusterInfo{cl("a", ""), pods(cl("b", ""), 4)}, want: "a:2 b:2"},
		{name: "dynamic insufficient capacity", w: work(10, api.Placement{ReplicaScheduling: dynamic()}),
			clusters: []ClusterInfo{pods(cl("a", ""), 6), pods(cl("b", ""), 3)}, want: "!2/2 clusters feasible, but insufficient capacity: the selected clusters can take 9 more replicas, 10 needed"},
		{name: "dynamic scale up moves nothing", w: work(9, api.Placement{ReplicaScheduling: dynamic()}, tg("a:4 b:2")...),
			clusters: []ClusterInfo{pods(cl("a", ""), 6), pods(cl("b", ""), 3)}, want: "a:6 b:3"},
		{name: "dynamic scale down proportionally", w: work(3, api.Placement{ReplicaScheduling: dynamic()}, tg("a:4 b:2")...),
			clusters: []ClusterInfo{pods(cl("a", ""), 6), pods(cl("b", ""), 3)}, want: "a:2 b:1"},
		{name: "dynamic lost cluster moves only its replicas", w: work(6, api.Placement{ReplicaScheduling: dynamic()}, tg("a:4 b:2")...),
			clusters: []ClusterInfo{pods(cl("a", ""), 6), pods(cl("c", ""), 10)}, want: "a:5 c:1"},
		{name: "aggregated fewest clusters", w: work(6, api.Placement{ReplicaScheduling: aggregated()}),
			clusters: []ClusterInfo{pods(cl("a", ""), 3), pods(cl("b", ""), 10), pods(cl("c", ""), 5)}, want: "b:6"},
		{name: "aggregated spills over", w: work(12, api.Placement{ReplicaScheduling: aggregated()}),
			clusters: []ClusterInfo{pods(cl("a", ""), 3), pods(cl("b", ""), 10), pods(cl("c", ""), 5)}, want: "b:8 c:4"},
		{name: "aggregated scale up stays on previous", w: work(5, api.Placement{ReplicaScheduling: aggregated()}, tg("a:2")...),
			clusters: []ClusterInfo{pods(cl("a", ""), 3), pods(cl("b", ""), 10)}, want: "a:5"},
		{name: "aggregated scale down drops the smallest", w: work(7, api.Placement{ReplicaScheduling: aggregated()}, tg("a:5 b:3 c:2")...),
			clusters: abc, want: "a:4 b:3"},
		{name: "no replicas kind goes everywhere with 0", w: Workload{Placement: api.Placement{ReplicaScheduling: dynamic()}}, clusters: abc, want: "a:0 b:0 c:0"},
		{name: "zero replicas keep the placement", w: work(0, api.Placement{ReplicaScheduling: dynamic(), ClusterAffinity: &api.ClusterAffinity{ClusterNames: []string{"a", "b"}}}),
			clusters: abc, want: "a:0 b:0"},

		// Robustness and diagnosis.
		{name: "unschedulable names filters and clusters", w: work(1, api.Placement{ClusterAffinity: &api.ClusterAffinity{ClusterNames: []string{"a", "c"}},
			SpreadConstraints: []api.SpreadConstraint{spread("zone", 1, 1)}}),
			clusters: []ClusterInfo{tainted(cl("a", "eu/z1/"), unreachable), cl("b", "eu/z1/"), cl("c", "us//")},
			want:     "!0/3 clusters are feasible: a: taint cluster.karmada.io/unreachable:NoExecute not tolerated; b: does not match clusterAffinity (not in clusterNames); c: has no zone to spread by"},
		{name: "duplicate cluster names are refused", w: work(1, api.Placement{}), clusters: []ClusterInfo{cl("a", ""), cl("a", "eu//"), cl("b", "")},
			want: "b:1", filtered: "a=duplicate cluster name"},
		{name: "no clusters", w: work(1, api.Placement{}), want: "!0/0 clusters are feasible"},
		{name: "unknown strategy", w: work(1, api.Placement{ReplicaScheduling: &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: "Tripled"}}),
			clusters: abc, want: `!unknown replicaSchedulingType "Tripled"`},
		{name: "negative replicas count as zero", w: work(-3, api.Placement{ReplicaScheduling: dynamic()}), clusters: abc[:1], want: "a:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Schedule(tt.w, tt.clusters, testNow)
			if strings.HasPrefix(tt.want, "!") {
				if !r.Unschedulable || r.Targets != nil {
					t.Fatalf("want unschedulable, got %+v", r)
				}
				for _, s := range strings.Split(tt.want[1:], "|") {
					if !strings.Contains(r.Reason, s) {
						t.Fatalf("reason %q does not contain %q", r.Reason, s)
					}
				}
				return
			}
			if r.Unschedulable {
				t.Fatalf("unschedulable: %s", r.Reason)
			}
			if want := tg(tt.want); !reflect.DeepEqual(r.Targets, want) {
				t.Fatalf("targets = %v, want %v (%s)", r.Targets, want, r.Reason)
			}
			if r.AffinityTerm != tt.term {
				t.Fatalf("term = %q, want %q", r.AffinityTerm, tt.term)
			}
			got := map[string]string{}
			for _, d := range r.Filtered {
				got[d.Cluster] = d.Reason
			}
			if tt.filtered != "" {
				for _, f := range strings.Split(tt.filtered, "|") {
					name, reason, _ := strings.Cut(f, "=")
					if !strings.HasPrefix(got[name], reason) || got[name] == "" {
						t.Fatalf("filtered[%s] = %q, want prefix %q (all: %v)", name, got[name], reason, r.Filtered)
					}
				}
			}
		})
	}
}
