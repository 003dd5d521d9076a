package consensus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/transport"
)

// Without TLS anyone who reaches the port can send Raft messages. A vote
// request with a term at the top of the term space must not be adopted:
// the next election would wrap the term to zero.
func TestForgedTermIsRefused(t *testing.T) {
	r := startThree(t, nil)
	leader := r.waitLeader(waitLong)
	term := leader.node.Raft().CurrentTerm()

	attacker, err := NewTCPNetwork(TCPConfig{BindAddr: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for _, forged := range []uint64{math.MaxUint64, math.MaxUint64 - 1, term + MaxTermStep + 1} {
		for _, target := range r.running() {
			var resp raft.RequestVoteResponse
			err := attacker.Raft().RequestVote(raft.ServerID(target.cfg.ID), raft.ServerAddress(target.node.Addr()),
				&raft.RequestVoteRequest{
					RPCHeader: raft.RPCHeader{ID: []byte("mallory"), Addr: []byte(attacker.Addr())},
					Term:      forged, LastLogIndex: math.MaxUint64, LastLogTerm: forged,
				}, &resp)
			if err == nil || !strings.Contains(err.Error(), "term too far ahead") {
				t.Fatalf("vote request with term %d to %s: err %v, resp %+v", forged, target.cfg.ID, err, resp)
			}
			// A heartbeat takes the transport's fast path.
			var aresp raft.AppendEntriesResponse
			err = attacker.Raft().AppendEntries(raft.ServerID(target.cfg.ID), raft.ServerAddress(target.node.Addr()),
				&raft.AppendEntriesRequest{
					RPCHeader: raft.RPCHeader{ID: []byte("mallory"), Addr: []byte(attacker.Addr())},
					Term:      forged,
				}, &aresp)
			if err == nil || !strings.Contains(err.Error(), "term too far ahead") {
				t.Fatalf("heartbeat with term %d to %s: err %v, resp %+v", forged, target.cfg.ID, err, aresp)
			}
		}
	}
	for _, p := range r.running() {
		if got := p.node.Raft().CurrentTerm(); got > term+1 {
			t.Fatalf("%s's term went from %d to %d", p.cfg.ID, term, got)
		}
		if p.node.guard.Refused() == 0 {
			t.Fatalf("%s refused nothing", p.cfg.ID)
		}
	}
	applyOK(t, r.follower().node, setCmd("still", "working"))
}

// A leader cut off from the rest of its region cannot commit: its
// leader-only commits fail with not-leader or leadership-lost instead of
// being forwarded, the majority elects another leader, and what the
// deposed leader appended is gone once the partition heals.
func TestPartitionedLeaderCannotCommit(t *testing.T) {
	r := newInmemRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, nil)
	}
	old := r.waitLeader(waitLong)
	applyOK(t, old.node, setCmd("before", "1"))

	r.inmem.Isolate(old.cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := old.node.ApplyLocal(ctx, setCmd("from-deposed", "x"))
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("ApplyLocal on an isolated leader: %v, want not-leader, leadership lost or timeout", err)
	}
	// It is no longer leader, and never forwards leader-only work.
	waitFor(t, waitLong, "the isolated leader to step down", func() bool { return !old.node.IsLeader() })
	if _, err := old.node.ApplyLocal(ctx, setCmd("from-deposed", "y")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ApplyLocal on a follower: %v, want ErrNotLeader", err)
	}
	var next *testPeer
	waitFor(t, waitLong, "a leader in the majority", func() bool {
		for _, p := range r.running() {
			if p != old && p.node.IsLeader() {
				next = p
				return true
			}
		}
		return false
	})
	applyOK(t, next.node, setCmd("after", "2"))

	r.inmem.Heal()
	waitValue(t, r.running(), "after", "2")
	for _, p := range r.running() {
		if v, ok := p.fsm.get("from-deposed"); ok {
			t.Fatalf("%s applied the deposed leader's write: %q", p.cfg.ID, v)
		}
	}
}

