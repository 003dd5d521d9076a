package api

import "time"

// The JSON shapes of Shoal's HTTP API (version v1). Every peer serves them;
// the CLI reads them.

// ClusterView is one member cluster as `GET /v1/clusters` returns it.
type ClusterView struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// Zone is the first of Zones, kept for clients that read one zone.
	Zone string `json:"zone,omitempty"`
	// Zones lists every zone the cluster runs in, in the order its peer
	// was given them. A peer older than zone lists serves only Zone: read
	// it as the one zone (api.ZonesOf).
	Zones    []string          `json:"zones,omitempty"`
	Provider string            `json:"provider,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Taints   []TaintView       `json:"taints"`
	// Health is Ready, NotReady, Unreachable or Unknown.
	Health       string       `json:"health"`
	HealthReason string       `json:"healthReason,omitempty"`
	HealthSince  string       `json:"healthSince,omitempty"`
	Capacity     CapacityView `json:"capacity"`
	Edge         bool         `json:"edge,omitempty"`
	LastReport   string       `json:"lastReport,omitempty"`
	// Address is the host:port of the cluster's peer's HTTP API (what
	// shoal promote asks: only that peer can read the cluster).
	Address string `json:"address,omitempty"`
	// Workloads is how many workloads are bound to the cluster.
	Workloads int `json:"workloads"`
	// Age is, for a cluster of another region, how long ago that region
	// last vouched for what is shown (a Go duration). Past the status
	// bound, or once the region is dead for placement, Health is Unknown.
	Age string `json:"age,omitempty"`
}

// TaintView is a cluster taint.
type TaintView struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	Effect    string `json:"effect"`
	TimeAdded string `json:"timeAdded,omitempty"`
}

// CapacityView is a cluster's capacity.
type CapacityView struct {
	Nodes       int32     `json:"nodes"`
	Allocatable Resources `json:"allocatable"`
	Available   Resources `json:"available"`
}

// PlacementView is a workload's share on one cluster.
type PlacementView struct {
	Cluster       string `json:"cluster"`
	Region        string `json:"region"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int32  `json:"readyReplicas"`
	// Health is the cluster's report: Healthy, Progressing, Unhealthy,
	// Unknown, or Pending before the cluster reported anything.
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// AppliedGeneration is the template generation the cluster runs.
	AppliedGeneration int64 `json:"appliedGeneration"`
	// Evicting is true for replicas kept on a cluster the workload moved
	// away from, until their replacements are Ready.
	Evicting bool `json:"evicting,omitempty"`
	// Held is true (with Evicting) on a cluster the workload failed over
	// from while that cluster is failed or recovering: what it runs is
	// kept, never deleted for being unreachable or NotReady, until
	// failback decides.
	Held bool `json:"held,omitempty"`
	// Overrides are the override policies applied to this cluster's copy.
	Overrides []string `json:"overrides,omitempty"`
	// Age is, on a cluster of another region, how long ago that region
	// last vouched for this status; past the status bound it shows as
	// Unknown with no Ready replicas.
	Age string `json:"age,omitempty"`
}

