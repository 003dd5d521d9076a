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
	HasState        bool         // the member has Raft state (gossip says)
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
	n.leaving[id] = n.cfg.Clock.Now()
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

// promiseTTL is how long a node that agreed to one peer's bootstrap
// refuses to agree to another's, and does not bootstrap itself.
const promiseTTL = 30 * time.Second

// bootstrapQueryTimeout bounds one bootstrap query.
const bootstrapQueryTimeout = 2 * time.Second

// bootstrapPromise is the bootstrap a node last agreed to.
type bootstrapPromise struct {
	from string
	at   time.Time
}

// hasState reports whether this node has Raft state or knows, from
// gossip, a member that has: then nobody may bootstrap.
func (n *Node) hasState(view []Member) bool {
	if n.HasState() {
		return true
	}
	for _, m := range view {
		if m.ID != n.cfg.ID && m.HasState && m.Status == Alive {
			return true
		}
	}
	return false
}

// HasState reports whether this node has Raft state: it bootstrapped, was
// added to a group, or started with state. Gossip publishes it so that
// no peer that sees this one bootstraps a second group.
func (n *Node) HasState() bool {
	if n.hadState {
		return true
	}
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// answerBootstrap answers another peer's bootstrap query: it agrees only
// if nobody it knows has Raft state, it expects the same number of peers,
// it computes the same candidates from its own view, and it has not agreed
// to another peer's bootstrap lately.
func (n *Node) answerBootstrap(q *shoalpb.BootstrapQuery, from Peer) *shoalpb.BootstrapAnswer {
	view := n.memberView()
	ans := &shoalpb.BootstrapAnswer{HasState: n.hasState(view)}
	voters, err := bootstrapVoters(n.cfg.BootstrapExpect, view)
	for _, m := range voters {
		ans.Candidates = append(ans.Candidates, m.ID)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Clock.Now()
	switch {
	case from.Verified && from.Identity.Cluster != q.GetFrom():
		ans.Reason = fmt.Sprintf("the query names %q but comes from %s", q.GetFrom(), from.Identity)
	case ans.HasState:
		ans.Reason = "a Raft group exists already"
	case int(q.GetExpect()) != n.cfg.BootstrapExpect:
		ans.Reason = fmt.Sprintf("this peer expects %d peers, the query %d", n.cfg.BootstrapExpect, q.GetExpect())
	case err != nil:
		ans.Reason = err.Error()
	case !slices.Equal(ans.Candidates, q.GetCandidates()):
		ans.Reason = fmt.Sprintf("this peer sees the candidates %v, the query %v", ans.Candidates, q.GetCandidates())
	case n.promised.from != "" && n.promised.from != q.GetFrom() && now.Sub(n.promised.at) < promiseTTL:
		ans.Reason = fmt.Sprintf("agreed to the bootstrap of %s %v ago", n.promised.from, now.Sub(n.promised.at).Round(time.Second))
	default:
		ans.Agrees = true
		n.promised = bootstrapPromise{from: q.GetFrom(), at: now}
	}
	return ans
}

// bootstrapLoop waits for the gossip view to show enough peers and then,
// if this node is the chosen one and every other candidate agrees, it
// bootstraps the group. It returns once the node has a configuration (its
// own bootstrap, or a leader contacted it) or at shutdown.
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	lastProblem := ""
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.bootCh:
		case <-retry.C:
		}
		if n.HasState() {
			n.log.Info("raft configuration present; not bootstrapping")
			return
		}
		problem, done := n.tryBootstrap()
		if problem != "" && problem != lastProblem {
			n.log.Warn("not bootstrapping yet", "why", problem)
		}
		lastProblem = problem
		if done {
			return
		}
	}
}

// tryBootstrap bootstraps the group if this node may; it returns why not
// (empty while simply waiting) and whether it bootstrapped.
func (n *Node) tryBootstrap() (problem string, done bool) {
	view := n.memberView()
	if n.hasState(view) {
		return "a peer already has Raft state; waiting to be added", false
	}
	voters, err := bootstrapVoters(n.cfg.BootstrapExpect, view)
	if err != nil {
		return err.Error(), false
	}
	if voters == nil || voters[0].ID != n.cfg.ID {
		return "", false
	}
	n.mu.Lock()
	p := n.promised
	n.mu.Unlock()
	if p.from != "" && p.from != n.cfg.ID && n.cfg.Clock.Now().Sub(p.at) < promiseTTL {
		return fmt.Sprintf("agreed to the bootstrap of %s", p.from), false
	}
	ids := make([]string, 0, len(voters))
	for _, m := range voters {
		ids = append(ids, m.ID)
	}
	// Every other candidate must agree: the same candidates from its own
	// view, and no Raft state anywhere. Views that differ (a peer not yet
	// seen by all) wait for gossip to converge instead of forming two
	// groups.
	for _, m := range voters[1:] {
		if why := n.askBootstrap(m, ids); why != "" {
			return fmt.Sprintf("%s does not agree: %s", m.ID, why), false
		}
	}
	conf := raft.Configuration{}
	for _, m := range voters {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr),
		})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return "bootstrap failed: " + err.Error(), false
	}
	n.log.Info("bootstrapped the group", "voters", strings.Join(ids, ","))
	return "", true
}

// askBootstrap asks candidate m whether it agrees that this node
// bootstraps ids; it returns why not, or "" if it agrees.
func (n *Node) askBootstrap(m Member, ids []string) string {
	ctx, cancel := context.WithTimeout(n.ctx, bootstrapQueryTimeout)
	defer cancel()
	req := &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_BootstrapQuery{BootstrapQuery: &shoalpb.BootstrapQuery{
		From: n.cfg.ID, Expect: uint32(n.cfg.BootstrapExpect), Candidates: ids,
	}}}
	resp, _, err := n.forward(ctx, m.RaftAddr, m.ID, req, nil)
	if err != nil {
		return "not reachable: " + err.Error()
	}
	ans := resp.GetBootstrap()
	switch {
	case ans == nil:
		return "no answer"
	case !ans.GetAgrees():
		return ans.GetReason()
	}
	return ""
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
	res, err := n.onLeader(ctx, func(ctx context.Context) (Result, error) {
		idx, err := n.removeServerLocal(ctx, n.cfg.ID)
		return Result{Index: idx}, err
	}, req)
	if err != nil {
		return fmt.Errorf("consensus: leave: %w", err)
	}
	n.log.Info("left the group", "index", res.Index)
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
