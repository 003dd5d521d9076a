package region

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
)

// directRaft applies commands straight to an FSM, as a one-node Raft would.
type directRaft struct {
	mu    sync.Mutex
	fsm   *FSM
	index uint64
	now   func() time.Time
}

func (r *directRaft) ApplyLocal(ctx context.Context, cmd []byte) (consensus.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	switch x := r.fsm.Apply(&raft.Log{Index: r.index, Data: cmd, AppendedAt: r.now()}).(type) {
	case error:
		return consensus.Result{}, x
	case []byte:
		return consensus.Result{Index: r.index, Response: x}, nil
	}
	return consensus.Result{Index: r.index}, nil
}

func (r *directRaft) Barrier(ctx context.Context) error { return nil }

type fakeMembers struct {
	mu    sync.Mutex
	peers map[string]PeerView
}

func (m *fakeMembers) Peers() []PeerView {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PeerView
	for _, p := range m.peers {
		out = append(out, p)
	}
	return out
}

func (m *fakeMembers) set(name string, alive bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers[name] = PeerView{Cluster: name, Alive: alive}
}

// leaderHarness drives a Leader step by step on a fake clock.
type leaderHarness struct {
	t       *testing.T
	now     time.Time
	fsm     *FSM
	raft    *directRaft
	members *fakeMembers
	leader  *Leader
}

func newLeaderHarness(t *testing.T, clusters ...string) *leaderHarness {
	h := &leaderHarness{t: t, now: time.UnixMilli(1_700_000_000_000), fsm: NewFSM("eu", nil),
		members: &fakeMembers{peers: map[string]PeerView{}}}
	h.raft = &directRaft{fsm: h.fsm, now: func() time.Time { return h.now }}
	cfg := DefaultLeaderConfig()
	cfg.Region = "eu"
	cfg.FailbackDelay = 10 * time.Second
	cfg.Clock = harnessClock{h}
	l, err := NewLeader(cfg, h.fsm, h.raft, h.members)
	if err != nil {
		t.Fatal(err)
	}
	h.leader = l
	h.leader.started = h.now
	for _, c := range clusters {
		h.members.set(c, true)
		h.command(reportCluster(c, shoalpb.Health_HEALTH_READY))
	}
	return h
}

func (h *leaderHarness) command(c *shoalpb.Command) {
	h.t.Helper()
	data, _ := proto.Marshal(c)
	if _, err := h.raft.ApplyLocal(context.Background(), data); err != nil {
		h.t.Fatal(err)
	}
}

// settle runs leader steps until nothing changes.
func (h *leaderHarness) settle() {
	h.t.Helper()
	for i := 0; i < 20; i++ {
		before := h.raft.index
		if err := h.leader.step(context.Background()); err != nil {
			h.t.Fatal(err)
		}
		if h.raft.index == before {
			return
		}
	}
	h.t.Fatal("leader did not settle in 20 steps")
}

func (h *leaderHarness) advance(d time.Duration) { h.now = h.now.Add(d) }

func (h *leaderHarness) binding(k api.ObjectKey) *shoalpb.Binding {
	var b *shoalpb.Binding
	h.fsm.Read(func(s *State) { b = s.Binding(k) })
	return b
}

func (h *leaderHarness) report(cluster string, k api.ObjectKey, replicas, ready int32) {
	var gen int64
	h.fsm.Read(func(s *State) { gen = s.Object(k).GetGeneration() })
	h.command(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: cluster,
		Statuses: []*shoalpb.WorkStatus{{Workload: k.Proto(), AppliedGeneration: gen, Replicas: replicas, ReadyReplicas: ready, Health: "Healthy"}}}}})
}

const deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":%d}}`

func policy(placement string) string {
	return `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default"},` +
		`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],"placement":` + placement + `}}`
}

var ppKey = api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: api.KindPropagationPolicy, Namespace: "default", Name: "web"}

func (h *leaderHarness) applyWeb(replicas int, placement string) {
	p, _, err := api.DecodePolicy([]byte(policy(placement)))
	if err != nil {
		h.t.Fatalf("policy: %v", err)
	}
	_ = p
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, replicas)), obj(ppKey, policy(placement))))
}

const divided = `{"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Weighted"}}`

func targets(b *shoalpb.Binding) string { return targetString(b.GetClusters()) }

