package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/region"
)

// startRegion starts eu-1..eu-3, applies the examples and waits until web
// runs 4/2/2 and log-agent 2/2/2, all Ready.
func startRegion(t *testing.T, ctx context.Context) *mesh {
	t.Helper()
	m := newMesh(t, "eu-1", "eu-2", "eu-3")
	startRegionOn(t, ctx, m)
	return m
}

// startRegionOn applies the examples to a started region of eu-1..eu-3
// and waits as startRegion does.
func startRegionOn(t *testing.T, ctx context.Context, m *mesh) {
	t.Helper()
	c := m.client("eu-1")
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three clusters registered", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil {
			return err
		}
		if len(cs) != 3 {
			return fmt.Errorf("%d clusters", len(cs))
		}
		return nil
	})
	if _, err := c.Apply(ctx, readExamples(t)); err != nil {
		t.Fatal(err)
	}
	waitPlaced(t, m, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
}

// waitPlaced waits until web runs as want, log-agent runs 2 replicas on
// every cluster of want, and every workload is Ready with no replica left
// on any other cluster.
func waitPlaced(t *testing.T, m *mesh, want map[string]int32) {
	t.Helper()
	agentWant := map[string]int32{}
	for n := range want {
		agentWant[n] = 2
	}
	eventually(t, fmt.Sprintf("web runs %v and log-agent on %d clusters", want, len(want)), func() error {
		if web := readyOnly(m.running(webKey)); fmt.Sprint(web) != fmt.Sprint(want) {
			return fmt.Errorf("web runs %v", web)
		}
		if agent := readyOnly(m.running(agentKey)); fmt.Sprint(agent) != fmt.Sprint(agentWant) {
			return fmt.Errorf("log-agent runs %v", agent)
		}
		for n := range m.peers {
			if err := allReady(m.client(n), want); err != nil {
				return fmt.Errorf("seen from %s: %w", n, err)
			}
		}
		return nil
	})
}

// readyOnly drops the clusters that run no Ready replica: a NotReady
// cluster keeps its objects (its API server refuses the delete) with none
// Ready, and that is not running there.
func readyOnly(running map[string]int32) map[string]int32 {
	for n, r := range running {
		if r == 0 {
			delete(running, n)
		}
	}
	return running
}

// allReady checks, from one peer's view, that every workload is Ready and
// placed only on the clusters of want (web with exactly want's replicas).
func allReady(c *client.Client, want map[string]int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := c.Workloads(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if w.ReadyReplicas != w.BoundReplicas {
			return fmt.Errorf("%s/%s: %d/%d ready", w.Kind, w.Name, w.ReadyReplicas, w.BoundReplicas)
		}
		for _, p := range w.Placements {
			if p.Held {
				if _, ok := want[p.Cluster]; ok {
					return fmt.Errorf("%s/%s: held on %s, which is back", w.Kind, w.Name, p.Cluster)
				}
				continue // a failed cluster keeps what it ran
			}
			if p.Evicting {
				return fmt.Errorf("%s/%s: still evicting from %s", w.Kind, w.Name, p.Cluster)
			}
			if _, ok := want[p.Cluster]; !ok {
				return fmt.Errorf("%s/%s: placed on %s", w.Kind, w.Name, p.Cluster)
			}
			if w.Name == "web" && w.Kind == "Deployment" && p.Replicas != want[p.Cluster] {
				return fmt.Errorf("web: %d replicas on %s, want %d", p.Replicas, p.Cluster, want[p.Cluster])
			}
		}
	}
	return nil
}

