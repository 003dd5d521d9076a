package consensus

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// hangingNetwork is a Network whose forwarding dials hang until their
// context ends, as a dial to a host that is gone does (no answer, no reset).
type hangingNetwork struct {
	Network
	dialing chan struct{}
}

func (h hangingNetwork) DialForward(ctx context.Context, addr string) (net.Conn, Peer, error) {
	h.dialing <- struct{}{}
	<-ctx.Done()
	return nil, Peer{Addr: addr}, ctx.Err()
}

// TestForwardGivesUpADialWhenTheLeaderChanges: a write held in a dial to a
// leader that is gone is given up as soon as another leader is known,
// with nothing sent, so that it can go to the new one.
func TestForwardGivesUpADialWhenTheLeaderChanges(t *testing.T) {
	n := &Node{net: hangingNetwork{dialing: make(chan struct{}, 1)}}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	abandon := make(chan struct{})
	go func() {
		<-n.net.(hangingNetwork).dialing
		close(abandon)
	}()
	_, outcome, err := n.forward(ctx, "gone:1", "old", &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_Apply{
		Apply: &shoalpb.ApplyRequest{Command: setCmd("k", "v")}}}, abandon)
	if ctx.Err() != nil {
		t.Fatalf("forward returned only when its context ended: %v", err)
	}
	if outcome != outcomeRetry || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("forward: outcome %v, %v; want a retry and ErrNoLeader", outcome, err)
	}
}

// TestLeaderChangeWakesWriters: a follower's leaderChanged channel, taken
// before the leader fails, is closed when the follower learns that the
// leader is gone or who replaced it; that is what ends a held write's
// wait at once.
func TestLeaderChangeWakesWriters(t *testing.T) {
	r := newInmemRegion(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		r.start(id, 3, nil)
	}
	old := r.waitLeader(waitLong)
	f := r.follower()
	changed := f.node.leaderChanged()
	select {
	case <-changed:
		t.Fatal("closed before any change")
	default:
	}
	r.inmem.Isolate(old.cfg.ID)
	select {
	case <-changed:
	case <-time.After(waitLong):
		t.Fatalf("%s's leaderChanged not closed %s after its leader %s was cut off", f.cfg.ID, waitLong, old.cfg.ID)
	}
	applyOK(t, f.node, setCmd("after", "change"))
	waitValue(t, []*testPeer{f}, "after", "change")
}
