package region

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// splitRegion is a one-cluster region with its mesh, its leader loop and
// a stand-in for its peer that runs what the region binds to its cluster
// (max of target and held evictions) and reports it Ready.
type splitRegion struct {
	*meshPeer
	cluster string

	mu         sync.Mutex
	readyCount int32         // replicas Ready on the cluster
	readyDelay time.Duration // how long a started replica takes to be Ready
	grownAt    time.Time     // when the cluster last got more replicas
	// failing makes web fail on the cluster (Unhealthy, nothing Ready),
	// reporting state as its preserved state.
	failing bool
	state   map[string]string
}

// fail makes web fail on the cluster, its copy reporting state.
func (r *splitRegion) fail(state map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing, r.state = true, state
}

func (r *splitRegion) failure() (bool, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failing, r.state
}

// wipe empties the cluster (it died with its region): replicas come back
// only after readyDelay.
func (r *splitRegion) wipe(readyDelay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readyCount, r.readyDelay, r.grownAt = 0, readyDelay, time.Now()
}

func (r *splitRegion) ready() int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readyCount
}

// observe moves the Ready count towards what runs: down at once, up once
// the replicas had readyDelay to start.
func (r *splitRegion) observe(n int32) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case n < r.readyCount:
		r.readyCount = n
	case n > r.readyCount && time.Since(r.grownAt) >= r.readyDelay:
		r.readyCount = n
	case n > r.readyCount && r.grownAt.IsZero():
		r.grownAt = time.Now()
	}
	return r.readyCount
}

func addSplitRegion(t *testing.T, n *meshNet, name string, seeds ...string) *splitRegion {
	t.Helper()
	cfg := testMeshConfig(name, seeds...)
	// A longer grace than the replication tests': the partition guard's
	// fence (at 2/5 of it) must come well before the others' verdict even
	// on a loaded machine.
	cfg.GracePeriod, cfg.EdgeGracePeriod = time.Second, time.Second
	p := n.add(t, cfg)
	r := &splitRegion{meshPeer: p, cluster: cfg.Cluster}
	lc := DefaultLeaderConfig()
	lc.Region = name
	lc.Tick = 20 * time.Millisecond
	lc.FailbackDelay = 300 * time.Millisecond
	lc.MembershipSettle = 0
	members := &fakeMembers{peers: map[string]PeerView{}}
	members.set(cfg.Cluster, true)
	l, err := NewLeader(lc, p.fsm, p.raft, members)
	if err != nil {
		t.Fatal(err)
	}
	l.SetMeshView(p.mesh)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = l.Run(ctx) }()
	go func() { defer wg.Done(); r.runPeer(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// running is what the region's cluster runs of the workload.
func (r *splitRegion) running(k api.ObjectKey) int32 {
	var n int32
	r.fsm.Read(func(s *State) {
		b := s.Binding(k)
		for _, t := range b.GetClusters() {
			if t.GetName() == r.cluster {
				n = max(n, t.GetReplicas())
			}
		}
		for _, e := range b.GetEvictions() {
			if e.GetCluster() == r.cluster {
				n = max(n, e.GetReplicas())
			}
		}
	})
	return n
}

func (r *splitRegion) target(k api.ObjectKey) int32 {
	var n int32
	r.fsm.Read(func(s *State) {
		for _, t := range s.Binding(k).GetClusters() {
			if t.GetName() == r.cluster {
				n = t.GetReplicas()
			}
		}
	})
	return n
}

func (r *splitRegion) runPeer(ctx context.Context) {
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var gen int64
		r.fsm.Read(func(s *State) { gen = s.Object(webKey).GetGeneration() })
		if gen == 0 {
			continue
		}
		n := r.running(webKey)
		ready := r.observe(n)
		failing, state := r.failure()
		if s := fmt.Sprint(gen, n, ready, failing); s != last {
			last = s
			st := &shoalpb.WorkStatus{Workload: webKey.Proto(), AppliedGeneration: gen, Replicas: n, ReadyReplicas: ready, Health: "Healthy"}
			if failing {
				st.ReadyReplicas, st.Health, st.Preserved = 0, healthUnhealthy, state
			}
			data := &shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: r.cluster, Statuses: []*shoalpb.WorkStatus{st}}}}
			r.commandCtx(ctx, data)
		}
	}
}

func (r *splitRegion) commandCtx(ctx context.Context, c *shoalpb.Command) {
	data, _ := proto.Marshal(c)
	_, _ = r.raft.ApplyLocal(ctx, data)
}

func shares(rs []*splitRegion, running bool) string {
	s := ""
	for _, r := range rs {
		n := r.target(webKey)
		if running {
			n = r.running(webKey)
		}
		s += fmt.Sprintf("%s=%d ", r.region, n)
	}
	return s
}

