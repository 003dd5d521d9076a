package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// regions is a mesh of one-peer regions in this process, their links
// between regions on an in-memory network that can cut them.
type regions struct {
	t     *testing.T
	dir   string
	wan   *transport.InmemNetwork
	peers map[string]*Peer // by region
	cfgs  map[string]Config
	order []string
}

func regionConfig(t *testing.T, dir, name string, seeds []string) Config {
	cfg := peerConfig(t, dir, "c-"+name, 1, nil, map[string]string{"env": "prod"})
	cfg.Region = name
	cfg.Zones = []string{name + "-a"}
	cfg.JoinWAN = seeds
	cfg.SyncInterval = 200 * time.Millisecond
	cfg.RegionGrace = time.Second
	cfg.EdgeRegionGrace = time.Second
	cfg.StatusBound = 3 * time.Second
	cfg.FailbackDelay = time.Second
	return cfg
}

func wanAddr(region string) string { return "wan-" + region + ":7483" }

func newRegions(t *testing.T, names ...string) *regions {
	rs := &regions{t: t, dir: t.TempDir(), wan: transport.NewInmemNetwork(), peers: map[string]*Peer{}, cfgs: map[string]Config{}, order: names}
	for i, n := range names {
		var seeds []string
		if i > 0 {
			seeds = []string{wanAddr(names[0])}
		}
		rs.cfgs[n] = regionConfig(t, rs.dir, n, seeds)
		rs.start(n)
	}
	t.Cleanup(func() {
		for _, p := range rs.peers {
			_ = p.Shutdown()
		}
	})
	return rs
}

func (rs *regions) start(name string) {
	cfg := rs.cfgs[name]
	cfg.WANLink = rs.wan.Add(wanAddr(name), transport.PeerIdentity("test", name, cfg.Cluster))
	p, err := Start(cfg)
	if err != nil {
		rs.t.Fatalf("start region %s: %v", name, err)
	}
	cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort = portOf(p.HTTPAddr()), portOf(p.GossipAddr()), portOf(p.Raft().Addr())
	rs.cfgs[name], rs.peers[name] = cfg, p
}

// kill stops every peer of a region (its simulated cluster stays, as a
// real cluster outlives its peer).
func (rs *regions) kill(name string) {
	if err := rs.peers[name].Shutdown(); err != nil {
		rs.t.Logf("shutdown %s: %v", name, err)
	}
	delete(rs.peers, name)
}

// replicas is what the region's cluster runs of a workload.
func (rs *regions) replicas(name string, k api.ObjectKey) int32 {
	p := rs.peers[name]
	if p == nil {
		return -1
	}
	return p.Sim().Objects()[k].Replicas
}

func (rs *regions) split(k api.ObjectKey) string {
	var parts []string
	for _, n := range rs.order {
		parts = append(parts, fmt.Sprintf("%s=%d", n, rs.replicas(n, k)))
	}
	return strings.Join(parts, " ")
}

func (rs *regions) knowsAll() error {
	for n, p := range rs.peers {
		var alive int
		p.FSM().Read(func(s *region.State) {
			for _, r := range s.Regions() {
				if !r.GetDead() {
					alive++
				}
			}
		})
		if alive != len(rs.order)-1 {
			return fmt.Errorf("region %s knows %d live regions", n, alive)
		}
	}
	return nil
}

func (rs *regions) apply(name, yaml string) {
	rs.t.Helper()
	c := rs.client(name)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := c.Apply(ctx, []byte(yaml)); err != nil {
		rs.t.Fatalf("apply in %s: %v", name, err)
	}
}

func (rs *regions) client(name string) *client.Client {
	c, err := client.New(rs.peers[name].URL())
	if err != nil {
		rs.t.Fatal(err)
	}
	return c
}

func (rs *regions) digest(name string) string {
	var d []byte
	rs.peers[name].FSM().Read(func(s *region.State) { d = s.Digest() })
	return fmt.Sprintf("%x", d)
}

func (rs *regions) converged() error {
	first := rs.digest(rs.order[0])
	for _, n := range rs.order[1:] {
		if d := rs.digest(n); d != first {
			return fmt.Errorf("region %s differs from %s", n, rs.order[0])
		}
	}
	return nil
}