func TestLeaderLossLosesNoAcknowledgedWrite(t *testing.T) {
	names := []string{"eu-1", "eu-2", "eu-3"}
	m := newMesh(t, names...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clients := map[string]*client.Client{}
	for _, n := range names {
		clients[n] = m.client(n)
	}
	if _, err := clients["eu-1"].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var old string
	eventually(t, "a leader", func() error {
		if old = m.leader(); old == "" {
			return errors.New("no leader")
		}
		return nil
	})

	// Three writers apply distinct ConfigMaps through every peer in turn,
	// the leader included, until stopped.
	var (
		mu        sync.Mutex
		acked     []string
		afterKill int
		killed    bool
		failed    int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("cm-%d-%d", w, seq)
				via := clients[names[(w+seq)%len(names)]]
				_, err := via.Apply(ctx, []byte(configMap(name)))
				mu.Lock()
				if err == nil {
					acked = append(acked, name)
					if killed {
						afterKill++
					}
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					// Back off a little from a peer that is down or has no leader.
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), afterKill
	}
	eventually(t, "30 writes acknowledged", func() error {
		if n, _ := count(); n < 30 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	mu.Lock()
	killed = true
	mu.Unlock()
	m.kill(old)
	eventually(t, "a new leader among the survivors", func() error {
		if l := m.leader(); l == "" || l == old {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	eventually(t, "30 writes acknowledged after the leader was killed", func() error {
		if _, n := count(); n < 30 {
			return fmt.Errorf("%d acknowledged since", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged (%d after the kill), %d not", len(acked), afterKill, failed)

	for n, p := range m.peers {
		eventually(t, "every acknowledged write on "+n, func() error {
			have := objectNames(p)
			var missing []string
			for _, name := range acked {
				if !have["ConfigMap default/"+name] {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d acknowledged writes missing, e.g. %v", len(missing), missing[:min(5, len(missing))])
			}
			return nil
		})
	}
}

// regionSnapshot copies a peer's objects and bindings, by key, without the
// time a binding was scheduled.
func regionSnapshot(p *Peer) (objects map[string]*shoalpb.Object, bindings map[string]*shoalpb.Binding) {
	objects, bindings = map[string]*shoalpb.Object{}, map[string]*shoalpb.Binding{}
	p.FSM().Read(func(s *region.State) {
		for _, o := range s.Objects() {
			objects[api.KeyFromProto(o.GetKey()).String()] = proto.Clone(o).(*shoalpb.Object)
		}
		for _, b := range s.Bindings() {
			// A new leader may schedule again with the same answer.
			b = proto.Clone(b).(*shoalpb.Binding)
			b.ScheduledUnixMs = 0
			bindings[api.KeyFromProto(b.GetWorkload()).String()] = b
		}
	})
	return objects, bindings
}

// diffProtos says how two keyed sets of messages differ, or "" when equal.
func diffProtos[M proto.Message](what string, got, want map[string]M) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			return fmt.Sprintf("%s %s missing", what, k)
		case !wok:
			return fmt.Sprintf("%s %s not there before", what, k)
		case !proto.Equal(g, w):
			return fmt.Sprintf("%s %s: %v, was %v", what, k, g, w)
		}
	}
	return ""
}

func TestRestartAllPeersKeepsState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := startRegion(t, ctx)
	// A template without a policy is kept too, unscheduled.
	if _, err := m.client("eu-2").Apply(ctx, []byte(configMap("loose"))); err != nil {
		t.Fatal(err)
	}
	var objects map[string]*shoalpb.Object
	var bindings map[string]*shoalpb.Binding
	eventually(t, "every peer has the same objects and bindings", func() error {
		objects, bindings = regionSnapshot(m.peers["eu-1"])
		if len(bindings) != 4 {
			return fmt.Errorf("%d bindings, want one per template", len(bindings))
		}
		for n, p := range m.peers {
			o, b := regionSnapshot(p)
			if d := diffProtos("object", o, objects) + diffProtos("binding", b, bindings); d != "" {
				return fmt.Errorf("%s: %s", n, d)
			}
		}
		return nil
	})
	if len(objects) != 6 {
		t.Fatalf("%d objects before the restart", len(objects))
	}

	names := []string{"eu-1", "eu-2", "eu-3"}
	for _, n := range names {
		m.kill(n)
	}
	for _, n := range names {
		m.restart(n)
	}
	if _, err := m.client("eu-3").WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := m.peers[n]
		eventually(t, n+" recovers the objects and bindings", func() error {
			o, b := regionSnapshot(p)
			if d := diffProtos("object", o, objects) + diffProtos("binding", b, bindings); d != "" {
				return errors.New(d)
			}
			return nil
		})
	}
	waitPlaced(t, m, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
}

func TestNotReadyClusterFailsOverAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := startRegion(t, ctx)
	c := m.client("eu-1")
	taints := func(name string) (string, []string, error) {
		cs, err := c.Clusters(ctx)
		if err != nil {
			return "", nil, err
		}
		for _, cv := range cs {
			if cv.Name == name {
				var ts []string
				for _, tn := range cv.Taints {
					ts = append(ts, tn.Key+":"+tn.Effect)
				}
				return cv.Health, ts, nil
			}
		}
		return "", nil, fmt.Errorf("no cluster %s", name)
	}

	if err := m.client("eu-3").SetSimulatedReady(ctx, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu-3 NotReady and tainted not-ready", func() error {
		health, ts, err := taints("eu-3")
		if err != nil {
			return err
		}
		if health != "NotReady" || fmt.Sprint(ts) != "["+api.TaintClusterNotReady+":NoExecute]" {
			return fmt.Errorf("health %s, taints %v", health, ts)
		}
		return nil
	})
	// Weights 2:1 over 8 replicas once eu-3 is out.
	waitPlaced(t, m, map[string]int32{"eu-1": 5, "eu-2": 3})

	if err := m.client("eu-3").SetSimulatedReady(ctx, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu-3 Ready and untainted", func() error {
		health, ts, err := taints("eu-3")
		if err != nil {
			return err
		}
		if health != "Ready" || len(ts) != 0 {
			return fmt.Errorf("health %s, taints %v", health, ts)
		}
		return nil
	})
	waitPlaced(t, m, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
}

func TestGracefulLeaveRemovesClusterAndMovesReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := startRegion(t, ctx)
	// The leader leaves: it hands leadership over on its way out.
	var leaver string
	eventually(t, "a leader", func() error {
		if leaver = m.leader(); leaver == "" {
			return errors.New("no leader")
		}
		return nil
	})
	after := map[string]map[string]int32{
		"eu-1": {"eu-2": 4, "eu-3": 4},
		"eu-2": {"eu-1": 5, "eu-3": 3},
		"eu-3": {"eu-1": 5, "eu-2": 3},
	}[leaver]
	p := m.peers[leaver]
	if err := m.client(leaver).Leave(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(deadline):
		t.Fatalf("%s did not stop after leaving", leaver)
	}
	m.kill(leaver) // forget it; it is already shut down

	var survivor string
	for n := range m.peers {
		survivor = n
	}
	c := m.client(survivor)
	eventually(t, leaver+" removed from the clusters and the Raft group", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil {
			return err
		}
		var have []string
		for _, cv := range cs {
			have = append(have, cv.Name)
		}
		if len(cs) != 2 {
			return fmt.Errorf("clusters %v", have)
		}
		for _, n := range have {
			if n == leaver {
				return fmt.Errorf("clusters %v", have)
			}
		}
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		for _, pv := range st.Peers {
			if pv.Cluster == leaver && pv.Suffrage != "" {
				return fmt.Errorf("%s is still a Raft %s", leaver, pv.Suffrage)
			}
		}
		if st.Leader == "" || st.Leader == leaver {
			return fmt.Errorf("leader %q", st.Leader)
		}
		return nil
	})
	waitPlaced(t, m, after)
}
