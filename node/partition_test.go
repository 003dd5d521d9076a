package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// faultMesh is a region of in-process peers whose Raft runs on an
// InmemNetwork and whose gossip runs through FaultTransports, so that a
// test cuts links instead of killing peers.
type faultMesh struct {
	*mesh
	raftNet *consensus.InmemNetwork
	faults  map[string]*gossip.FaultTransport
}

func newFaultMesh(t *testing.T, names ...string) *faultMesh {
	fm := &faultMesh{raftNet: consensus.NewInmemNetwork(), faults: map[string]*gossip.FaultTransport{}}
	fm.mesh = newMeshWith(t, func(c *Config) {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		ft := gossip.NewFaultTransport(nt, 1)
		fm.faults[c.Cluster] = ft
		c.GossipTransport = ft
		rn, err := fm.raftNet.Add(c.Cluster, transport.Identity{}) // unverified, as without TLS
		if err != nil {
			t.Fatal(err)
		}
		c.RaftNetwork = rn
	}, names...)
	return fm
}

// isolate cuts name off from every other peer, Raft and gossip alike.
func (fm *faultMesh) isolate(name string) {
	fm.raftNet.Isolate(name)
	for other, ft := range fm.faults {
		if other != name {
			ft.Block(name)
			fm.faults[name].Block(other)
		}
	}
}

// heal restores every link.
func (fm *faultMesh) heal() {
	fm.raftNet.Heal()
	for _, ft := range fm.faults {
		ft.Heal()
	}
}

// A peer cut off from the rest of its region (its links cut, Raft and
// gossip, nothing killed) keeps its cluster as it was last told: nothing
// it runs is deleted or scaled, and it keeps serving reads — although, to
// it, the other two clusters are dead.
func TestCutOffPeerKeepsItsClusterAsLastTold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fm := newFaultMesh(t, "eu-1", "eu-2", "eu-3")
	startRegionOn(t, ctx, fm.mesh)
	before := simIdentities(fm.peers["eu-2"])

	fm.isolate("eu-2")
	c := fm.client("eu-2")
	eventually(t, "eu-2 has lost its leader and sees the others dead", func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Leader != "" {
			return fmt.Errorf("still follows %s", st.Leader)
		}
		for _, p := range st.Peers {
			if p.Cluster != "eu-2" && p.Gossip != gossip.StateDead.String() {
				return fmt.Errorf("%s is %s to eu-2", p.Cluster, p.Gossip)
			}
		}
		return nil
	})
	watchEnd := time.Now().Add(5 * time.Second)
	for time.Now().Before(watchEnd) {
		if got := simIdentities(fm.peers["eu-2"]); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("a cut-off cluster changed:\n%v\nwas\n%v", got, before)
		}
		time.Sleep(100 * time.Millisecond) // observation window for a negative condition
	}
	if ws, err := c.Workloads(ctx); err != nil || len(ws) != 3 {
		t.Fatalf("reads from a cut-off peer: %d workloads, %v", len(ws), err)
	}
	fm.heal()
	waitPlaced(t, fm.mesh, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
	if got := simIdentities(fm.peers["eu-2"]); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after the partition healed eu-2 holds\n%v\nbefore\n%v", got, before)
	}
}

// The region leader is cut off. To it the two other clusters are dead, so
// its leader loop would move every replica onto its own cluster — but it
// can no longer commit: it steps down, its loop stops, and the majority's
// new leader decides instead (it moves the cut-off cluster's replicas
// away). After the partition heals, no decision of the deposed leader is
// in the log: no binding ever put all of web on its cluster.
func TestPartitionedLeaderDecisionsAreNeverCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fm := newFaultMesh(t, "eu-1", "eu-2", "eu-3")
	startRegionOn(t, ctx, fm.mesh)
	var old string
	eventually(t, "a leader", func() error {
		if old = fm.leader(); old == "" {
			return errors.New("no leader")
		}
		return nil
	})
	fm.isolate(old)
	var next string
	eventually(t, "a new leader in the majority, and the old one stepped down", func() error {
		next = ""
		for n, p := range fm.peers {
			if n != old && p.Raft().IsLeader() {
				next = n
			}
		}
		switch {
		case next == "":
			return errors.New("no leader in the majority")
		case fm.peers[old].Raft().IsLeader():
			return fmt.Errorf("%s still thinks it leads", old)
		}
		return nil
	})
	// The majority moves the cut-off cluster's replicas away.
	eventually(t, "web moved off "+old+" by the new leader", func() error {
		var b *shoalpb.Binding
		fm.peers[next].FSM().Read(func(s *region.State) { b = s.Binding(webKey) })
		for _, tc := range b.GetClusters() {
			if tc.GetName() == old {
				return fmt.Errorf("web still bound to %s: %v", old, b.GetClusters())
			}
		}
		return nil
	})
	// Watch the old leader a while: it must not act as leader.
	watchEnd := time.Now().Add(3 * time.Second)
	for time.Now().Before(watchEnd) {
		if fm.peers[old].Raft().IsLeader() {
			t.Fatalf("%s leads while cut off", old)
		}
		time.Sleep(100 * time.Millisecond) // observation window for a negative condition
	}
	fm.heal()
	eventually(t, "every peer applied the same log", func() error {
		var idx uint64
		for n, p := range fm.peers {
			st := p.Raft().Status()
			if idx == 0 {
				idx = st.AppliedIndex
			}
			if st.AppliedIndex != idx || st.Leader == "" {
				return fmt.Errorf("%s applied %d (others %d), leader %q", n, st.AppliedIndex, idx, st.Leader)
			}
		}
		return nil
	})
	// No binding in the committed history put all of web on the cut-off
	// cluster, and no cluster of the majority was ever marked unreachable:
	// the events would say so.
	var evs, clusterEvs []*shoalpb.Event
	fm.peers[next].FSM().Read(func(s *region.State) { evs, clusterEvs = s.Events(webKey), s.Events(api.ObjectKey{}) })
	for _, e := range clusterEvs {
		if e.GetCluster() != old && strings.Contains(e.GetMessage(), "Unreachable") {
			t.Fatalf("a decision of the deposed leader %s was committed: %s", old, e.GetMessage())
		}
	}
	for _, e := range evs {
		if e.GetReason() == "Scheduled" && strings.HasPrefix(e.GetMessage(), old+"=8 (") {
			t.Fatalf("a decision of the deposed leader %s was committed: %s", old, e.GetMessage())
		}
	}
}