const meshWeb = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Weighted}
`

func configMaps(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-%d, namespace: default}\ndata: {v: %q}\n", prefix, i, prefix)
	}
	return b.String()
}

func (rs *regions) holds(name string, k api.ObjectKey) bool {
	var ok bool
	rs.peers[name].FSM().Read(func(s *region.State) { ok = s.Object(k) != nil })
	return ok
}

func cmKeyN(prefix string, i int) api.ObjectKey {
	return api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprintf("%s-%d", prefix, i)}
}

func TestRegionsSplitWorkAndTakeOverADeadRegion(t *testing.T) {
	rs := newRegions(t, "eu", "us", "ap")
	eventually(t, "every region knows the others", rs.knowsAll)
	rs.apply("eu", meshWeb+configMaps("before", 20))
	eventually(t, "web splits 2/2/2 over the regions", func() error {
		if s := rs.split(webKey); s != "eu=2 us=2 ap=2" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})
	eventually(t, "every region holds the same versions", rs.converged)
	// Any peer shows the whole fleet.
	c := rs.client("us")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := c.Clusters(ctx)
	if err != nil || len(cs) != 3 {
		t.Fatalf("clusters seen from us: %d, %v", len(cs), err)
	}

	// Every peer of ap dies; its cluster keeps running what it ran.
	rs.kill("ap")
	eventually(t, "eu and us take ap's share", func() error {
		if s := rs.split(webKey); s != "eu=3 us=3 ap=-1" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})
	// What the dead region last said is shown as Unknown, never Ready.
	eventually(t, "us shows ap's cluster and placement as Unknown", func() error {
		cs, err := rs.client("us").Clusters(ctx)
		if err != nil {
			return err
		}
		for _, cv := range cs {
			if cv.Region == "ap" && (cv.Health != "Unknown" || cv.Age == "") {
				return fmt.Errorf("ap's cluster shows %s (age %q)", cv.Health, cv.Age)
			}
		}
		ws, err := rs.client("us").Workloads(ctx)
		if err != nil {
			return err
		}
		for _, w := range ws {
			for _, p := range w.Placements {
				if p.Region == "ap" && (p.Health != "Unknown" || p.ReadyReplicas != 0) {
					return fmt.Errorf("%s on ap shows %s with %d Ready", w.Name, p.Health, p.ReadyReplicas)
				}
			}
		}
		return nil
	})
	// Only a dead region may be forgotten (shoal region forget).
	if err := rs.client("us").ForgetRegion(ctx, "eu"); err == nil || !strings.Contains(err.Error(), "alive") {
		t.Errorf("forgetting a live region: %v", err)
	}
	if err := rs.client("us").ForgetRegion(ctx, "nowhere"); err == nil || !strings.Contains(err.Error(), "not known") {
		t.Errorf("forgetting an unknown region: %v", err)
	}
	// Changes while ap is away, then ap restarts from its data dir and
	// catches up with deltas only.
	rs.apply("us", configMaps("while", 5))
	rs.start("ap")
	eventually(t, "ap catches up", func() error {
		if !rs.holds("ap", cmKeyN("while", 4)) {
			return fmt.Errorf("ap lacks the changes")
		}
		return rs.converged()
	})
	// Both eu and us may send ap each change once; a full copy would be
	// 26 objects from each.
	if got := rs.peers["ap"].Mesh().Stats().ObjectsReceived; got > 2*5 {
		t.Errorf("catching ap up on 5 changes sent it %d objects", got)
	}
	eventually(t, "ap gets its share back", func() error {
		if s := rs.split(webKey); s != "eu=2 us=2 ap=2" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})
}

func TestRegionsPartitionAndHealLoseNoWrite(t *testing.T) {
	rs := newRegions(t, "eu", "us", "ap")
	eventually(t, "every region knows the others", rs.knowsAll)
	rs.apply("eu", meshWeb)
	eventually(t, "web splits 2/2/2", func() error {
		if s := rs.split(webKey); s != "eu=2 us=2 ap=2" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})

	// One broken link between two healthy regions fails nothing over:
	// us still hears both.
	rs.wan.CutRegions("eu", "ap")
	time.Sleep(3 * rs.cfgs["eu"].RegionGrace)
	for _, n := range rs.order {
		var dead []string
		rs.peers[n].FSM().Read(func(s *region.State) {
			for _, r := range s.Regions() {
				if r.GetDead() {
					dead = append(dead, r.GetSummary().GetRegion())
				}
			}
		})
		if len(dead) > 0 {
			t.Fatalf("one broken link: region %s finds %v dead", n, dead)
		}
	}
	if s := rs.split(webKey); s != "eu=2 us=2 ap=2" {
		t.Fatalf("one broken link moved replicas: %s", s)
	}
	rs.wan.Heal()

	// {eu} | {us, ap}: both sides keep running (more replicas, never
	// fewer) and take writes.
	rs.wan.CutRegions("eu", "us")
	rs.wan.CutRegions("eu", "ap")
	eventually(t, "both sides run the whole workload", func() error {
		if s := rs.split(webKey); s != "eu=6 us=3 ap=3" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})
	rs.apply("eu", configMaps("eu-side", 3))
	rs.apply("ap", configMaps("ap-side", 3))
	// Both sides write one object: after the heal one version wins
	// everywhere and every region's describe shows the conflict.
	rs.apply("eu", configMaps("shared", 1))
	rs.apply("ap", strings.ReplaceAll(configMaps("shared", 1), `v: "shared"`, `v: "from-ap"`))
	rs.wan.Heal()
	eventually(t, "every region converges", rs.converged)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	eventually(t, "every region's describe shows the conflict", func() error {
		for _, n := range rs.order {
			ds, err := rs.client(n).Describe(ctx, "ConfigMap", "default", "shared-0")
			if err != nil {
				return err
			}
			found := false
			for _, d := range ds {
				for _, e := range d.Events {
					found = found || e.Reason == "ConflictLost"
				}
			}
			if !found {
				return fmt.Errorf("region %s shows no ConflictLost for shared-0", n)
			}
		}
		return nil
	})
	for _, n := range rs.order {
		for i := range 3 {
			for _, prefix := range []string{"eu-side", "ap-side"} {
				if !rs.holds(n, cmKeyN(prefix, i)) {
					t.Errorf("region %s lost the acknowledged write %s-%d", n, prefix, i)
				}
			}
		}
	}
	eventually(t, "web splits 2/2/2 again", func() error {
		if s := rs.split(webKey); s != "eu=2 us=2 ap=2" {
			return fmt.Errorf("web runs %s", s)
		}
		return nil
	})
}

// The admin fault endpoint cuts a peer's links to another region and heals
// them; bad faults are refused with what was wrong.
func TestRegionsFaultEndpointCutsWANLinks(t *testing.T) {
	rs := newRegions(t, "eu", "us")
	eventually(t, "every region knows the other", rs.knowsAll)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := rs.client("eu")
	for _, bad := range []struct {
		f    api.Fault
		want string
	}{
		{api.Fault{Action: "explode"}, `unknown action "explode"`},
		{api.Fault{Action: "loss", Probability: 2}, "probability in (0, 1]"},
		{api.Fault{Action: "delay", Delay: "soon"}, `delay "soon"`},
		{api.Fault{Action: "delay"}, "needs a delay"},
		{api.Fault{Layer: "disk", Action: "cut"}, `unknown layer "disk"`},
		{api.Fault{Layer: "raft", Action: "loss", Probability: 0.5}, "raft layer takes cut"},
	} {
		if err := c.Fault(ctx, bad.f); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error saying %q", bad.f, err, bad.want)
		}
	}
	dead := func(from, name string) bool {
		var d bool
		rs.peers[from].FSM().Read(func(s *region.State) { d = s.Region(name).GetDead() })
		return d
	}
	if err := c.Fault(ctx, api.Fault{Layer: "wan", Action: "cut", Region: "us"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cut regions find each other dead", func() error {
		if !dead("eu", "us") || !dead("us", "eu") {
			return fmt.Errorf("eu finds us dead: %v; us finds eu dead: %v", dead("eu", "us"), dead("us", "eu"))
		}
		return nil
	})
	if err := c.Fault(ctx, api.Fault{Action: "heal-all"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "healed, they are alive again", func() error {
		if dead("eu", "us") || dead("us", "eu") {
			return errors.New("still dead")
		}
		return nil
	})
}

// The fault endpoint isolates a peer inside its region (gossip and Raft
// alike): the region finds its cluster unreachable; healed, it is back.
func TestFaultEndpointIsolatesAPeerInItsRegion(t *testing.T) {
	m := newMesh(t, "eu-1", "eu-2", "eu-3")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var leader string
	eventually(t, "a leader", func() error {
		if leader = m.leader(); leader == "" {
			return errors.New("no leader")
		}
		return nil
	})
	victim, watcher := "", ""
	for _, n := range []string{"eu-1", "eu-2", "eu-3"} {
		switch {
		case n == leader:
		case victim == "":
			victim = n
		default:
			watcher = n
		}
	}
	health := func(of string) string {
		cs, err := m.client(watcher).Clusters(ctx)
		if err != nil {
			return err.Error()
		}
		for _, c := range cs {
			if c.Name == of {
				return c.Health
			}
		}
		return "absent"
	}
	eventually(t, victim+" Ready", func() error {
		if h := health(victim); h != "Ready" {
			return fmt.Errorf("%s is %s", victim, h)
		}
		return nil
	})
	if err := m.client(victim).Fault(ctx, api.Fault{Action: "cut"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{leader, watcher} {
		if err := m.client(n).Fault(ctx, api.Fault{Action: "cut", Cluster: victim}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, victim+" unreachable", func() error {
		if h := health(victim); h != "Unreachable" {
			return fmt.Errorf("%s is %s", victim, h)
		}
		return nil
	})
	for _, n := range []string{victim, leader, watcher} {
		if err := m.client(n).Fault(ctx, api.Fault{Action: "heal-all"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, victim+" Ready again", func() error {
		if h := health(victim); h != "Ready" {
			return fmt.Errorf("%s is %s", victim, h)
		}
		return nil
	})
}
