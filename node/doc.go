// Package node is the Shoal peer: one per member cluster. It wires the
// region's gossip pool, its Raft group, the region state machine and leader
// loop, and the reconciler of its own cluster, and serves the HTTP API.
//
// A peer's main loops, each in its own goroutine:
//
//   - membership: gossip events feed the Raft membership (bootstrap, voters)
//     and wake the leader loop;
//   - leadership: while this peer is the Raft leader, region.Leader.Run
//     places workloads and fails over between clusters, and region.Mesh.Run
//     syncs with the other regions (objects, summaries, region verdicts);
//     both are cancelled when leadership is lost and started again when it
//     is regained;
//   - WAN: every peer answers the other regions on its QUIC link
//     (transport.Link, WANPort): a follower with its view and where its
//     leader is, the leader by merging through Raft (region.Mesh.Handle),
//     the caller's region and cluster being what its certificate proves;
//   - apply: every change of the local copy of the region state gives the
//     reconciler the desired set for this cluster (bindings plus graceful
//     and held evictions), after the peer has recorded the state's index as
//     its restart point; the reconciler's status reports are batched and
//     committed through Raft (forwarded to the leader, which checks that a
//     peer reports only for its own cluster);
//   - cluster report: the cluster's health and capacity go into gossip
//     metadata and, when they change, into the region state, with what the
//     peer was configured with (zones, provider, labels); the zones go as a
//     list and, for peers older than the list, as the first zone alone.
//
// Because the reconciler reads the local copy, a peer cut off from its
// leader keeps its cluster as it was last told. A peer that restarts replays
// its log to its restart point and holds its cluster exactly as it is until
// it has caught up with a leader (consensus.Node.Stale), so a restart while
// cut off deletes nothing. A peer refuses to start without TLS and a gossip
// key unless Config.Insecure; the dev modes make their own (DevCredentials).
//
// A peer's own time is a clock the fault endpoint can skew (clock.go); the
// region leader, the mesh and the views read it, hashicorp/raft does not.
//
// The package also holds the local multi-process mesh behind `shoal dev`
// (which the chaos harness can kill, pause and restart peer by peer), and
// ProbeForgedIdentity, with which the harness checks that a running mesh
// refuses a peer speaking for another region or cluster.
// The Go client of the HTTP API is package api/client, which links none of
// this.
package node
