package region

import (
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shoalmesh/shoal/api"
)

// Random clusters and placements for the scheduler's property test
// (scheduler_reference_test.go), and a test that Schedule never panics on
// inputs that defaulting and validation would refuse.

func genCluster(t *rapid.T, name string) ClusterInfo {
	c := ClusterInfo{ClusterFacts: api.ClusterFacts{
		Name:     name,
		Region:   rapid.SampledFrom([]string{"", "r1", "r2", "r3"}).Draw(t, "region"),
		Zones:    rapid.SampledFrom([][]string{nil, {"z1"}, {"z2"}, {"z3"}, {"z1", "z2"}, {"z2", "z3"}, {"z1", "z2", "z3"}}).Draw(t, "zones"),
		Provider: rapid.SampledFrom([]string{"", "p1", "p2"}).Draw(t, "provider"),
	}}
	if rack := rapid.SampledFrom([]string{"", "k1", "k2"}).Draw(t, "rack"); rack != "" {
		c.Labels = map[string]string{"rack": rack}
	}
	for range rapid.IntRange(0, 2).Draw(t, "ntaints") {
		c.Taints = append(c.Taints, api.Taint{
			Key:    rapid.SampledFrom([]string{api.TaintClusterUnreachable, api.TaintClusterNotReady, "maint"}).Draw(t, "tkey"),
			Effect: rapid.SampledFrom([]string{api.TaintEffectNoSchedule, api.TaintEffectNoExecute, api.TaintEffectPreferNoSchedule}).Draw(t, "teffect"),
			Added:  testNow.Add(-time.Duration(rapid.IntRange(0, 600).Draw(t, "tage")) * time.Second),
		})
	}
	if rapid.Bool().Draw(t, "known") {
		n := int64(rapid.IntRange(0, 25).Draw(t, "avail"))
		c.Available = &api.Resources{CPUMilli: n * 100, MemoryBytes: n << 20, Pods: n + int64(rapid.IntRange(0, 3).Draw(t, "podslack"))}
	}
	return c
}

var names = []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}

func genPlacement(t *rapid.T) api.Placement {
	var p api.Placement
	subset := func(label string) []string {
		var out []string
		for _, n := range names {
			if rapid.IntRange(0, 3).Draw(t, label) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	genAff := func() api.ClusterAffinity {
		var a api.ClusterAffinity
		switch rapid.IntRange(0, 4).Draw(t, "affkind") {
		case 1:
			a.ClusterNames = subset("names")
		case 2:
			a.ExcludeClusters = subset("exclude")
		case 3:
			a.FieldSelector = &api.FieldSelector{MatchExpressions: []api.FieldSelectorRequirement{{
				Key:      rapid.SampledFrom([]string{"region", "zone", "provider"}).Draw(t, "fkey"),
				Operator: rapid.SampledFrom([]string{"In", "NotIn", "Exists", "DoesNotExist"}).Draw(t, "fop"),
				Values:   []string{rapid.SampledFrom([]string{"r1", "z2", "p1"}).Draw(t, "fval")},
			}}}
		}
		return a
	}
	switch rapid.IntRange(0, 2).Draw(t, "affinity") {
	case 1:
		a := genAff()
		p.ClusterAffinity = &a
	case 2:
		for i := range rapid.IntRange(1, 3).Draw(t, "nterms") {
			p.ClusterAffinities = append(p.ClusterAffinities, api.ClusterAffinityTerm{AffinityName: names[i], ClusterAffinity: genAff()})
		}
	}
	for range rapid.IntRange(0, 2).Draw(t, "ntols") {
		tol := api.Toleration{Key: rapid.SampledFrom([]string{"", api.TaintClusterUnreachable, "maint"}).Draw(t, "tolkey"), Operator: "Exists"}
		if rapid.Bool().Draw(t, "tolsecs") {
			s := int64(rapid.IntRange(0, 600).Draw(t, "secs"))
			tol.Effect, tol.TolerationSeconds = api.TaintEffectNoExecute, &s
		}
		p.ClusterTolerations = append(p.ClusterTolerations, tol)
	}
	fields := []api.SpreadFieldValue{"cluster", "region", "zone", "provider", ""}
	for _, i := range rapid.Permutation([]int{0, 1, 2, 3, 4}).Draw(t, "spreadorder")[:rapid.IntRange(0, 2).Draw(t, "nspread")] {
		minG := rapid.IntRange(1, 3).Draw(t, "min")
		sc := api.SpreadConstraint{SpreadByField: fields[i], MinGroups: minG, MaxGroups: minG + rapid.IntRange(0, 2).Draw(t, "extra")}
		if fields[i] == "" {
			sc.SpreadByLabel = "rack"
		}
		p.SpreadConstraints = append(p.SpreadConstraints, sc)
	}
	divided := api.ReplicaSchedulingTypeDivided
	switch rapid.IntRange(0, 5).Draw(t, "strategy") {
	case 1:
		p.ReplicaScheduling = &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDuplicated}
	case 2:
		var ws []api.StaticClusterWeight
		for range rapid.IntRange(0, 3).Draw(t, "nweights") {
			ws = append(ws, api.StaticClusterWeight{TargetCluster: api.ClusterAffinity{ClusterNames: subset("wnames")}, Weight: int64(rapid.IntRange(0, 5).Draw(t, "w"))})
		}
		p.ReplicaScheduling = &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: divided, ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted,
			WeightPreference: &api.ClusterPreferences{StaticWeightList: ws}}
	case 3:
		p.ReplicaScheduling = &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: divided, ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted,
			WeightPreference: &api.ClusterPreferences{DynamicWeight: api.DynamicWeightByAvailableReplicas}}
	case 4:
		p.ReplicaScheduling = &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: divided, ReplicaDivisionPreference: api.ReplicaDivisionPreferenceAggregated}
	case 5:
		p.ReplicaScheduling = &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: divided, ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted}
	}
	// overflowAffinities, where validation allows them: the term selects
	// its own clusters and replicas are divided by room.
	if rs := p.ReplicaScheduling; rs != nil && (rs.WeightPreference != nil && rs.WeightPreference.DynamicWeight != "" ||
		rs.ReplicaDivisionPreference == api.ReplicaDivisionPreferenceAggregated) {
		for i := range p.ClusterAffinities {
			term := &p.ClusterAffinities[i]
			if reflect.ValueOf(term.ClusterAffinity).IsZero() {
				continue
			}
			for j := range rapid.IntRange(0, 2).Draw(t, "noverflow") {
				term.OverflowAffinities = append(term.OverflowAffinities, api.OverflowClusterAffinity{AffinityName: names[j+4], ClusterAffinity: genAff()})
			}
		}
	}
	return p
}