// Peers that see different members must not form two groups: a peer
// bootstraps only when every candidate computes the same candidates from
// its own view and nobody has Raft state.
func TestBootstrapWithDifferentViewsFormsOneGroup(t *testing.T) {
	r := newInmemRegion(t)
	// a sees {a,c,d}, b sees {b,c,d}: each would be the lowest of its own
	// three. c and d see everyone.
	r.views["a"] = []string{"a", "c", "d"}
	r.views["b"] = []string{"b", "c", "d"}
	for _, id := range []string{"a", "b", "c", "d"} {
		r.start(id, 3, nil)
	}
	// Watch a while with the views apart: at most one group may form.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		checkOneGroup(t, r)
		time.Sleep(50 * time.Millisecond) // observation window for a negative condition
	}
	// Views converge: exactly one group, with every peer in it.
	r.setView("a", nil)
	r.setView("b", nil)
	leader := r.waitLeader(waitLong)
	waitFor(t, waitLong, "all four in the leader's configuration", func() bool {
		return len(servers(leader.node)) == 4
	})
	checkOneGroup(t, r)
	applyOK(t, r.peer("b").node, setCmd("one", "group"))
	waitValue(t, r.running(), "one", "group")
}

// checkOneGroup fails if two peers have Raft configurations that are not
// the same group (different first entries at the same index).
func checkOneGroup(t *testing.T, r *testRegion) {
	t.Helper()
	var first *raft.Log
	var who string
	for _, p := range r.running() {
		var l raft.Log
		if err := p.store.Logs.GetLog(1, &l); err != nil {
			continue // no state yet
		}
		if first == nil {
			first, who = &l, p.cfg.ID
			continue
		}
		if string(l.Data) != string(first.Data) || l.Term != first.Term {
			t.Fatalf("two groups: %s and %s have different bootstrap entries", who, p.cfg.ID)
		}
	}
}

// A peer that already has Raft state, or sees one that has, never
// bootstraps; a peer whose data was wiped rejoins the group it was in.
func TestWipedPeerRejoins(t *testing.T) {
	r := newInmemRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, nil)
	}
	leader := r.waitLeader(waitLong)
	applyOK(t, leader.node, setCmd("k", "v"))
	victim := r.follower()
	r.stop(victim.cfg.ID)
	victim.dir += "-wiped" // a fresh, empty data dir
	p := r.restart(victim.cfg.ID)
	waitValue(t, []*testPeer{p}, "k", "v")
	checkOneGroup(t, r)
}

// On the leader, a forwarded command is checked against who sent it.
func TestForwardedCommandsAreAuthorized(t *testing.T) {
	r := newInmemRegion(t)
	authorize := func(from Peer, cmd []byte) error {
		if !from.Verified {
			return errors.New("unverified")
		}
		if strings.Contains(string(cmd), "other-") && !strings.Contains(string(cmd), from.Identity.Cluster) {
			return fmt.Errorf("%s may not write that", from.Identity.Cluster)
		}
		return nil
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, func(p *testPeer) {
			p.ident = transport.PeerIdentity("prod", "eu", id)
			p.cfg.Authorize = authorize
		})
	}
	leader := r.waitLeader(waitLong)
	f := r.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.node.Apply(ctx, setCmd("other-"+f.cfg.ID, "mine")); err != nil {
		t.Fatalf("a peer writing for itself: %v", err)
	}
	_, err := f.node.Apply(ctx, setCmd("other-c9", "forged"))
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("a forged forward: %v, want ErrForbidden", err)
	}
	// A follower may remove only itself.
	var other string
	for _, p := range r.running() {
		if p != f && p != leader {
			other = p.cfg.ID
		}
	}
	resp, _, err := f.node.forward(ctx, leader.node.Addr(), leader.cfg.ID, &shoalpb.ForwardRequest{
		Request: &shoalpb.ForwardRequest_RemoveServer{RemoveServer: &shoalpb.RemoveServerRequest{Id: other}}}, nil)
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("removing another server: %v (%v), want ErrForbidden", err, resp)
	}
	if _, ok := servers(leader.node)[other]; !ok {
		t.Fatalf("%s was removed", other)
	}
}

