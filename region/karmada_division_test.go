package region

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/shoalmesh/shoal/api"
)

// Compatibility with Karmada's division since v1.16 (Webster's method).
// The inputs and expected outputs are those of Karmada's own unit tests as
// published in v1.16.0 (commit b1ff4956) and unchanged up to f8fdd02d
// (after v1.19.0-rc.0); each case names the file and test it comes from.
// Karmada's dispenser tests that seed the division with earlier seats
// ("Scale up 6 replicas" and the like in binding_test.go) are left out:
// Karmada's scheduler never seeds it (it divides only the new replicas and
// adds them), and neither does Shoal.

const (
	// karmadaEvenUID and karmadaOddUID are the uids of Karmada's
	// pkg/util/helper/binding_test.go: the 32-bit FNV-1a hash of the first
	// is even (names break ties ascending), of the second odd (descending).
	karmadaEvenUID = "4858ca61-3ff8-4095-8267-f3d059d8074c"
	karmadaOddUID  = "d43fdeeb-d750-4e2b-bee3-64eb94534f4c"
)

// divideByWeights runs the dispenser alone on "a=3 b=2" weights.
func divideByWeights(n int32, weights, uid string) string {
	var list []weightEntry
	for _, f := range strings.Fields(weights) {
		name, w, _ := strings.Cut(f, "=")
		var v int64
		fmt.Sscan(w, &v)
		list = append(list, weightEntry{name: name, weight: v})
	}
	var b strings.Builder
	for _, t := range dispense(n, list, nil, uid) {
		fmt.Fprintf(&b, "%s:%d ", t.Cluster, t.Replicas)
	}
	return strings.TrimSpace(b.String())
}

func TestKarmadaWebsterDispenser(t *testing.T) {
	const wiki = "PartyA=100000 PartyB=80000 PartyC=30000 PartyD=20000"
	tests := []struct {
		from    string
		n       int32
		weights string
		uid     string
		want    string
	}{
		// pkg/util/helper/webstermethod_test.go
		{"webstermethod_test.go ExampleAllocateWebsterSeats", 4, "Alpha=1200 Beta=900 Gamma=400", "", "Alpha:2 Beta:1 Gamma:1"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 1", 1, wiki, "", "PartyA:1 PartyB:0 PartyC:0 PartyD:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 2", 2, wiki, "", "PartyA:1 PartyB:1 PartyC:0 PartyD:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 3", 3, wiki, "", "PartyA:2 PartyB:1 PartyC:0 PartyD:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 4", 4, wiki, "", "PartyA:2 PartyB:1 PartyC:1 PartyD:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 5", 5, wiki, "", "PartyA:2 PartyB:2 PartyC:1 PartyD:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 6", 6, wiki, "", "PartyA:2 PartyB:2 PartyC:1 PartyD:1"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 7", 7, wiki, "", "PartyA:3 PartyB:2 PartyC:1 PartyD:1"},
		{"webstermethod_test.go TestAllocateWebsterSeats classic example, round 8", 8, wiki, "", "PartyA:3 PartyB:3 PartyC:1 PartyD:1"},
		{"webstermethod_test.go TestAllocateWebsterSeats empty party votes", 1, "", "", ""},
		{"webstermethod_test.go TestAllocateWebsterSeats newSeats is 0", 0, "PartyA=100 PartyB=200", "", "PartyA:0 PartyB:0"},
		{"webstermethod_test.go TestAllocateWebsterSeats break tie by name", 1, "PartyA=1 PartyB=1", "", "PartyA:1 PartyB:0"},
		// pkg/util/helper/binding_test.go Test_dispenser_AllocateByWeight
		{"binding_test.go HA scenario with weight 2:1: assign 1 replica", 1, "A=2 B=1", "", "A:1 B:0"},
		{"binding_test.go HA scenario with weight 2:1: assign 2 replicas", 2, "A=2 B=1", "", "A:1 B:1"},
		{"binding_test.go HA scenario with weight 2:1: assign 3 replicas", 3, "A=2 B=1", "", "A:2 B:1"},
		{"binding_test.go brand new assign 5 replicas", 5, "A=170 B=110 C=60", "", "A:2 B:2 C:1"},
		{"binding_test.go brand new assign 6 replicas", 6, "A=170 B=110 C=60", "", "A:3 B:2 C:1"},
		{"binding_test.go brand new assign 5 replicas with odd uuid", 5, "A=1 B=1", karmadaOddUID, "A:2 B:3"},
		{"binding_test.go brand new assign 5 replicas with even uuid", 5, "A=1 B=1", karmadaEvenUID, "A:3 B:2"},
		// pkg/util/helper/binding_test.go TestDispenseReplicasByTargetClusters
		{"binding_test.go 1 cluster, 5 replicas, 10 sum", 10, "member1=5", "", "member1:10"},
		{"binding_test.go 3 cluster, 1:1:1, 12 sum", 12, "member1=5 member2=5 member3=5", "", "member1:4 member2:4 member3:4"},
		// Karmada's test accepts any of the three 4/3/3 answers (it dates
		// from random ties); its code, with an empty uid, gives this one.
		{"binding_test.go 3 cluster, 1:1:1, 10 sum", 10, "member1=5 member2=5 member3=5", "", "member1:4 member2:3 member3:3"},
		{"binding_test.go 3 cluster, 1:2:3, 13 sum", 13, "member1=1 member2=2 member3=3", "", "member1:2 member2:4 member3:7"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			// Karmada lists the parties given no seat, Shoal does not.
			if got, want := dropZeros(divideByWeights(tt.n, tt.weights, tt.uid)), dropZeros(tt.want); got != want {
				t.Fatalf("%d over %q = %q, want %q", tt.n, tt.weights, got, want)
			}
		})
	}
	if !namesDescending(karmadaOddUID) || namesDescending(karmadaEvenUID) || namesDescending("") {
		t.Fatal("the parity of the uid hash picks the wrong direction")
	}
}