// refFeasible is the naive filter: which clusters may run the workload under
// one affinity.

// TestScheduleNeverPanics feeds inputs defaulting and validation would
// reject.
func TestScheduleNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var clusters []ClusterInfo
		for range rapid.IntRange(0, 6).Draw(t, "n") {
			c := ClusterInfo{ClusterFacts: api.ClusterFacts{Name: rapid.SampledFrom([]string{"", "a", "b", "c"}).Draw(t, "name")}}
			if rapid.Bool().Draw(t, "avail") {
				c.Available = &api.Resources{CPUMilli: rapid.Int64().Draw(t, "cpu"), MemoryBytes: rapid.Int64().Draw(t, "mem"), Pods: rapid.Int64().Draw(t, "pods")}
			}
			clusters = append(clusters, c)
		}
		w := Workload{HasReplicas: rapid.Bool().Draw(t, "has"), Replicas: rapid.Int32().Draw(t, "replicas"),
			PerReplica: api.Resources{CPUMilli: rapid.Int64().Draw(t, "pcpu"), Pods: rapid.Int64Range(-1, 2).Draw(t, "ppods")}}
		w.Placement.ReplicaScheduling = &api.ReplicaSchedulingStrategy{
			ReplicaSchedulingType:     api.ReplicaSchedulingType(rapid.SampledFrom([]string{"", "Divided", "Duplicated", "x"}).Draw(t, "type")),
			ReplicaDivisionPreference: api.ReplicaDivisionPreference(rapid.SampledFrom([]string{"", "Weighted", "Aggregated", "x"}).Draw(t, "pref")),
		}
		if rapid.Bool().Draw(t, "wp") {
			w.Placement.ReplicaScheduling.WeightPreference = &api.ClusterPreferences{
				DynamicWeight: api.DynamicWeightFactor(rapid.SampledFrom([]string{"", "AvailableReplicas", "x"}).Draw(t, "dyn")),
				StaticWeightList: []api.StaticClusterWeight{{Weight: rapid.Int64().Draw(t, "w1")}, {Weight: rapid.Int64().Draw(t, "w2"),
					TargetCluster: api.ClusterAffinity{ClusterNames: []string{"a"}}}},
			}
		}
		for range rapid.IntRange(0, 3).Draw(t, "ns") {
			w.Placement.SpreadConstraints = append(w.Placement.SpreadConstraints, api.SpreadConstraint{
				SpreadByField: api.SpreadFieldValue(rapid.SampledFrom([]string{"", "cluster", "region", "bogus"}).Draw(t, "f")),
				SpreadByLabel: rapid.SampledFrom([]string{"", "l"}).Draw(t, "l"),
				MinGroups:     rapid.IntRange(-2, 3).Draw(t, "min"), MaxGroups: rapid.IntRange(-2, 3).Draw(t, "max"),
			})
		}
		for range rapid.IntRange(0, 3).Draw(t, "np") {
			w.Previous = append(w.Previous, Target{Cluster: rapid.SampledFrom([]string{"", "a", "b", "z"}).Draw(t, "pc"), Replicas: rapid.Int32().Draw(t, "pr")})
		}
		r := Schedule(w, clusters, testNow)
		for _, tg := range r.Targets {
			if tg.Replicas < 0 {
				t.Fatalf("negative replicas %v", r.Targets)
			}
		}
	})
}
