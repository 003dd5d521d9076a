// Package region is Shoal's domain inside one region: the region state
// machine, the scheduler and the leader loop.
//
// The state machine (FSM) is what the region's Raft log builds: mesh objects
// (resource templates and policies, with versions and tombstones), cluster
// records (labels, taints, health, capacity), bindings (replicas per cluster,
// graceful evictions, why) and work statuses reported by each cluster's peer.
// Every log entry is one shoalpb.Command; Apply is a thin dispatcher that
// never mutates a stored message in place, so readers may share what it
// returns without copying. Time inside the state machine is the leader's
// append time of the log entry, and the floor of that time is part of every
// snapshot, so every replica computes byte-identical state from the same log
// whatever snapshots it took or restored (FSM.StateHash). ApplyObjects and
// DeleteObjects answer with what they did to each object at their own
// index (shoalpb.ObjectResults).
//
// AuthorizeForward decides on the leader which commands a peer may forward:
// reports only for its own cluster, never a command the leader loop decides.
//
// The scheduler (Schedule) is a pure function from a workload's placement,
// every known cluster and the previous binding to replicas per cluster, with
// Karmada's semantics. Only the Raft leader runs it, in the leader loop
// (Leader.Run), which is bound to leadership: it starts with a Barrier, stops
// when leadership is lost, and turns the committed state plus the gossip view
// into taints, bindings and evictions that it commits through Raft with
// ApplyLocal, never forwarded. A cluster a workload failed over from keeps
// what it ran (a held eviction) while it is failed or recovering; failback
// starts from what ran before the failure (Binding.PreFailover); an edge
// cluster within its autonomy period is not emptied for being unreachable.
package region
