// Package region is Shoal's domain inside one region: the region state
// machine, the scheduler, the leader loop, and the region's part in the
// mesh of regions (replication and the global split).
//
// The state machine (FSM) is what the region's Raft log builds: mesh objects
// (resource templates and policies, with versions and tombstones), cluster
// records (zones, labels, taints, health, capacity), bindings (replicas per cluster,
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
// Karmada's semantics; a cluster may sit in several zones, and a record
// without a zone list (from a peer older than the list, or an older
// snapshot) is read as its single zone, as Karmada turns spec.zone into
// spec.zones (api.ZonesOf). Only the Raft leader runs it, in the leader loop
// (Leader.Run), which is bound to leadership: it starts with a Barrier, stops
// when leadership is lost, and turns the committed state plus the gossip view
// into taints, bindings and evictions that it commits through Raft with
// ApplyLocal, never forwarded. A cluster a workload failed over from keeps
// what it ran (a held eviction) while it is failed or recovering; failback
// starts from what ran before the failure (Binding.PreFailover); an edge
// cluster within its autonomy period is not emptied for being unreachable.
// Replicas are divided by Webster's method as Karmada v1.16+ divides them
// (webster.go), and a clusterAffinities term's overflowAffinities are
// tiers filled in order and emptied in reverse, as Karmada v1.18 fills
// them (overflow.go). Application failover (appfailover.go) moves a workload off
// a cluster where its copy stays Unhealthy and bars the cluster to it until
// its copy could be healthy again; shoal migrate (migrate.go) moves a
// workload's share between clusters for good, gracefully, and rolls back
// and resumes with its target; shoal rebalance places it afresh once.
//
// The mesh of regions (Mesh) has no coordinator. Every peer answers other
// regions (Mesh.Handle: a follower with its view and where its leader is);
// the leader alone runs the sync loop (Mesh.Run, bound to leadership with
// the leader loop). Each write is stamped with a hybrid logical clock
// version (wall_ms, logical, origin region); receivers merge last writer
// wins (MergeObjects), so every region ends with the same winner, and a
// write that lost to a concurrent one is a ConflictLost event shown in
// every region (summaries carry them). The leader sends another region the
// objects newer than that region's per-origin watermarks, and answers a
// sync with what the caller lacks by its own (an answer capped at a batch
// says so, and the caller asks again at once); when digests differ although
// watermarks agree, inventories are compared. A link that refuses is tried
// again twenty times per sync interval; a sync whose call goes silent gets
// another beside it after four answer times (mesh_hedge.go), so a region
// catches up within moments of its link coming back. Deletes are tombstones,
// collected once every known region's watermark passed them and they are
// older than TombstoneQuarantine (a write sent before its region merged
// the delete may still be on its way), or after the
// tombstone TTL; a region that heard no other for longer than that asks
// for a full copy and drops what the copy lacks from before it lost touch,
// instead of resurrecting deleted objects. Versions further ahead than
// MaxClockOffset are refused and their sender reported (Mesh.Skewed); a
// region may speak only for its own clusters.
//
// Regions exchange summaries (clusters, bindings, statuses, whom they hear)
// and every region leader schedules each workload over the clusters of the
// whole mesh, named REGION/CLUSTER, from the same inputs, committing only
// its own clusters' share (leader_mesh.go). A region no link has heard for
// its grace period, and that no live region reports hearing, is dead for
// placement (SetRegionState): its share is computed away and run by the
// others. It takes part again after the failback delay, and a share that
// shrinks because it moves to another region is held until the workload is
// Ready mesh-wide. During a partition both sides run the workload (more
// replicas, never fewer).
package region
