package region

import (
	"fmt"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// BenchmarkSchedule places 10,000 workloads, a mix of every strategy and of
// spread constraints, over 100 clusters in 5 regions, each workload with its
// previous placement (the steady state a region leader reschedules).
func BenchmarkSchedule(b *testing.B) {
	const nClusters, nWorkloads = 100, 10000
	clusters := make([]ClusterInfo, nClusters)
	for i := range clusters {
		c := cl(fmt.Sprintf("cluster-%03d", i), fmt.Sprintf("region-%d/zone-%d/%s", i%5, i%10, []string{"aws", "gcp"}[i%2]), "rack", fmt.Sprint(i%4))
		if i%7 != 0 {
			c = pods(c, int64(50+i))
		}
		if i%13 == 0 {
			c = tainted(c, api.Taint{Key: "maint", Effect: api.TaintEffectNoSchedule})
		}
		clusters[i] = c
	}
	placements := []api.Placement{
		{ReplicaScheduling: duplicated(), SpreadConstraints: []api.SpreadConstraint{spread("region", 2, 3), spread("cluster", 2, 6)}},
		{ReplicaScheduling: static(weight(2, "cluster-001", "cluster-002"), weight(1, "cluster-003", "cluster-004", "cluster-005"))},
		{ReplicaScheduling: dynamic()},
		{ReplicaScheduling: dynamic(), SpreadConstraints: []api.SpreadConstraint{spread("zone", 2, 4)}},
		{ReplicaScheduling: aggregated(), ClusterAffinity: &api.ClusterAffinity{ExcludeClusters: []string{"cluster-010"}}},
		{ReplicaScheduling: aggregated(), ClusterAffinities: []api.ClusterAffinityTerm{
			{AffinityName: "small", ClusterAffinity: api.ClusterAffinity{ClusterNames: []string{"cluster-000"}}},
			{AffinityName: "all"}}},
	}
	workloads := make([]Workload, nWorkloads)
	for i := range workloads {
		w := work(int32(1+i%40), placements[i%len(placements)])
		w.Key.Name = fmt.Sprintf("app-%d", i)
		r := Schedule(w, clusters, testNow)
		w.Previous, w.PreviousAffinityTerm = r.Targets, r.AffinityTerm
		if i%3 == 0 {
			w.Replicas++ // a third of them scale up
		}
		workloads[i] = w
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range workloads {
			if r := Schedule(workloads[i], clusters, testNow); r.Unschedulable {
				b.Fatalf("%s: %s", workloads[i].Key.Name, r.Reason)
			}
		}
	}
	b.ReportMetric(float64(nWorkloads)*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}
