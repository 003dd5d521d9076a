// Package consensus runs this peer's member of its region's Raft group
// (hashicorp/raft, with a raft-boltdb/v2 log and stable store in
// DataDir/raft.db and file snapshots in DataDir/snapshots). It knows
// nothing of Kubernetes or placement: New takes a raft.FSM, whose
// responses are nil or an error by contract.
//
// One TCP listener carries both Raft and forwarding; the first byte of a
// connection selects which (see mux.go). Frames are size-bounded; garbage
// closes the connection. With Config.TLS every connection is mutual TLS
// from its first byte, and the config decides who is let in (pki's
// PeerTLSConfig: peers of the same mesh CA and region only).
//
// The contract, in the order a peer lives it:
//
//   - Bootstrap. A new peer with BootstrapExpect > 1 waits until the gossip
//     view (UpdateMembers) shows that many alive peers expecting the same
//     number; the lowest ID among the first BootstrapExpect of them (by ID)
//     bootstraps with exactly those as voters, and the others are contacted
//     by it. BootstrapExpect 1 bootstraps alone; 0 waits to be added. A peer
//     with Raft state never bootstraps again.
//   - Writing. Apply commits a command through the leader: on the leader
//     directly, on a follower by forwarding it once to the leader over the
//     mux. An ambiguous outcome (ErrTimeout, ErrLeadershipLost) means the
//     command may or may not have been committed.
//   - Leadership. LeaderCh tells the one consumer (the region's leader
//     loop) about gaining and losing leadership, latest value wins. The
//     node runs its own leader loop too: after a Barrier, and until
//     leadership is lost, it reconciles the Raft configuration with the
//     gossip view (planChanges documents the rules): alive peers are added
//     as voters up to MaxVoters and as non-voters beyond, Left peers are
//     removed at once, Dead ones after DeadServerGrace when quorum allows,
//     non-voters are promoted when voters go.
//   - Leaving. Leave hands leadership over if needed and asks the leader to
//     remove this server; Shutdown stops without leaving, keeping the state
//     for a restart with the same DataDir.
package consensus