func dropZeros(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if !strings.HasSuffix(f, ":0") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

// members gives Karmada's test clusters member1..memberN, each with room
// for the given number of replicas (Karmada's AllocatableReplicas).
func members(room ...int64) []ClusterInfo {
	out := make([]ClusterInfo, len(room))
	for i, r := range room {
		out[i] = pods(cl(fmt.Sprintf("member%d", i+1), ""), r)
	}
	return out
}

func memberWeights(ws ...int64) *api.ReplicaSchedulingStrategy {
	var list []api.StaticClusterWeight
	for i, w := range ws {
		list = append(list, weight(w, fmt.Sprintf("member%d", i+1)))
	}
	return static(list...)
}

func TestKarmadaDivision(t *testing.T) {
	unknown := func(n int) []ClusterInfo {
		out := make([]ClusterInfo, n)
		for i := range out {
			out[i] = cl(fmt.Sprintf("member%d", i+1), "")
		}
		return out
	}
	defaultWeights := &api.ReplicaSchedulingStrategy{ReplicaSchedulingType: api.ReplicaSchedulingTypeDivided,
		ReplicaDivisionPreference: api.ReplicaDivisionPreferenceWeighted}
	p := func(rs *api.ReplicaSchedulingStrategy) api.Placement { return api.Placement{ReplicaScheduling: rs} }
	tests := []struct {
		from     string
		w        Workload
		clusters []ClusterInfo
		want     string // "!" when unschedulable
	}{
		// The examples of Shoal's issue.
		{"14 at 3:2:1 (Shoal gave 8/4/2)", work(14, p(memberWeights(3, 2, 1))), unknown(3), "member1:7 member2:5 member3:2"},
		{"12 at dynamic 20:12:6 (Shoal gave 7/4/1)", work(12, p(dynamic())), members(20, 12, 6), "member1:6 member2:4 member3:2"},
		{"karmada#6735: 5 at 170:110:60", work(5, p(memberWeights(170, 110, 60))), unknown(3), "member1:2 member2:2 member3:1"},
		{"karmada#6735: 6 at 170:110:60", work(6, p(memberWeights(170, 110, 60)), tg("member1:2 member2:2 member3:1")...), unknown(3), "member1:3 member2:2 member3:1"},

		// pkg/scheduler/core/assignment_test.go Test_assignByStaticWeightStrategy
		{"assignment_test.go replica 12, weight 3:2:1", work(12, p(memberWeights(3, 2, 1))), unknown(3), "member1:6 member2:4 member3:2"},
		{"assignment_test.go replica 12, default weight", work(12, p(defaultWeights)), unknown(3), "member1:4 member2:4 member3:4"},
		{"assignment_test.go replica 13, weight 3:2:1", work(13, p(memberWeights(3, 2, 1))), unknown(3), "member1:7 member2:4 member3:2"},
		{"assignment_test.go replica 14, weight 3:2:1", work(14, p(memberWeights(3, 2, 1))), unknown(3), "member1:7 member2:5 member3:2"},
		{"assignment_test.go insufficient replica assignment should get 0 replica", work(0, p(memberWeights(1, 1))), unknown(2), "member1:0 member2:0"},
		{"assignment_test.go selected cluster without weight should be ignored", work(2, p(memberWeights(1))), unknown(2), "member1:2"},
		{"assignment_test.go cluster with multiple weights", work(3, p(static(weight(1, "member1"), weight(1, "member2"), weight(2, "member1")))), unknown(2), "member1:2 member2:1"},

		// pkg/scheduler/core/generic_scheduler_test.go Test_DistributionOfReplicas
		{"generic_scheduler_test.go replica 3, static weighted 1:1", work(3, p(memberWeights(1, 1))), unknown(2), "member1:2 member2:1"},
		{"generic_scheduler_test.go replica 3, static weighted 1:1:1, before change", work(3, p(memberWeights(1, 1, 1))), unknown(3), "member1:1 member2:1 member3:1"},
		{"generic_scheduler_test.go replica 3, static weighted 1:1:1, change replicas from 3 to 5", work(5, p(memberWeights(1, 1, 1))), unknown(3), "member1:2 member2:2 member3:1"},
		{"generic_scheduler_test.go replica 7, static weighted 2:1:1:1", work(7, p(memberWeights(2, 1, 1, 1))), unknown(4), "member1:3 member2:2 member3:1 member4:1"},
		{"generic_scheduler_test.go replica 7, static weighted 2:1:1:1, change replicas from 7 to 8", work(8, p(memberWeights(2, 1, 1, 1))), unknown(4), "member1:3 member2:2 member3:2 member4:1"},
		{"generic_scheduler_test.go replica 9, static weighted 2:1:1:1", work(9, p(memberWeights(2, 1, 1, 1))), unknown(4), "member1:3 member2:2 member3:2 member4:2"},
		{"generic_scheduler_test.go replica 6, static weighted 1:1:1:1", work(6, p(memberWeights(1, 1, 1, 1))), unknown(4), "member1:2 member2:2 member3:1 member4:1"},
		{"generic_scheduler_test.go replica 6, change static weighted from 1:1:1:1 to 2:1:1:1", work(6, p(memberWeights(2, 1, 1, 1))), unknown(4), "member1:3 member2:1 member3:1 member4:1"},
		{"generic_scheduler_test.go replica 5, add a new cluster and change static weight to 1:1:1:1", work(5, p(memberWeights(1, 1, 1, 1))), unknown(4), "member1:2 member2:1 member3:1 member4:1"},
		{"generic_scheduler_test.go replica 6, remove a cluster and change static weight to 1:1:1", work(6, p(memberWeights(1, 1, 1))), unknown(3), "member1:2 member2:2 member3:2"},

		// pkg/scheduler/core/division_algorithm_test.go Test_dynamicDivideReplicas
		{"division_algorithm_test.go replica 12, dynamic weight 18:12:6", work(12, p(dynamic())), members(18, 12, 6), "member1:6 member2:4 member3:2"},
		{"division_algorithm_test.go replica 12, dynamic weight 20:12:6", work(12, p(dynamic())), members(20, 12, 6), "member1:6 member2:4 member3:2"},
		{"division_algorithm_test.go replica 12, dynamic weight 6:12:6", work(12, p(dynamic())), members(6, 12, 6), "member1:3 member2:6 member3:3"},
		{"division_algorithm_test.go replica 12, aggregated 12:6:6", work(12, p(aggregated())), members(6, 12, 6), "member2:12"},
		{"division_algorithm_test.go replica 12, aggregated 6:6:6", work(12, p(aggregated())), members(6, 6, 6), "member1:6 member2:6"},

		// pkg/scheduler/core/assignment_test.go Test_dynamicScale
		{"assignment_test.go replica 12 -> 6, dynamic weighted 1:1:1", work(6, p(dynamic()), tg("member1:2 member2:4 member3:6")...), members(1, 1, 1), "member1:1 member2:2 member3:3"},
		{"assignment_test.go replica 12 -> 24, dynamic weighted 10:10:10", work(24, p(dynamic()), tg("member1:2 member2:4 member3:6")...), members(10, 10, 10), "member1:6 member2:8 member3:10"},
		{"assignment_test.go replica 12 -> 24, dynamic weighted 1:1:1", work(24, p(dynamic()), tg("member1:2 member2:4 member3:6")...), members(1, 1, 1), "!"},
		{"assignment_test.go replica 12 -> 6, aggregated 1:1:1", work(6, p(aggregated()), tg("member1:4 member2:8")...), members(1, 1, 1), "member2:6"},
		{"assignment_test.go replica 12 -> 8, aggregated 100:100", work(8, p(aggregated()), tg("member1:4 member2:8")...), members(100, 100), "member2:8"},
		{"assignment_test.go replica 12 -> 24, aggregated 4:6:8", work(24, p(aggregated()), tg("member1:4 member2:8")...), members(4, 6, 8), "member1:7 member2:12 member3:5"},
		{"assignment_test.go replica 12 -> 24, aggregated 6:6:20", work(24, p(aggregated()), tg("member1:4 member2:8")...), members(6, 6, 20), "member1:10 member2:14"},
		{"assignment_test.go replica 12 -> 24, aggregated 1:1:1", work(24, p(aggregated()), tg("member1:4 member2:8")...), members(1, 1, 1), "!"},
		{"assignment_test.go replica 12 -> 24, aggregated 4:8:12, with cluster2 disappeared and cluster4 appeared", work(24, p(aggregated()), tg("member1:4 member2:8")...),
			[]ClusterInfo{pods(cl("member1", ""), 4), pods(cl("member3", ""), 8), pods(cl("member4", ""), 12)}, "member1:7 member3:7 member4:10"},

		// pkg/scheduler/core/assignment_test.go Test_dynamicScaleUp
		{"assignment_test.go replica 12, dynamic weight 6:8:10", work(12, p(dynamic())), members(6, 8, 10), "member1:3 member2:4 member3:5"},
		{"assignment_test.go replica 12, dynamic weight 8:8:10", work(12, p(dynamic())), members(8, 8, 10), "member1:4 member2:4 member3:4"},
		{"assignment_test.go replica 12, dynamic weight 3:3:3", work(12, p(dynamic())), members(3, 3, 3), "!"},
		{"assignment_test.go replica 12, aggregated 6:8:10", work(12, p(aggregated())), members(6, 8, 10), "member2:5 member3:7"},
		{"assignment_test.go replica 12, aggregated 12:8:10", work(12, p(aggregated())), members(12, 8, 10), "member1:12"},
		{"assignment_test.go replica 12, aggregated 3:3:3", work(12, p(aggregated())), members(3, 3, 3), "!"},
		{"assignment_test.go replica 12, dynamic weight 3:3, with cluster3 disappeared and cluster2 appeared", work(12, p(dynamic()), tg("member1:6 member3:6")...),
			members(3, 3), "member1:9 member2:3"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			r := Schedule(tt.w, tt.clusters, testNow)
			if tt.want == "!" {
				if !r.Unschedulable {
					t.Fatalf("want unschedulable, got %v", r.Targets)
				}
				return
			}
			if r.Unschedulable {
				t.Fatalf("unschedulable: %s", r.Reason)
			}
			if want := tg(tt.want); !reflect.DeepEqual(r.Targets, want) {
				t.Fatalf("targets = %v, want %v", r.Targets, want)
			}
		})
	}
}

