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
// append time of the log entry, so every replica computes the same state.
//
// The scheduler (Schedule) is a pure function from a workload's placement,
// every known cluster and the previous binding to replicas per cluster, with
// Karmada's semantics. Only the Raft leader runs it, in the leader loop
// (Leader.Run), which is bound to leadership: it starts with a Barrier, stops
// when leadership is lost, and turns the committed state plus the gossip view
// into taints, bindings and evictions that it commits through Raft.
package region