func TestLeaderPlacesAndFailsOverGracefully(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.applyWeb(6, divided)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2, b=2, c=2" {
		t.Fatalf("initial placement %q", got)
	}
	for _, c := range []string{"a", "b", "c"} {
		h.report(c, webKey, 2, 2)
	}

	// c's peer dies: c is tainted, its replicas move, and c keeps its old
	// replicas as an eviction until the replacements are Ready.
	h.members.set("c", false)
	h.advance(time.Second)
	h.settle()
	var rec *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { rec = s.Cluster("c") })
	if EffectiveHealth(rec) != shoalpb.Health_HEALTH_UNREACHABLE || taintString(rec.GetTaints()) != api.TaintClusterUnreachable+":NoExecute" {
		t.Fatalf("c after its peer died: %v", rec)
	}
	var cStatus *shoalpb.WorkStatus
	h.fsm.Read(func(s *State) { cStatus = s.Status(webKey, "c") })
	if cStatus.GetReadyReplicas() != 0 || cStatus.GetHealth() != "Unknown" {
		t.Fatalf("an unreachable cluster's last report still counts: %v", cStatus)
	}
	b := h.binding(webKey)
	if targets(b) != "a=3, b=3" || evictionString(b.GetEvictions()) != "c=2" {
		t.Fatalf("after failover: targets %q evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	if fmt.Sprint(b.GetFailedOverFrom()) != "[c]" {
		t.Fatalf("failed over from %v", b.GetFailedOverFrom())
	}
	// Replacements not Ready yet: the eviction stays.
	h.report("a", webKey, 3, 2)
	h.settle()
	if len(h.binding(webKey).GetEvictions()) != 1 {
		t.Fatal("eviction released before the replacements were Ready")
	}
	h.report("a", webKey, 3, 3)
	h.report("b", webKey, 3, 3)
	h.settle()
	// The replacements are Ready, and c still keeps what it ran: nothing
	// is deleted from a cluster for being unreachable, so that it comes
	// back with the same objects.
	if ev := evictionString(h.binding(webKey).GetEvictions()); ev != "c=2" {
		t.Fatalf("c's replicas after the replacements were Ready: evictions %q, want c=2 held", ev)
	}

	// c comes back: no failback before the stable period, and c keeps
	// what it ran meanwhile.
	h.members.set("c", true)
	h.advance(time.Second)
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=3, b=3" || evictionString(b.GetEvictions()) != "c=2" {
		t.Fatalf("failed back before the stable period: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	h.advance(11 * time.Second)
	h.settle()
	b = h.binding(webKey)
	if targets(b) != "a=2, b=2, c=2" || len(b.GetFailedOverFrom()) != 0 || len(b.GetPreFailover()) != 0 {
		t.Fatalf("after failback: %q failed over from %v, pre-failover %v", targets(b), b.GetFailedOverFrom(), b.GetPreFailover())
	}
	// The clusters that stood in keep their extra replicas until c's are Ready.
	if got := evictionString(b.GetEvictions()); got != "a=3, b=3" {
		t.Fatalf("failback evictions %q", got)
	}
	h.report("c", webKey, 2, 2)
	h.report("a", webKey, 2, 2)
	h.report("b", webKey, 2, 2)
	h.settle()
	if ev := h.binding(webKey).GetEvictions(); len(ev) != 0 {
		t.Fatalf("failback evictions not released: %v", ev)
	}
}

func TestLeaderPurgeModeDirectlySkipsEviction(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.applyWeb(4, `{"replicaScheduling":{"replicaSchedulingType":"Divided"}}`)
	// Policy with failover.cluster.purgeMode Directly.
	direct := `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default"},` +
		`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],` +
		`"placement":{"replicaScheduling":{"replicaSchedulingType":"Divided"}},"failover":{"cluster":{"purgeMode":"Directly"}}}}`
	h.command(applyObjects(obj(ppKey, direct)))
	h.settle()
	h.members.set("b", false)
	h.settle()
	b := h.binding(webKey)
	if targets(b) != "a=4" || len(b.GetEvictions()) != 0 {
		t.Fatalf("Directly: targets %q evictions %v", targets(b), b.GetEvictions())
	}
}

func TestLeaderNotReadyTaintAndUnschedulableKeepsPlacement(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.applyWeb(2, divided)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2" {
		t.Fatalf("placement %q", got)
	}
	// The only cluster reports NotReady: tainted not-ready, nowhere to go,
	// so the workload keeps its placement and is marked unschedulable.
	h.command(reportCluster("a", shoalpb.Health_HEALTH_NOT_READY))
	h.settle()
	var rec *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { rec = s.Cluster("a") })
	if taintString(rec.GetTaints()) != api.TaintClusterNotReady+":NoExecute" {
		t.Fatalf("taints %v", rec.GetTaints())
	}
	b := h.binding(webKey)
	if !b.GetUnschedulable() || targets(b) != "a=2" || b.GetReason() == "" {
		t.Fatalf("binding %v", b)
	}
}