// Scaling up by one with unchanged static weights never takes a replica
// from a cluster (Karmada issue #6735), whatever the weights, the count,
// the uid and the previous placement.
func TestKarmadaStaticScaleUpNeverTakesAReplica(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var clusters []ClusterInfo
		var rules []api.StaticClusterWeight
		for i := range rapid.IntRange(1, 8).Draw(t, "nclusters") {
			name := fmt.Sprintf("c%d", i)
			clusters = append(clusters, cl(name, ""))
			rules = append(rules, weight(rapid.Int64Range(1, 1000).Draw(t, "weight"), name))
		}
		n := int32(rapid.IntRange(0, 3000).Draw(t, "replicas"))
		w := work(n, api.Placement{ReplicaScheduling: static(rules...)})
		w.UID = rapid.SampledFrom([]string{"", karmadaEvenUID, karmadaOddUID, WorkloadUID(w.Key)}).Draw(t, "uid")
		before := Schedule(w, clusters, testNow)
		w.Replicas++
		w.Previous = before.Targets
		after := Schedule(w, clusters, testNow)
		if before.Unschedulable || after.Unschedulable {
			t.Fatalf("unschedulable: %s %s", before.Reason, after.Reason)
		}
		was, now := asMap(before.Targets), asMap(after.Targets)
		var grew int32
		for name, r := range now {
			if r < was[name] {
				t.Fatalf("%s went %d -> %d scaling %d -> %d: %v -> %v", name, was[name], r, n, n+1, before.Targets, after.Targets)
			}
			grew += r - was[name]
		}
		if grew != 1 {
			t.Fatalf("scaling %d -> %d added %d replicas: %v -> %v", n, n+1, grew, before.Targets, after.Targets)
		}
	})
}

// WorkloadUID depends on the key alone and must never change: another UID
// would flip the ties of the workloads already placed.
func TestWorkloadUIDIsStable(t *testing.T) {
	if got, want := WorkloadUID(webKey), "2403e505-f3df-5726-b126-32b98058d225"; got != want {
		t.Fatalf("WorkloadUID(%s) = %s, want %s", webKey, got, want)
	}
	other := webKey
	other.Namespace = "prod"
	if WorkloadUID(other) == WorkloadUID(webKey) {
		t.Fatal("two keys, one UID")
	}
}

// The region leader gives each workload WorkloadUID(key). Deployment
// default/web has an odd one, so names break ties descending: of 3
// replicas at 1:1, b gets 2 (an empty UID would give them to a).
func TestLeaderBreaksTiesByTheWorkloadUID(t *testing.T) {
	if !namesDescending(WorkloadUID(webKey)) {
		t.Fatal("the UID of web is not odd any more")
	}
	h := newLeaderHarness(t, "a", "b")
	h.applyWeb(3, divided)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=1, b=2" {
		t.Fatalf("3 replicas at 1:1: %q, want a=1, b=2", got)
	}
}
