package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/gossip"
)

const deadline = 30 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mesh is a region of in-process peers on loopback.
type mesh struct {
	t     testing.TB
	dir   string
	peers map[string]*Peer
	cfgs  map[string]Config
}

func peerConfig(t testing.TB, dir, name string, expect int, join []string, labels map[string]string) Config {
	cfg := DefaultConfig()
	cfg.Region = "eu"
	cfg.Cluster = name
	cfg.Zones = []string{"zone-" + name}
	cfg.Labels = labels
	cfg.DataDir = filepath.Join(dir, name)
	cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = 0, 0, 0, 0
	cfg.Gossip = gossip.ProfileLocal
	cfg.BootstrapExpect = expect
	cfg.Join = join
	cfg.Sim.ReadyDelay = 50 * time.Millisecond
	cfg.FailbackDelay = 2 * time.Second
	cfg.Logger = testLogger(t)
	cfg.Insecure = true // TLS has its own tests (tls_test.go)
	cfg.GossipKey = []byte("0123456789abcdef0123456789abcdef")
	return cfg
}

func newMesh(t testing.TB, names ...string) *mesh {
	return newMeshWith(t, nil, names...)
}

// newMeshWith starts a region like newMesh, with tweak (if not nil)
// applied to every peer's configuration before it starts.
func newMeshWith(t testing.TB, tweak func(*Config), names ...string) *mesh {
	m := &mesh{t: t, dir: t.TempDir(), peers: map[string]*Peer{}, cfgs: map[string]Config{}}
	var join []string
	for _, n := range names {
		cfg := peerConfig(t, m.dir, n, len(names), join, map[string]string{"env": "prod"})
		if tweak != nil {
			tweak(&cfg)
		}
		p, err := Start(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", n, err)
		}
		if join == nil {
			join = []string{p.GossipAddr()}
		}
		// Restarts reuse the ports the peer got, as a real restart would.
		cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = portOf(p.HTTPAddr()), portOf(p.GossipAddr()), portOf(p.Raft().Addr()), portOf(p.WANAddr())
		m.peers[n], m.cfgs[n] = p, cfg
	}
	t.Cleanup(func() {
		for _, p := range m.peers {
			_ = p.Shutdown()
		}
	})
	return m
}

func portOf(addr string) int {
	var host string
	var port int
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			host = addr[:i]
			fmt.Sscan(addr[i+1:], &port)
			break
		}
	}
	_ = host
	return port
}

func (m *mesh) client(name string) *client.Client {
	c, err := client.New(m.peers[name].URL())
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

func (m *mesh) kill(name string) {
	if err := m.peers[name].Shutdown(); err != nil {
		m.t.Logf("shutdown %s: %v", name, err)
	}
	delete(m.peers, name)
}

func (m *mesh) restart(name string) {
	p, err := Start(m.cfgs[name])
	if err != nil {
		m.t.Fatalf("restart %s: %v", name, err)
	}
	m.peers[name] = p
}

func (m *mesh) leader() string {
	for n, p := range m.peers {
		if p.Raft().IsLeader() {
			return n
		}
	}
	return ""
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	var err error
	for time.Now().Before(end) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, deadline, err)
}

// running counts the ready replicas of a workload in each live peer's
// simulated cluster.
func (m *mesh) running(key api.ObjectKey) map[string]int32 {
	out := map[string]int32{}
	for n, p := range m.peers {
		if o, ok := p.Sim().Objects()[key]; ok {
			out[n] = o.Ready
		}
	}
	return out
}

func readExamples(t testing.TB) []byte {
	web, err := os.ReadFile("../examples/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := os.ReadFile("../examples/log-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return append(append(web, []byte("\n---\n")...), agent...)
}

var (
	webKey   = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	agentKey = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "log-agent"}
)

func sum(m map[string]int32) int32 {
	var s int32
	for _, v := range m {
		s += v
	}
	return s
}

func TestRegionPlacesFailsOverAndFailsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Weights 2:1:1 over 8 replicas; log-agent duplicated.
	m := startRegion(t, ctx)

	m.kill("eu-3")
	// Weights 2:1 over 8: 5.33 and 2.67, which Webster's method (Karmada
	// v1.16+) rounds to 5 and 3.
	eventually(t, "web's replicas run on eu-1 and eu-2", func() error {
		web := m.running(webKey)
		if web["eu-1"] != 5 || web["eu-2"] != 3 {
			return fmt.Errorf("web %v", web)
		}
		return nil
	})
	m.restart("eu-3")
	waitPlaced(t, m, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
}

// TestRaftProfileFollowsGossipProfile: edge peers get raft's slower,
// lossy-link timing; LAN and local peers the LAN timing.
func TestRaftProfileFollowsGossipProfile(t *testing.T) {
	for _, tt := range []struct {
		p    gossip.Profile
		want consensus.Config
	}{
		{gossip.ProfileLAN, consensus.DefaultConfig()},
		{gossip.ProfileLocal, consensus.DefaultConfig()},
		{gossip.ProfileEdge, consensus.DefaultEdgeConfig()},
	} {
		got := raftProfile(tt.p)
		if got.HeartbeatTimeout != tt.want.HeartbeatTimeout || got.ElectionTimeout != tt.want.ElectionTimeout ||
			got.LeaderLeaseTimeout != tt.want.LeaderLeaseTimeout {
			t.Errorf("%s: heartbeat %s, election %s, lease %s; want %s, %s, %s", tt.p, got.HeartbeatTimeout, got.ElectionTimeout,
				got.LeaderLeaseTimeout, tt.want.HeartbeatTimeout, tt.want.ElectionTimeout, tt.want.LeaderLeaseTimeout)
		}
	}
	if lan, edge := consensus.DefaultConfig(), consensus.DefaultEdgeConfig(); edge.HeartbeatTimeout <= lan.HeartbeatTimeout {
		t.Errorf("edge heartbeat timeout %s is not longer than the LAN one %s", edge.HeartbeatTimeout, lan.HeartbeatTimeout)
	}
}