// WorkloadView is one resource template and where it runs, as
// `GET /v1/workloads` returns it.
type WorkloadView struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	// WithoutReplicas is true for kinds that have no replicas (ConfigMap,
	// Service, Namespace...): every bound cluster gets the object whole,
	// the replica counts below stay 0, and ReadyClusters of BoundClusters
	// says how far it is.
	WithoutReplicas bool `json:"withoutReplicas,omitempty"`
	// DesiredReplicas is the template's replica count (0 for kinds
	// without replicas).
	DesiredReplicas int32 `json:"desiredReplicas"`
	// BoundReplicas is the sum of the replicas bound to clusters: equal to
	// DesiredReplicas when Divided, a multiple of it when Duplicated.
	BoundReplicas int32 `json:"boundReplicas"`
	// ReadyReplicas is the sum of the Ready replicas the bound clusters
	// report for the current generation (kept evicted replicas excluded).
	ReadyReplicas int32 `json:"readyReplicas"`
	// BoundClusters is the number of clusters the workload is bound to
	// (kept evicted replicas excluded); ReadyClusters is how many of them
	// run its current generation and report it Healthy.
	BoundClusters  int             `json:"boundClusters"`
	ReadyClusters  int             `json:"readyClusters"`
	Policy         string          `json:"policy,omitempty"`
	Unschedulable  bool            `json:"unschedulable,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	Placements     []PlacementView `json:"placements"`
	FailedOverFrom []string        `json:"failedOverFrom,omitempty"`
	// RequiredBy are the workloads whose pod templates name this object
	// (propagateDeps): it goes wherever they go.
	RequiredBy []string `json:"requiredBy,omitempty"`
	// MissingDependencies are what this workload's pod template names
	// that Shoal holds no template of (propagateDeps).
	MissingDependencies []string `json:"missingDependencies,omitempty"`
	// ApplicationFailover lists the clusters the workload moved off for
	// its own health (failover.application); each stays barred to it until
	// its copy there could be healthy again. ApplicationFailoverNote says
	// why a failover is waiting.
	ApplicationFailover     []AppFailoverView `json:"applicationFailover,omitempty"`
	ApplicationFailoverNote string            `json:"applicationFailoverNote,omitempty"`
	// Migrations are the shoal migrate moves in force ("FROM -> TO"):
	// the share the scheduler gives FROM runs on TO.
	Migrations []string `json:"migrations,omitempty"`
}

// AppFailoverView is one application failover of a workload.
type AppFailoverView struct {
	Cluster   string `json:"cluster"`
	Time      string `json:"time"`
	Reason    string `json:"reason"`
	PurgeMode string `json:"purgeMode"`
	// PreservedLabels go on the copies of clusters it did not run on
	// before (statePreservation).
	PreservedLabels map[string]string `json:"preservedLabels,omitempty"`
	// Until says what lifts the bar.
	Until string `json:"until"`
}

// EventView is something that happened to a workload or a cluster.
type EventView struct {
	Time    string `json:"time"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Cluster string `json:"cluster,omitempty"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
}

// WorkloadDetail is `GET /v1/workloads/describe`: the workload, its
// policy's placement and the recent events.
type WorkloadDetail struct {
	WorkloadView
	AffinityTerm string      `json:"affinityTerm,omitempty"`
	Scheduled    string      `json:"scheduled,omitempty"`
	Events       []EventView `json:"events"`
	Manifest     any         `json:"manifest,omitempty"`
}

// PolicyView is a propagation policy and what it selects.
type PolicyView struct {
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Name       string   `json:"name"`
	Priority   int32    `json:"priority"`
	Generation int64    `json:"generation"`
	Selects    []string `json:"selects"`
	Warnings   []string `json:"warnings,omitempty"`
	Spec       any      `json:"spec,omitempty"`
}

// PeerView is one peer of the region in `GET /v1/status`.
type PeerView struct {
	Cluster string `json:"cluster"`
	// Gossip is alive, suspect, dead or left.
	Gossip   string `json:"gossip"`
	RaftAddr string `json:"raftAddr,omitempty"`
	HTTPAddr string `json:"httpAddr,omitempty"`
	// Suffrage is Voter, Nonvoter or empty when not in the Raft group.
	Suffrage string `json:"suffrage,omitempty"`
	Leader   bool   `json:"leader,omitempty"`
	Health   string `json:"health,omitempty"`
}

// StatusView is `GET /v1/status`: the region as this peer sees it.
type StatusView struct {
	Region       string `json:"region"`
	Cluster      string `json:"cluster"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	LeaderHTTP   string `json:"leaderHttp,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// Stale is true while this peer has not caught up with a leader since
	// it started (restarted while cut off, say): it serves, and holds its
	// cluster at, the state it last acted on. StaleSince is when that
	// began.
	Stale      bool       `json:"stale"`
	StaleSince *time.Time `json:"staleSince,omitempty"`
	// Held is true while the peer's cluster is held exactly as it is
	// (nothing applied or deleted); WithheldChanges counts the changes
	// it held back since the hold began.
	Held            bool       `json:"held"`
	WithheldChanges int        `json:"withheldChanges,omitempty"`
	Peers           []PeerView `json:"peers"`
	Version         string     `json:"version"`
	// WANAddr is where other regions reach this peer (QUIC).
	WANAddr string `json:"wanAddr,omitempty"`
	// Regions are the other regions of the mesh as this peer's region
	// knows them.
	Regions []RegionView `json:"regions,omitempty"`
	// Mesh counts what this peer's links to other regions carried.
	Mesh *MeshView `json:"mesh,omitempty"`
	// ClockOffset is the offset the clock fault injected into this
	// peer's clock (a Go duration), empty when its clock is real.
	ClockOffset string `json:"clockOffset,omitempty"`
}

// RegionView is another region of the mesh in `GET /v1/status`.
type RegionView struct {
	Name string `json:"name"`
	// State is alive or dead (dead for placement: its share runs in the
	// other regions).
	State  string `json:"state"`
	Since  string `json:"since,omitempty"`
	Reason string `json:"reason,omitempty"`
	// LastHeard is when a link last heard from it; Age how long ago.
	LastHeard string `json:"lastHeard,omitempty"`
	Age       string `json:"age,omitempty"`
	Leader    string `json:"leader,omitempty"`
	Clusters  int    `json:"clusters"`
	Edge      bool   `json:"edge,omitempty"`
}

// MeshView counts the traffic of one peer's links to other regions
// (since it started), and says which mesh objects it holds.
type MeshView struct {
	// Digest is the hex SHA-256 over the key and version of every mesh
	// object this peer's copy of the region state holds, tombstones
	// included: peers (of any region, leaders or followers) that hold
	// the same versions of the same objects show the same digest.
	Digest string `json:"digest,omitempty"`
	// Objects is how many live mesh objects (templates and policies) it
	// holds.
	Objects       int    `json:"objects"`
	ObjectsSent   uint64 `json:"objectsSent"`
	BytesSent     uint64 `json:"bytesSent"`
	ObjectsMerged uint64 `json:"objectsMerged"`
	// ObjectsReceived and BytesReceived count what other regions sent.
	ObjectsReceived uint64 `json:"objectsReceived"`
	BytesReceived   uint64 `json:"bytesReceived"`
	Syncs           uint64 `json:"syncs"`
	FullSyncs       uint64 `json:"fullSyncs"`
	// QuickRetries counts syncs started early after a link refused.
	QuickRetries uint64 `json:"quickRetries"`
	// Hedged counts syncs started beside one whose call went silent.
	Hedged  uint64 `json:"hedged"`
	Refused uint64 `json:"refused"`
	// Skewed names peers (REGION/CLUSTER) refused for a clock too far
	// ahead.
	Skewed []string `json:"skewed,omitempty"`
}

// SimObjectView is one object a simulated cluster holds.
type SimObjectView struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	UID        string    `json:"uid"`
	Created    time.Time `json:"created"`
	Generation int64     `json:"generation"`
	// Replicas, Ready and Pending are left out for kinds without replicas.
	Replicas *int32 `json:"replicas,omitempty"`
	Ready    *int32 `json:"ready,omitempty"`
	Pending  *int32 `json:"pending,omitempty"`
}

// SimulationView answers GET /v1/simulation: the simulated cluster of the
// peer, which outlives the peer as a real cluster does.
type SimulationView struct {
	Cluster string `json:"cluster"`
	Ready   bool   `json:"ready"`
	// CapacityPercent is how much of its nodes' allocatable the cluster
	// offers (100 unless drained: 0 lets nothing new fit).
	CapacityPercent int             `json:"capacityPercent"`
	Objects         []SimObjectView `json:"objects"`
}

// ApplyResult is what happened to one document of an apply or delete.
type ApplyResult struct {
	// Document is the 1-based position of the document in the request.
	Document int    `json:"document"`
	Object   string `json:"object"`
	// Result is created, configured, unchanged, deleted or not found.
	Result     string `json:"result"`
	Generation int64  `json:"generation,omitempty"`
}

// ApplyResponse answers `POST /v1/apply` and `POST /v1/delete`.
type ApplyResponse struct {
	Results  []ApplyResult `json:"results"`
	Warnings []string      `json:"warnings,omitempty"`
	// Index is the Raft index that committed the write.
	Index uint64 `json:"index"`
	// Visible is true once the peer that answered has applied the write,
	// so that a read from it shows the write. It is false only when the
	// write was committed but the peer did not catch up in time: read
	// again shortly.
	Visible bool `json:"visible"`
}

// ErrorResponse is every error's body.
type ErrorResponse struct {
	Error string `json:"error"`
}

// WorkloadsReady reports whether every workload has all its replicas Ready
// at its current generation on Healthy clusters, with no old replicas kept
// anywhere, and none placed on the cluster excluded (which may only hold
// what it ran before it failed). It is false for no workloads. shoal demo
// and the benchmarks judge "settled" by it.
func WorkloadsReady(ws []WorkloadView, excluded string) bool {
	if len(ws) == 0 {
		return false
	}
	for _, w := range ws {
		if len(w.Placements) == 0 || w.ReadyReplicas < w.BoundReplicas || w.BoundReplicas < w.DesiredReplicas {
			return false
		}
		for _, p := range w.Placements {
			if p.Cluster == excluded {
				if !p.Held {
					return false
				}
				continue // the failed cluster keeps what it ran until failback
			}
			if p.Evicting || p.Health != "Healthy" || p.AppliedGeneration != w.Generation {
				return false
			}
		}
	}
	return true
}

// RunsOn reports whether every workload is placed on cluster (not only
// kept there by an eviction).
func RunsOn(ws []WorkloadView, cluster string) bool {
	for _, w := range ws {
		found := false
		for _, p := range w.Placements {
			if p.Cluster == cluster && !p.Evicting {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Fault is the body of POST /v1/agent/faults: a fault injected into one
// peer's traffic through its transports' own hooks, or into its clock
// (the chaos harness uses it).
type Fault struct {
	// Layer is wan (the links to other regions), gossip, raft (Raft and
	// forwarding), clock (this peer's own clock) or all (the default:
	// every traffic layer; heal and heal-all heal the clock too).
	Layer string `json:"layer,omitempty"`
	// Action is cut (drop both ways), cut-one-way (drop what this peer
	// sends), delay, loss (wan and gossip only), heal (this target's
	// faults) or heal-all (every fault of the layer); skew (clock only)
	// moves the peer's clock by Offset. A heal or heal-all of the clock
	// layer, a heal-all of all, and a heal of all with no target set the
	// offset back to zero.
	//
	// A skewed clock moves the peer's own judgements: its region
	// leader's rules (tolerations, failback delay, autonomy, grace
	// periods), its region verdicts, the mesh's clock-skew check (a
	// version further than the max clock offset in its future is refused
	// and its sender listed in MeshView.Skewed), and the ages its status
	// and views show. It does not move hashicorp/raft's own timestamps,
	// which stamp the versions of the region's writes.
	Action string `json:"action"`
	// Region, Cluster and Addr select the other end; empty fields match
	// anything. Region applies to wan (the gossip and Raft peers are all
	// of this region); Cluster to every layer; Addr to wan and raft (the
	// address this peer dials). The clock layer takes none.
	Region  string `json:"region,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	Addr    string `json:"addr,omitempty"`
	// Delay and Jitter (Go durations) for delay (gossip takes no jitter);
	// Probability (0 to 1) for loss.
	Delay       string  `json:"delay,omitempty"`
	Jitter      string  `json:"jitter,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	// Offset (a Go duration, negative for a clock behind, at most an
	// hour either way) for skew: how far the peer's clock is moved from
	// real time. Each skew replaces the previous offset.
	Offset string `json:"offset,omitempty"`
}

// ReadyOutside reports whether the workload key has all its desired
// replicas bound and Ready on its placements outside region skip ("" for
// none), none of them Unknown or reporting more Ready replicas than bound
// (not reported since its share changed), and no replicas kept evicted
// anywhere; regions is how many regions run Ready replicas of it there.
// shoal demo and the benchmarks judge a mesh of regions settled by it.
func ReadyOutside(ws []WorkloadView, key ObjectKey, skip string) (ok bool, regions int) {
	for _, w := range ws {
		if w.APIVersion != key.APIVersion || w.Kind != key.Kind || w.Namespace != key.Namespace || w.Name != key.Name {
			continue
		}
		var ready, bound int32
		seen := map[string]bool{}
		for _, p := range w.Placements {
			if p.Evicting {
				return false, 0
			}
			if p.Region == skip {
				continue
			}
			if p.Health == "Unknown" || p.ReadyReplicas > p.Replicas {
				return false, 0
			}
			bound += p.Replicas
			ready += min(p.ReadyReplicas, p.Replicas)
			if p.ReadyReplicas > 0 {
				seen[p.Region] = true
			}
		}
		return bound == w.DesiredReplicas && ready == w.DesiredReplicas, len(seen)
	}
	return false, 0
}

// RebalanceRequest is the body of POST /v1/rebalance: the workloads to
// place afresh once (apiVersion only where the kind and name are
// ambiguous).
type RebalanceRequest struct {
	Workloads []WorkloadRef `json:"workloads"`
}

// WorkloadRef names a workload.
type WorkloadRef struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// RebalanceResponse lists the workloads whose fresh placement was
// committed ("Kind namespace/name").
type RebalanceResponse struct {
	Requested []string `json:"requested"`
}
