package consensus

import (
	"time"

	"github.com/hashicorp/raft"
)

// overrideBool puts v into a buffered channel of capacity 1, replacing an
// unread value so the reader always sees the latest one. It never blocks.
// Only one goroutine may send on ch.
func overrideBool(ch chan bool, v bool) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}

// watchLeader wakes the writers waiting for a leader (onLeader) whenever
// raft's view of who leads changes: a new leader elected or heard of, or
// the old one given up. Without it a write held while no leader is known
// would notice the new leader only at its next retry, up to retryMax later.
func (n *Node) watchLeader(obs <-chan raft.Observation) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-obs:
			n.leaderMu.Lock()
			close(n.leaderChangedCh)
			n.leaderChangedCh = make(chan struct{})
			n.leaderMu.Unlock()
		}
	}
}

// leaderChanged returns a channel that is closed at the next change of
// leader seen after the call.
func (n *Node) leaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderChangedCh
}

// monitorLeadership drains raft's notify channel at once (raft blocks on
// it) and passes each change to the external LeaderCh and to the internal
// leader loop, both last-value-wins.
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case v := <-n.notifyCh:
			n.log.Info("leadership changed", "leader", v, "term", n.raft.CurrentTerm())
			overrideBool(n.leaderCh, v)
			overrideBool(n.leaderLoopCh, v)
		}
	}
}

// runLeadership starts the leader loop on gaining leadership and stops it
// (waiting for it) on losing it, in the manner of Nomad's
// monitorLeadership. A true while the loop runs means leadership may have
// been lost and regained in between: the loop is restarted so that it
// begins again with a Barrier.
func (n *Node) runLeadership() {
	defer n.wg.Done()
	var stop chan struct{}
	var done chan struct{}
	stopLoop := func() {
		if stop != nil {
			close(stop)
			<-done
			stop, done = nil, nil
		}
	}
	defer stopLoop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case v := <-n.leaderLoopCh:
			stopLoop()
			if v {
				stop, done = make(chan struct{}), make(chan struct{})
				go func(stop <-chan struct{}, done chan<- struct{}) {
					defer close(done)
					n.leaderLoop(stop)
				}(stop, done)
			}
		}
	}
}

// leaderLoop is the node's own leader-only work: reconciling the Raft
// configuration with the gossip view. It starts with a Barrier so that it
// acts on everything the previous leader committed, and returns when stop
// is closed.
func (n *Node) leaderLoop(stop <-chan struct{}) {
	for {
		err := n.wait(n.ctx, n.raft.Barrier(n.cfg.ApplyTimeout))
		if err == nil {
			break
		}
		n.log.Warn("leader barrier failed; retrying", "err", err)
		select {
		case <-stop:
			return
		case <-n.ctx.Done():
			return
		case <-time.After(n.cfg.ReconcileInterval):
		}
	}
	n.log.Info("leader loop started", "term", n.raft.CurrentTerm())
	defer n.log.Info("leader loop stopped")
	tick := time.NewTicker(n.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		n.reconcile(stop)
		select {
		case <-stop:
			return
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-n.membersCh:
		}
	}
}
