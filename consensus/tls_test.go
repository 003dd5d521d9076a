package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/transport"
)

// testCA is a mesh CA that issues Raft TLS configs.
type testCA struct {
	t     *testing.T
	ca    *transport.CA
	caPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, caPEM, _, err := transport.NewCA("prod", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, ca: ca, caPEM: caPEM}
}

// peer returns the Raft TLS config of the peer of cluster in region.
func (c *testCA) peer(region, cluster string) *tls.Config {
	c.t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(transport.IssueRequest{
		Identity: transport.PeerIdentity("prod", region, cluster),
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
	}, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	m, err := transport.LoadPEM(c.caPEM, certPEM, keyPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	return m.PeerTLSConfig()
}

func withTLS(cfg *tls.Config) func(*testPeer) {
	return func(p *testPeer) { p.tls = cfg }
}

func startThreeTLS(t *testing.T, ca *testCA) *testRegion {
	r := newRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, withTLS(ca.peer("eu", id)))
	}
	return r
}

func TestTLSThreeNodesElectOneLeaderAndForward(t *testing.T) {
	r := startThreeTLS(t, newTestCA(t))
	r.waitLeader(waitLong)
	for _, p := range r.running() {
		waitFor(t, waitLong, "3 voters in "+p.cfg.ID+"'s configuration", func() bool {
			return len(servers(p.node)) == 3
		})
	}
	f := r.follower()
	applyOK(t, f.node, setCmd("k", "over-tls"))
	waitValue(t, r.running(), "k", "over-tls")

	// Plain TCP gets nothing from a TLS node, not even a mux byte read.
	expectClosed(t, dial(t, f.node.Addr(), muxForward, 0, 0, 0, 0))
}

// TestTLSRefusesStrangers starts a region under one CA, then nodes whose
// certificates are of another CA or of another region: they are announced
// in the member view, but the leader never makes them servers (they cannot
// prove who they are), no Raft RPC or forward passes in either direction
// and they never receive the log.
func TestTLSRefusesStrangers(t *testing.T) {
	ca := newTestCA(t)
	r := startThreeTLS(t, ca)
	leader := r.waitLeader(waitLong)
	strangers := map[string]*tls.Config{
		"c4": newTestCA(t).peer("eu", "c4"), // another CA, same mesh and region names
		"c5": ca.peer("us", "c5"),           // the mesh CA, another region
	}
	for id, cfg := range strangers {
		rogue := r.start(id, 0, withTLS(cfg))
		t.Run(id, func(t *testing.T) {
			_, laddr := leader.node.Leader()
			term := leader.node.Raft().CurrentTerm()

			// Raft RPCs from the stranger are refused: a vote request with
			// a higher term would otherwise depose the leader.
			var resp raft.RequestVoteResponse
			err := rogue.node.net.Raft().RequestVote(raft.ServerID(leader.cfg.ID), raft.ServerAddress(laddr), &raft.RequestVoteRequest{
				RPCHeader:    raft.RPCHeader{ID: []byte(id), Addr: []byte(rogue.node.Addr())},
				Term:         term + 100,
				LastLogIndex: 1 << 40, LastLogTerm: term + 99,
			}, &resp)
			if err == nil {
				t.Fatalf("the leader answered a vote request of %s: %+v", id, resp)
			}
			if got := leader.node.Raft().CurrentTerm(); got != term || !leader.node.IsLeader() {
				t.Fatalf("the leader's term went from %d to %d", term, got)
			}
			// And the other way round: the leader does not accept the
			// stranger as a server.
			err = leader.node.net.Raft().AppendEntries(raft.ServerID(id), raft.ServerAddress(rogue.node.Addr()),
				&raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte(leader.cfg.ID), Addr: []byte(laddr)}, Term: term},
				&raft.AppendEntriesResponse{})
			if err == nil {
				t.Fatalf("%s answered the leader's AppendEntries", id)
			}

			// Forwarding is refused with ErrRefused, at once.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, err = rogue.node.forward(ctx, laddr, leader.cfg.ID, &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_Apply{
				Apply: &shoalpb.ApplyRequest{Command: setCmd("k", "from-"+id)},
			}}, nil)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("forward from %s: %v, want ErrRefused", id, err)
			}

			// The leader does not add the announced stranger to the
			// configuration: gossip alone makes nobody a server.
			applyOK(t, r.peer("c2").node, setCmd("after-"+id, "v"))
			waitValue(t, []*testPeer{r.peer("c1"), r.peer("c2"), r.peer("c3")}, "after-"+id, "v")
			for range 5 { // several reconcile passes (100ms each)
				if err := leader.node.Barrier(context.Background()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond) // observation window for a negative condition
			}
			if _, ok := servers(leader.node)[id]; ok {
				t.Fatalf("%s, which cannot prove its identity, was made a server", id)
			}
			if n := rogue.node.Raft().LastIndex(); n != 0 {
				t.Fatalf("%s received log entries up to %d", id, n)
			}
			if _, ok := rogue.fsm.get("k"); ok {
				t.Fatalf("%s applied a command", id)
			}
		})
	}
}

func TestTLSConfigValidate(t *testing.T) {
	ca := newTestCA(t)
	good := ca.peer("eu", "c1")
	tests := map[string]func(*tls.Config){
		"no certificate":     func(c *tls.Config) { c.Certificates = nil },
		"no client auth":     func(c *tls.Config) { c.ClientAuth = tls.VerifyClientCertIfGiven },
		"skip without check": func(c *tls.Config) { c.VerifyConnection = nil },
	}
	for name, mod := range tests {
		cfg := TCPConfig{BindAddr: "127.0.0.1:0", TLS: good.Clone()}
		mod(cfg.TLS)
		if err := cfg.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: Validate = %v, want ErrBadConfig", name, err)
		}
	}
	cfg := TCPConfig{BindAddr: "127.0.0.1:0", TLS: good}
	if err := cfg.Validate(); err != nil {
		t.Errorf("good TLS config: %v", err)
	}
}

// TestTCPFaultsIsolateALeader: the TCP network's fault hooks cut a leader
// off from both followers (its pooled Raft connections included); the
// followers elect another leader and commit without it; healed, it
// catches up. Dials to a cut address fail at once with ErrCutByFault.
func TestTCPFaultsIsolateALeader(t *testing.T) {
	r := startThreeTLS(t, newTestCA(t))
	old := r.waitLeader(waitLong)
	oldID := old.cfg.ID
	old.net.(*TCPNetwork).Faults().Cut(FaultTarget{})
	for _, p := range r.running() {
		if p != old {
			p.net.(*TCPNetwork).Faults().Cut(FaultTarget{Cluster: oldID})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var other *testPeer
	for _, p := range r.running() {
		if p != old {
			other = p
		}
	}
	if _, _, err := old.net.DialForward(ctx, other.node.Addr()); !errors.Is(err, ErrCutByFault) {
		t.Fatalf("a dial from the cut leader: %v, want ErrCutByFault", err)
	}
	var next *testPeer
	waitFor(t, waitLong, "a new leader among the followers", func() bool {
		for _, p := range r.running() {
			if p != old && p.node.IsLeader() {
				next = p
				return true
			}
		}
		return false
	})
	applyOK(t, next.node, setCmd("k", "without-the-old-leader"))
	if v, _ := old.fsm.get("k"); v == "without-the-old-leader" {
		t.Fatal("the cut node received the write")
	}
	for _, p := range r.running() {
		p.net.(*TCPNetwork).Faults().HealAll()
	}
	waitValue(t, r.running(), "k", "without-the-old-leader")
}
