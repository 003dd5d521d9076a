package region

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/api"
)

// burstPlacement is the placement of examples/bursting.yaml: the on-prem
// clusters first, the cloud providers for what does not fit.
func burstPlacement(rs *api.ReplicaSchedulingStrategy) api.Placement {
	return api.Placement{ReplicaScheduling: rs, ClusterAffinities: []api.ClusterAffinityTerm{{
		AffinityName:    "on-prem",
		ClusterAffinity: api.ClusterAffinity{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"location": "on-prem"}}},
		OverflowAffinities: []api.OverflowClusterAffinity{{
			AffinityName: "cloud",
			ClusterAffinity: api.ClusterAffinity{FieldSelector: &api.FieldSelector{MatchExpressions: []api.FieldSelectorRequirement{
				{Key: "provider", Operator: "In", Values: []string{"aws", "gcp"}}}}},
		}},
	}}}
}

// burstFleet runs a workload on clusters of fixed capacity (in replicas),
// reporting as room what the workload does not use, as peers report it.
type burstFleet struct {
	capacity map[string]int64
	clusters []ClusterInfo
}

func newBurstFleet() *burstFleet {
	return &burstFleet{
		capacity: map[string]int64{"idc": 4, "aws-1": 10, "gcp-1": 6},
		clusters: []ClusterInfo{cl("idc", "eu/eu-a/onprem", "location", "on-prem"), cl("aws-1", "eu/eu-b/aws"), cl("gcp-1", "eu/eu-c/gcp")},
	}
}

func (f *burstFleet) infos(prev []Target) []ClusterInfo {
	used := asMap(prev)
	out := make([]ClusterInfo, len(f.clusters))
	for i, c := range f.clusters {
		out[i] = pods(c, f.capacity[c.Name]-int64(used[c.Name]))
	}
	return out
}

// TestOverflowScaleUpAndDown scales a bursting workload up and down with
// each strategy overflow allows: the on-prem cluster fills first and is
// emptied last, the cloud share appears and drains in the reverse order,
// and every answer is a fixed point once the clusters report it.
func TestOverflowScaleUpAndDown(t *testing.T) {
	steps := []struct {
		replicas             int32
		aggregated, weighted string
	}{
		{2, "idc:2", "idc:2"},
		{7, "aws-1:3 idc:4", "aws-1:2 gcp-1:1 idc:4"},
		{15, "aws-1:7 gcp-1:4 idc:4", "aws-1:7 gcp-1:4 idc:4"},
		{12, "aws-1:5 gcp-1:3 idc:4", "aws-1:5 gcp-1:3 idc:4"},
		{5, "aws-1:1 idc:4", "aws-1:1 idc:4"},
		{4, "idc:4", "idc:4"},
		{3, "idc:3", "idc:3"},
		{6, "aws-1:2 idc:4", "aws-1:1 gcp-1:1 idc:4"},
	}
	for _, strategy := range []string{"aggregated", "weighted"} {
		t.Run(strategy, func(t *testing.T) {
			rs := aggregated()
			if strategy == "weighted" {
				rs = dynamic()
			}
			f := newBurstFleet()
			var prev []Target
			for _, s := range steps {
				w := work(s.replicas, burstPlacement(rs), prev...)
				w.PreviousAffinityTerm = "on-prem"
				r := Schedule(w, f.infos(prev), testNow)
				want := s.aggregated
				if strategy == "weighted" {
					want = s.weighted
				}
				if got := targetsText(r); got != want || r.AffinityTerm != "on-prem" {
					t.Fatalf("%d replicas after %v: %s in term %q, want %s", s.replicas, prev, got, r.AffinityTerm, want)
				}
				prev = r.Targets
				w.Previous = prev
				if again := Schedule(w, f.infos(prev), testNow); !reflect.DeepEqual(again.Targets, prev) {
					t.Fatalf("%d replicas: not a fixed point once reported: %v then %v", s.replicas, prev, again.Targets)
				}
			}
		})
	}
}