// Gossip's "left" is not authenticated: it is a failure to the leader.
// A cluster leaves the region only by its peer's own LeaveRegion.
func TestLeaderRemovesLeftClusterAndOrphanBindings(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.applyWeb(2, divided)
	h.settle()
	h.members.mu.Lock()
	h.members.peers["b"] = PeerView{Cluster: "b", Left: true}
	h.members.mu.Unlock()
	h.settle()
	var rec *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { rec = s.Cluster("b") })
	if rec == nil || rec.GetReachable() {
		t.Fatalf("a cluster gossip says left is %v; want it kept, unreachable", rec)
	}
	h.command(&shoalpb.Command{Cmd: &shoalpb.Command_LeaveRegion{LeaveRegion: &shoalpb.LeaveRegion{Cluster: "b"}}})
	h.settle()
	var n int
	h.fsm.Read(func(s *State) { n = len(s.Clusters()) })
	if n != 1 || targets(h.binding(webKey)) != "a=2" {
		t.Fatalf("clusters %d, targets %q", n, targets(h.binding(webKey)))
	}
	h.command(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	h.settle()
	if b := h.binding(webKey); b != nil {
		t.Fatalf("binding of a deleted template kept: %v", b)
	}
}

func TestLeaderNoPolicyMeansNotPropagated(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2))))
	h.settle()
	b := h.binding(webKey)
	if len(b.GetClusters()) != 0 || b.GetReason() == "" {
		t.Fatalf("binding without policy %v", b)
	}
}

func TestLeaderMembershipSettle(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.members.mu.Lock()
	delete(h.members.peers, "b") // gossip has not seen b (yet)
	h.members.mu.Unlock()
	h.settle()
	var rec *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { rec = s.Cluster("b") })
	if !rec.GetReachable() {
		t.Fatal("unseen cluster marked unreachable before the membership settled")
	}
	h.advance(6 * time.Second)
	h.settle()
	h.fsm.Read(func(s *State) { rec = s.Cluster("b") })
	if rec.GetReachable() {
		t.Fatal("cluster unseen after the settle period still reachable")
	}
}

// harnessClock is the harness's hand-moved time.
type harnessClock struct{ h *leaderHarness }

func (c harnessClock) Now() time.Time                  { return c.h.now }
func (c harnessClock) Since(t time.Time) time.Duration { return c.h.now.Sub(t) }

// A workload under the partition guard stays on a failed cluster of the
// region (its copy there may still run); an unguarded one moves.
func TestLeaderGuardedWorkloadDoesNotFailOverInsideTheRegion(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		h := newLeaderHarness(t, "eu-1", "eu-2")
		pp := policy(divided)
		if guarded {
			pp = strings.Replace(pp, `"namespace":"default"},"spec"`, `"namespace":"default","annotations":{"shoal.io/partition-guard":"majority"}},"spec"`, 1)
		}
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 1)), obj(ppKey, pp)))
		h.settle()
		before := targets(h.binding(webKey))
		if h.binding(webKey).GetGuarded() != guarded || before == "" {
			t.Fatalf("guarded=%v: binding %v", guarded, h.binding(webKey))
		}
		h.members.set(h.binding(webKey).GetClusters()[0].GetName(), false)
		h.advance(time.Minute)
		h.settle()
		moved := targets(h.binding(webKey)) != before
		if moved == guarded {
			t.Errorf("guarded=%v: placement %s -> %s", guarded, before, targets(h.binding(webKey)))
		}
	}
}

// TestClusterInfosKnowsADrainedClusterIsFull: a cluster with Ready nodes
// but nothing allocatable (drained) has no room; one with no nodes and
// nothing allocatable (NotReady, or not read yet) has an unknown capacity.
func TestClusterInfosKnowsADrainedClusterIsFull(t *testing.T) {
	zero := &shoalpb.Resources{}
	for _, tc := range []struct {
		name  string
		cap   *shoalpb.Capacity
		known bool
	}{
		{"no capacity reported", nil, false},
		{"NotReady: no nodes", &shoalpb.Capacity{Allocatable: zero, Available: zero}, false},
		{"drained: nodes, nothing allocatable", &shoalpb.Capacity{Nodes: 3, Allocatable: zero, Available: zero}, true},
		{"room", &shoalpb.Capacity{Nodes: 1, Allocatable: &shoalpb.Resources{Pods: 110}, Available: &shoalpb.Resources{Pods: 100}}, true},
	} {
		infos := clusterInfos([]*shoalpb.ClusterRecord{{Name: "c1", Region: "eu", Capacity: tc.cap}})
		if got := infos[0].Available != nil; got != tc.known {
			t.Errorf("%s: capacity known %v, want %v", tc.name, got, tc.known)
		}
		if tc.known && tc.cap.GetAllocatable().GetPods() == 0 {
			if n, unknown := estimateReplicas(infos[0].Available, api.Resources{CPUMilli: 1}); n != 0 || unknown {
				t.Errorf("%s: %d replicas fit (unknown %v), want none", tc.name, n, unknown)
			}
		}
	}
}
