// Package consensus runs this peer's member of its region's Raft group
// (hashicorp/raft). It knows nothing of Kubernetes or placement. As
// hashicorp/raft's NewRaft does, New takes everything from its caller: a
// raft.FSM (whose answers are nil, an error, or bytes that travel back to
// the writer), the log, stable and snapshot stores (OpenDiskStore:
// raft-boltdb/v2 and file snapshots; InmemStore for tests) and a Network.
//
// A Network carries Raft's RPCs and, beside them, forwarding: one request
// and one answer per connection, each a size-bounded protobuf frame
// (forward.go). TCPNetwork is the production one: one TCP port, the first
// byte of a connection selecting Raft or forwarding, optionally mutual TLS
// from the first byte (transport's PeerTLSConfig: peers of the same mesh CA
// and region only), with a cap on connections and deadlines before the
// first bytes; its Faults (NetFaults) cut chosen nodes off, refusing new
// connections and closing the open ones raft pools (the chaos harness
// uses them through the peer's fault endpoint). InmemNetwork connects nodes in one process and can cut links
// one way or both, partition and heal: tests show partitions with it
// instead of killing processes. Whatever the network, a guard in front of
// Raft refuses messages whose term is more than MaxTermStep ahead, so a
// forged vote cannot wrap or explode the term.
//
// The contract, in the order a peer lives it:
//
//   - Start. New restores the newest snapshot and replays the local log up
//     to the restart point (SetRestartPoint: the index the peer last acted
//     on) before Raft starts, so a peer restarted while cut off serves
//     what it last acted on; Stale says so until Raft has applied that far
//     again from a leader. Replayed entries are not applied twice.
//   - Bootstrap. A new peer with BootstrapExpect > 1 waits until the gossip
//     view (UpdateMembers) shows that many alive peers expecting the same
//     number. The lowest ID among the first BootstrapExpect of them asks
//     every other candidate over the network whether it agrees (no Raft
//     state anywhere, the same candidates from its own view, no other
//     bootstrap agreed to lately) and bootstraps only if all do; peers
//     whose views differ wait for gossip to converge instead of forming
//     two groups. A peer that has Raft state, or sees one that has
//     (Member.HasState), never bootstraps; a wiped peer waits to be
//     brought back by the leader. BootstrapExpect 1 bootstraps alone; 0
//     waits to be added.
//   - Writing. Apply commits a command through the leader: on the leader
//     directly, on a follower by forwarding it once to the leader. While
//     no leader answers it waits, and tries again as soon as raft hears of
//     another leader (or of none: a dial to a leader that is gone is
//     abandoned). On the leader Config.Authorize checks who forwarded it
//     (its certificate's identity with TLS) and may refuse it
//     (ErrForbidden). ApplyLocal
//     commits only on the leader and never forwards: leader-only work uses
//     it, so a deposed leader's decisions fail instead of being committed
//     by the next one. An ambiguous outcome (ErrTimeout, ErrLeadershipLost)
//     means the command may or may not have been committed.
//   - Leadership. LeaderCh tells the one consumer (the region's leader
//     loop) about gaining and losing leadership, latest value wins. The
//     node runs its own leader loop too: after a Barrier, and until
//     leadership is lost, it reconciles the Raft configuration with the
//     gossip view (planChanges documents the rules): alive peers are added
//     as voters up to MaxVoters and as non-voters beyond, but only once
//     whoever answers at their address proves to be that cluster (with
//     TLS); Dead or Left ones are removed after DeadServerGrace when quorum
//     allows (gossip's leave is not authenticated, a leaving peer removes
//     itself), non-voters are promoted when voters go.
//   - Leaving. Leave hands leadership over if needed and asks the leader to
//     remove this server (a peer may remove only itself); Shutdown stops
//     without leaving, keeping the state for a restart with the same
//     stores.
package consensus