func targetsText(r Result) string {
	if r.Unschedulable {
		return "!" + r.Reason
	}
	parts := make([]string, 0, len(r.Targets))
	for _, t := range r.Targets {
		parts = append(parts, fmt.Sprintf("%s:%d", t.Cluster, t.Replicas))
	}
	return strings.Join(parts, " ")
}

func TestOverflowScheduler(t *testing.T) {
	fleet := func(idc, aws, gcp int64) []ClusterInfo {
		return []ClusterInfo{pods(cl("idc", "eu/eu-a/onprem", "location", "on-prem"), idc), pods(cl("aws-1", "eu/eu-b/aws"), aws), pods(cl("gcp-1", "us/us-a/gcp"), gcp)}
	}
	unreachable := api.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute, Added: testNow}
	tests := []struct {
		name     string
		w        Workload
		clusters []ClusterInfo
		want     string
	}{
		{"the preferred tier of unknown capacity takes everything", work(50, burstPlacement(dynamic())),
			[]ClusterInfo{cl("idc", "", "location", "on-prem"), pods(cl("aws-1", "//aws"), 10)}, "idc:50"},
		{"room freed on-prem does not pull replicas back while the count holds", work(6, burstPlacement(aggregated()), tg("idc:4 aws-1:2")...),
			fleet(8, 8, 6), "aws-1:2 idc:4"},
		{"a cluster that stopped matching is rescheduled", work(6, burstPlacement(aggregated()), tg("idc:4 gone:2")...),
			fleet(0, 8, 6), "aws-1:2 idc:4"},
		{"a failed on-prem cluster spills into the cloud, the clusters already there first", work(6, burstPlacement(aggregated()), tg("idc:4 gcp-1:2")...),
			[]ClusterInfo{tainted(pods(cl("idc", "eu/eu-a/onprem", "location", "on-prem"), 0), unreachable), pods(cl("aws-1", "eu/eu-b/aws"), 9), pods(cl("gcp-1", "us/us-a/gcp"), 5)},
			"gcp-1:6"},
		{"zero replicas keep the preferred tier", work(0, burstPlacement(dynamic()), tg("idc:4 aws-1:2")...), fleet(0, 8, 6), "idc:0"},
		{"a cluster spread constraint selects the preferred tier first", func() Workload {
			p := burstPlacement(dynamic())
			p.SpreadConstraints = []api.SpreadConstraint{spread("cluster", 1, 2)}
			return work(5, p)
		}(), fleet(3, 8, 20), "gcp-1:2 idc:3"},
		{"no room anywhere", work(30, burstPlacement(dynamic())), fleet(4, 10, 6),
			`!no clusterAffinities term is feasible: term "on-prem": 3/3 clusters feasible, but insufficient capacity: the term's clusters and its overflow tiers can take 20 replicas, 30 wanted`},
		{"a ConfigMap goes to the on-prem clusters only", func() Workload {
			w := work(0, burstPlacement(dynamic()))
			w.HasReplicas, w.PerReplica = false, api.Resources{}
			return w
		}(), fleet(4, 10, 6), "idc:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.PreviousAffinityTerm = "on-prem"
			if got := targetsText(Schedule(tt.w, tt.clusters, testNow)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOverflowReasonAndDiagnosis(t *testing.T) {
	clusters := []ClusterInfo{pods(cl("idc", "//onprem", "location", "on-prem"), 4), pods(cl("aws-1", "//aws"), 10), pods(cl("lab", "//onprem"), 10)}
	r := Schedule(work(7, burstPlacement(dynamic())), clusters, testNow)
	if targetsText(r) != "aws-1:3 idc:4" || r.AffinityTerm != "on-prem" {
		t.Fatalf("placement %s in %q", targetsText(r), r.AffinityTerm)
	}
	if want := "2/3 clusters feasible; replicas by tier: on-prem 4, cloud 3"; r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}
	if len(r.Filtered) != 1 || r.Filtered[0].Reason != `does not match clusterAffinities term "on-prem" (labelSelector does not match) nor its overflowAffinities` {
		t.Errorf("filtered %+v", r.Filtered)
	}
}
