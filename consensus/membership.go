package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// MemberStatus is a member's health in the gossip view.
type MemberStatus int

// Member statuses. The zero value is not a status: such a member counts as
// neither alive nor gone.
const (
	Alive   MemberStatus = iota + 1 // answering probes
	Suspect                         // missed probes, not yet declared dead
	Dead                            // declared dead by gossip
	Left                            // left gracefully
)

func (s MemberStatus) String() string {
	switch s {
	case Alive:
		return "Alive"
	case Suspect:
		return "Suspect"
	case Dead:
		return "Dead"
	case Left:
		return "Left"
	}
	return fmt.Sprintf("MemberStatus(%d)", int(s))
}

// Member is one peer of the region as gossip sees it.
type Member struct {
	ID              string       // Raft server ID (the cluster name)
	RaftAddr        string       // the member's Node.Addr
	Status          MemberStatus // current health
	Since           time.Time    // when Status last changed
	BootstrapExpect int          // the member's Config.BootstrapExpect
}

// UpdateMembers hands the node the whole gossip view (every member the
// region knows, this node included). Call it on every change; it copies
// the slice, wakes the bootstrap and leader loops, and returns at once.
// Safe for concurrent use.
func (n *Node) UpdateMembers(members []Member) {
	cp := slices.Clone(members)
	n.mu.Lock()
	n.members = cp
	n.mu.Unlock()
	for _, ch := range []chan struct{}{n.membersCh, n.bootCh} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *Node) memberView() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.members)
}

// markLeaving records that server id asked to be removed, so that the
// leader does not add it back while gossip still shows it alive.
func (n *Node) markLeaving(id string) {
	n.mu.Lock()
	n.leaving[id] = time.Now()
	n.mu.Unlock()
}

func (n *Node) leavingView() map[string]time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[string]time.Time, len(n.leaving))
	for k, v := range n.leaving {
		m[k] = v
	}
	return m
}

// bootstrapLoop waits for the gossip view to show enough peers and then,
// if this node is the chosen one, bootstraps the group. It returns once
// the node has a configuration (its own bootstrap, or a leader contacted
// it) or at shutdown.
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	lastProblem := ""
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.bootCh:
		}
		if f := n.raft.GetConfiguration(); f.Error() == nil && len(f.Configuration().Servers) > 0 {
			n.log.Info("raft configuration present; not bootstrapping")
			return
		}
		voters, err := bootstrapVoters(n.cfg.BootstrapExpect, n.memberView())
		if err != nil {
			if msg := err.Error(); msg != lastProblem {
				n.log.Error("not bootstrapping", "err", err)
				lastProblem = msg
			}
			continue
		}
		lastProblem = ""
		if voters == nil {
			continue
		}
		if voters[0].ID != n.cfg.ID {
			if slices.ContainsFunc(voters, func(m Member) bool { return m.ID == n.cfg.ID }) {
				n.log.Info("waiting to be contacted by the bootstrapping peer", "bootstrapper", voters[0].ID)
			}
			continue
		}
		conf := raft.Configuration{}
		ids := make([]string, 0, len(voters))
		for _, m := range voters {
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr),
			})
			ids = append(ids, m.ID)
		}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.log.Error("bootstrap failed", "err", err)
			continue
		}
		n.log.Info("bootstrapped the group", "voters", strings.Join(ids, ","))
		return
	}
}

// bootstrapVoters picks the initial voters from the gossip view: the first
// expect alive members by ID among those that expect a bootstrap at all
// (members with BootstrapExpect 0 only ever join). It returns nil while
// there are fewer than expect such members, and an error when one of them
// expects a different number: then nobody bootstraps until the operator
// fixes it. The member with the lowest ID in the result bootstraps.
func bootstrapVoters(expect int, members []Member) ([]Member, error) {
	var cands []Member
	var mismatch []string
	for _, m := range members {
		if m.Status != Alive || m.BootstrapExpect == 0 {
			continue
		}
		if m.BootstrapExpect != expect {
			mismatch = append(mismatch, fmt.Sprintf("%s expects %d", m.ID, m.BootstrapExpect))
			continue
		}
		if m.RaftAddr == "" {
			continue
		}
		cands = append(cands, m)
	}
	if len(mismatch) > 0 {
		slices.Sort(mismatch)
		return nil, fmt.Errorf("BootstrapExpect mismatch: this peer expects %d, but %s; give every peer the same value",
			expect, strings.Join(mismatch, ", "))
	}
	if len(cands) < expect {
		return nil, nil
	}
	slices.SortFunc(cands, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return cands[:expect], nil
}

// Leave removes this node from the group gracefully: a leader first hands
// leadership to another voter and waits for a new leader, then the (new)
// leader is asked to remove this server. Bounded by ctx (ApplyTimeout if it
// has no deadline). The node keeps running; call Shutdown afterwards, and
// leave gossip so the leader does not wait for the dead-server grace.
// The last voter of a group cannot hand over and just returns nil.
// The leader remembers the request and does not add this server back while
// gossip still shows it alive with the same Since; that memory is the
// leader's own, so a new leader elected before this peer leaves gossip may
// add it back.
func (n *Node) Leave(ctx context.Context) error {
	if n.ctx.Err() != nil {
		return ErrShutdown
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	if n.IsLeader() {
		f := n.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return mapRaftErr(err)
		}
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		if voters <= 1 {
			n.log.Info("last voter leaving; nothing to hand over")
			return nil
		}
		n.log.Info("leaving: transferring leadership")
		if err := n.wait(ctx, n.raft.LeadershipTransfer()); err != nil {
			return fmt.Errorf("consensus: leave: leadership transfer: %w", err)
		}
		if err := n.waitOtherLeader(ctx); err != nil {
			return fmt.Errorf("consensus: leave: %w", err)
		}
	}
	req := &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_RemoveServer{
		RemoveServer: &shoalpb.RemoveServerRequest{Id: n.cfg.ID},
	}}
	idx, err := n.onLeader(ctx, func(ctx context.Context) (uint64, error) {
		return n.removeServerLocal(ctx, n.cfg.ID)
	}, req)
	if err != nil {
		return fmt.Errorf("consensus: leave: %w", err)
	}
	n.log.Info("left the group", "index", idx)
	return nil
}

// waitOtherLeader waits until a leader other than this node is known.
func (n *Node) waitOtherLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := n.Leader(); id != "" && id != n.cfg.ID {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for a new leader (%w)", ErrNoLeader, ctx.Err())
		case <-n.ctx.Done():
			return ErrShutdown
		case <-t.C:
		}
	}
}
