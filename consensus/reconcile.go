package consensus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// changeOp is one kind of configuration change.
type changeOp int

const (
	opAddVoter changeOp = iota + 1 // add, promote, or update a voter's address
	opAddNonvoter
	opRemove
)

func (o changeOp) String() string {
	switch o {
	case opAddVoter:
		return "add-voter"
	case opAddNonvoter:
		return "add-nonvoter"
	case opRemove:
		return "remove"
	}
	return "unknown"
}

// change is one step of a reconciliation plan.
type change struct {
	op     changeOp
	id     string
	addr   string
	reason string
}

// planChanges compares the Raft configuration with the gossip view and
// returns the changes that bring them together, in order. It is a pure
// function of its inputs. The rules, kept deliberately simple:
//
//   - The leader (self) is never touched: it leaves by Leave, which hands
//     leadership over first.
//   - A server whose member has been Dead or Left for at least grace is
//     removed — gossip alone never removes a server at once: a leave is
//     not authenticated there (a peer that leaves removes itself through
//     its leader first, over the authenticated forwarding path), so a Left
//     member counts as a dead one —
//     if a voter, only when the voters that remain still have a live
//     majority (Alive or Suspect); otherwise it is kept until that holds,
//     so a removal can never be the step that loses quorum.
//   - A server absent from the view is left alone: gossip must report it
//     Left or Dead first (an incomplete view must not shrink the group).
//   - An Alive member not in the configuration is added as a voter while
//     there are fewer than maxVoters voters, else as a non-voter. Members
//     that asked to leave (leaving, by request time) are not added back
//     until gossip shows them again with a later Since (they rejoined).
//   - An Alive server whose address changed is re-added with the same
//     suffrage at the new address.
//   - Alive non-voters are promoted, lowest ID first, while there are
//     fewer than maxVoters voters (after a voter went away).
//
// Voters are never demoted (lowering MaxVoters takes effect as voters
// leave).
func planChanges(self string, servers []raft.Server, members map[string]Member,
	maxVoters int, grace time.Duration, now time.Time, leaving map[string]time.Time) []change {

	live := func(id string) bool {
		if id == self {
			return true
		}
		m, ok := members[id]
		return ok && (m.Status == Alive || m.Status == Suspect)
	}
	sorted := slices.Clone(servers)
	slices.SortFunc(sorted, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })

	voters, liveVoters := 0, 0
	inConfig := make(map[string]raft.Server, len(sorted))
	for _, s := range sorted {
		inConfig[string(s.ID)] = s
		if s.Suffrage != raft.Nonvoter {
			voters++
			if live(string(s.ID)) {
				liveVoters++
			}
		}
	}

	var plan []change
	removed := make(map[string]bool)
	for _, s := range sorted {
		id := string(s.ID)
		m, ok := members[id]
		if id == self || !ok {
			continue
		}
		isVoter := s.Suffrage != raft.Nonvoter
		switch {
		case (m.Status == Dead || m.Status == Left) && now.Sub(m.Since) >= grace:
			if isVoter && liveVoters < (voters-1)/2+1 {
				continue // removing it would leave the rest without a live majority
			}
			plan = append(plan, change{op: opRemove, id: id, reason: strings.ToLower(m.Status.String()) + " beyond grace"})
		default:
			continue
		}
		removed[id] = true
		if isVoter {
			voters--
		}
	}

	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := members[id]
		if id == self || m.Status != Alive || m.RaftAddr == "" {
			continue
		}
		if s, ok := inConfig[id]; ok {
			if string(s.Address) != m.RaftAddr && !removed[id] {
				op := opAddVoter
				if s.Suffrage == raft.Nonvoter {
					op = opAddNonvoter
				}
				plan = append(plan, change{op: op, id: id, addr: m.RaftAddr, reason: "address changed"})
			}
			continue
		}
		if t, ok := leaving[id]; ok && !m.Since.After(t) {
			continue
		}
		if voters < maxVoters {
			plan = append(plan, change{op: opAddVoter, id: id, addr: m.RaftAddr, reason: "joined"})
			voters++
		} else {
			plan = append(plan, change{op: opAddNonvoter, id: id, addr: m.RaftAddr, reason: "joined beyond max voters"})
		}
	}

	for _, s := range sorted {
		id := string(s.ID)
		m, ok := members[id]
		if voters >= maxVoters {
			break
		}
		if s.Suffrage != raft.Nonvoter || !ok || m.Status != Alive || removed[id] || m.RaftAddr == "" {
			continue
		}
		plan = append(plan, change{op: opAddVoter, id: id, addr: m.RaftAddr, reason: "promoted"})
		voters++
	}
	return plan
}

// reconcile runs one pass of planChanges against the current configuration
// and carries out the plan in order, stopping at the first failure (the
// next pass retries) or when stop is closed.
func (n *Node) reconcile(stop <-chan struct{}) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("reconcile: reading configuration failed", "err", err)
		return
	}
	view := n.memberView()
	members := make(map[string]Member, len(view))
	for _, m := range view {
		if m.ID != "" {
			members[m.ID] = m
		}
	}
	leaving := n.leavingView()
	plan := planChanges(n.cfg.ID, f.Configuration().Servers, members,
		n.cfg.MaxVoters, n.cfg.DeadServerGrace, n.cfg.Clock.Now(), leaving)
	for _, c := range plan {
		select {
		case <-stop:
			return
		default:
		}
		if c.op != opRemove {
			if err := n.proveIdentity(c.id, c.addr); err != nil {
				n.log.Warn("reconcile: not adding a member that did not prove its identity", "op", c.op.String(),
					"server", c.id, "addr", c.addr, "err", err)
				continue
			}
		}
		var fut raft.IndexFuture
		switch c.op {
		case opAddVoter:
			fut = n.raft.AddVoter(raft.ServerID(c.id), raft.ServerAddress(c.addr), 0, n.cfg.ApplyTimeout)
		case opAddNonvoter:
			fut = n.raft.AddNonvoter(raft.ServerID(c.id), raft.ServerAddress(c.addr), 0, n.cfg.ApplyTimeout)
		case opRemove:
			fut = n.raft.RemoveServer(raft.ServerID(c.id), 0, n.cfg.ApplyTimeout)
		}
		if err := n.wait(n.ctx, fut); err != nil {
			n.log.Warn("reconcile: configuration change failed", "op", c.op.String(), "server", c.id,
				"reason", c.reason, "err", err)
			return
		}
		n.log.Info("configuration changed", "op", c.op.String(), "server", c.id, "addr", c.addr,
			"reason", c.reason, "index", fut.Index(), "term", n.raft.CurrentTerm())
	}
	// Forget leave requests of members that are gone from the view or
	// have rejoined since.
	n.mu.Lock()
	for id, t := range n.leaving {
		if m, ok := members[id]; !ok || m.Since.After(t) {
			delete(n.leaving, id)
		}
	}
	n.mu.Unlock()
}

// proveIdentity checks, before id becomes a voter or non-voter at addr,
// that whoever listens at addr is the peer of that cluster: with TLS its
// certificate must name it (gossip alone makes nobody a voter). On an
// insecure network nothing can be proven and the gossip view is trusted.
func (n *Node) proveIdentity(id, addr string) error {
	ctx, cancel := context.WithTimeout(n.ctx, bootstrapQueryTimeout)
	defer cancel()
	p, err := n.net.Identify(ctx, addr)
	if err != nil {
		return err
	}
	if p.Verified && p.Identity.Cluster != id {
		return fmt.Errorf("%w: %s answers at %s, not the peer of cluster %q", ErrForbidden, p.Identity, addr, id)
	}
	return nil
}