// A gossip member is made a voter only if whoever answers at its Raft
// address proves to be that cluster.
func TestVoterNeedsProvenIdentity(t *testing.T) {
	r := newInmemRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, func(p *testPeer) { p.ident = transport.PeerIdentity("prod", "eu", id) })
	}
	leader := r.waitLeader(waitLong)
	waitFor(t, waitLong, "3 voters", func() bool { return len(servers(leader.node)) == 3 })
	// c4 claims, in gossip, the Raft address of c2.
	stolen := r.peer("c2").node.Addr()
	r.setMember("c4", func(m *Member) {
		m.ID, m.RaftAddr, m.Status = "c4", stolen, Alive
	})
	for range 10 { // ten reconcile passes
		time.Sleep(100 * time.Millisecond) // observation window for a negative condition
		if _, ok := servers(leader.node)["c4"]; ok {
			t.Fatal("c4 was made a server at c2's address")
		}
	}
}

// A node replays its local log up to its restart point, so that after a
// restart with no leader reachable it serves the state it last acted on;
// it is Stale until Raft has applied that far, and no entry is applied
// twice.
func TestRestartReplaysToTheRestartPoint(t *testing.T) {
	r := newInmemRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, nil)
	}
	leader := r.waitLeader(waitLong)
	for i := range 10 {
		applyOK(t, leader.node, setCmd(fmt.Sprintf("k%d", i), "v"))
	}
	waitValue(t, r.running(), "k9", "v")
	for _, p := range r.running() {
		if err := p.node.SetRestartPoint(p.node.Raft().AppliedIndex()); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range r.running() {
		r.stop(p.cfg.ID)
	}
	// c2 comes back alone: no leader, yet its state is all there.
	p := r.restart("c2")
	for i := range 10 {
		if v, _ := p.fsm.get(fmt.Sprintf("k%d", i)); v != "v" {
			t.Fatalf("after a lone restart k%d=%q, want v", i, v)
		}
	}
	if stale, since := p.node.Stale(); !stale || since.IsZero() {
		t.Fatalf("Stale() = %v, %v; want stale since the start", stale, since)
	}
	select {
	case <-p.node.CaughtUp():
		t.Fatal("CaughtUp closed while stale")
	default:
	}
	// The others return; once caught up it is no longer stale, and
	// nothing was applied twice.
	r.restart("c1")
	r.restart("c3")
	r.waitLeader(waitLong)
	applyOK(t, r.peer("c1").node, setCmd("after", "restart"))
	waitValue(t, r.running(), "after", "restart")
	select {
	case <-p.node.CaughtUp():
	case <-time.After(waitLong):
		t.Fatal("c2 did not catch up")
	}
	if stale, _ := p.node.Stale(); stale {
		t.Fatal("CaughtUp closed, and Stale() still true")
	}
	if twice := p.fsm.twice(); len(twice) > 0 {
		t.Fatalf("c2 applied log entries %v twice", twice)
	}
}

// What the state machine answers with bytes comes back to the caller,
// also through forwarding, so that a client learns what its own command
// did rather than reading a state that later commands changed.
func TestFSMAnswerComesBackThroughForwarding(t *testing.T) {
	r := startThree(t, nil)
	r.waitLeader(waitLong)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range []*testPeer{r.follower(), r.waitLeader(waitLong)} {
		before, _ := p.fsm.get("log")
		res, err := p.node.Apply(ctx, addCmd("log", p.cfg.ID+","))
		if err != nil {
			t.Fatalf("Apply on %s: %v", p.cfg.ID, err)
		}
		if got, want := string(res.Response), before+p.cfg.ID+","; got != want {
			t.Fatalf("answer on %s = %q, want %q", p.cfg.ID, got, want)
		}
	}
}

// A refused message is answered with an empty response of its own type:
// raft's in-memory pipeline reads the answer before its error, and a nil
// one panicked the node that sent it.
func TestGuardAnswersPipelinedRequestsWithTheirType(t *testing.T) {
	nw := NewInmemNetwork()
	a, err := nw.Add("a", transport.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := nw.Add("b", transport.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTermGuard(b.Raft(), func() uint64 { return 1 }, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pipe, err := a.Raft().AppendEntriesPipeline("b", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	var resp raft.AppendEntriesResponse
	fut, err := pipe.AppendEntries(&raft.AppendEntriesRequest{Term: math.MaxUint64}, &resp)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case done := <-pipe.Consumer():
		if err := done.Error(); err == nil || !strings.Contains(err.Error(), "term too far ahead") {
			t.Fatalf("pipelined forged append: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer to a pipelined request (future %v)", fut)
	}
}