func TestMeshSplitsWorkAcrossRegionsAndFailsARegionOverAndBack(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 6)), obj(ppKey, policy(divided))))

	want := func(s string) func() bool { return func() bool { return shares(rs, false) == s } }
	eventually(t, "6 replicas split 2/2/2 over three regions", want("a=2 b=2 c=2 "))

	// Region c is cut off from every other: a and b find it dead and take
	// its share; c, alone, keeps running and takes everything (more
	// replicas during a partition, never fewer).
	n.isolate("c", "a", "b")
	eventually(t, "a and b take c's share", func() bool { return a.target(webKey) == 3 && b.target(webKey) == 3 })
	eventually(t, "c runs the whole workload alone", func() bool { return c.target(webKey) == 6 })

	// Heal, with c's cluster empty (it died with its region) and slow to
	// start replicas: after the stable period every region is back to its
	// share, and at no moment are fewer than 6 replicas Ready: a and b keep
	// theirs until c's are Ready.
	var low string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			total := a.ready() + b.ready() + c.ready()
			if total < 6 && low == "" {
				low = fmt.Sprintf("ready a=%d b=%d c=%d; running %s", a.ready(), b.ready(), c.ready(), shares(rs, true))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	eventually(t, "a and b run c's share Ready", func() bool { return a.ready() == 3 && b.ready() == 3 })
	c.wipe(time.Second)
	n.heal()
	eventually(t, "the split returns to 2/2/2", func() bool {
		return shares(rs, false) == "a=2 b=2 c=2 " && shares(rs, true) == "a=2 b=2 c=2 " && c.ready() == 2
	})
	close(stop)
	wg.Wait()
	if low != "" {
		t.Fatalf("the mesh ran fewer than 6 replicas during failback: %s", low)
	}
}

func TestMeshAffinityNamesClustersPerRegion(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	rs := []*splitRegion{a, b}
	// clusterNames by region-qualified name and by bare name both work.
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 4)),
		obj(ppKey, policy(`{"clusterAffinity":{"clusterNames":["b/c-b"]},"replicaScheduling":{"replicaSchedulingType":"Divided"}}`))))
	eventually(t, "only b's cluster runs it", func() bool { return shares(rs, false) == "a=0 b=4 " })
	a.command(t, applyObjects(obj(ppKey, policy(`{"clusterAffinity":{"clusterNames":["c-a","c-b"]},"replicaScheduling":{"replicaSchedulingType":"Divided"}}`))))
	eventually(t, "both run half", func() bool { return shares(rs, false) == "a=2 b=2 " })
}

func TestMeshSpreadByRegionAgreesWithoutACoordinator(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	// Two regions exactly, each running the whole workload (Duplicated):
	// every region leader picks the same two, and only they run it.
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 4)), obj(ppKey, policy(
		`{"spreadConstraints":[{"spreadByField":"region","maxGroups":2,"minGroups":2},{"spreadByField":"cluster","maxGroups":2,"minGroups":2}],"replicaScheduling":{"replicaSchedulingType":"Duplicated"}}`))))
	eventually(t, "two regions run 4 each and the third none", func() bool {
		var running, total int32
		for _, r := range rs {
			n := r.target(webKey)
			total += n
			if n > 0 {
				running++
			}
		}
		return running == 2 && total == 8
	})
	// By region name, weight 2:1 between a and b (c gets none).
	a.command(t, applyObjects(obj(ppKey, policy(`{"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Weighted",`+
		`"weightPreference":{"staticWeightList":[{"targetCluster":{"fieldSelector":{"matchExpressions":[{"key":"region","operator":"In","values":["a"]}]}},"weight":2},`+
		`{"targetCluster":{"fieldSelector":{"matchExpressions":[{"key":"region","operator":"In","values":["b"]}]}},"weight":1}]}}}`))))
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 6))))
	eventually(t, "weights by region split 4/2/0", func() bool { return shares(rs, false) == "a=4 b=2 c=0 " })
}

func TestMeshPartitionHealRestoresTheSplitFromBeforeIt(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	// Two replicas over three regions of one cluster each, at equal
	// weights: by name, descending as the UID of default/web picks (see
	// TestLeaderBreaksTiesByTheWorkloadUID), c and b run one each and a
	// none.
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, policy(divided))))
	want := func(s string) func() bool { return func() bool { return shares(rs, false) == s } }
	eventually(t, "2 replicas split 0/1/1", want("a=0 b=1 c=1 "))

	// a, cut off, finds b and c dead and runs both replicas alone; b and
	// c, who lost nothing, keep theirs.
	n.isolate("a", "b", "c")
	eventually(t, "a runs the whole workload alone", func() bool { return a.target(webKey) == 2 })

	// After the heal the surplus a took goes, and nothing else moves: b,
	// whose replica never failed, must not lose it to a because a's
	// takeover made a look more "previous" than b.
	lost := make(chan string, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b.running(webKey) == 0 {
				lost <- shares(rs, true)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	n.heal()
	eventually(t, "the split returns to 0/1/1", func() bool {
		return shares(rs, false) == "a=0 b=1 c=1 " && shares(rs, true) == "a=0 b=1 c=1 "
	}, func() string { return "targets " + shares(rs, false) + "running " + shares(rs, true) })
	// Hold the final answer for a while: it must not flip afterwards.
	time.Sleep(time.Second)
	close(stop)
	select {
	case s := <-lost:
		t.Fatalf("b stopped its replica after the heal (running %s)", s)
	default:
	}
	if s := shares(rs, false); s != "a=0 b=1 c=1 " {
		t.Fatalf("the split moved after it returned: %s", s)
	}
}
