package chaos

import (
	"time"

	"github.com/shoalmesh/shoal/api"
)

// Sample is what the observer read from one peer at one moment. A peer that
// did not answer (killed, stopped, cut off from the harness) has Up false
// and nothing else set.
type Sample struct {
	At      time.Time `json:"at"`
	Region  string    `json:"region"`
	Cluster string    `json:"cluster"`
	Up      bool      `json:"up"`
	// Status, Workloads and Clusters are the peer's views (GET /v1/status,
	// /v1/workloads, /v1/clusters): the whole fleet as this peer sees it.
	Status    *api.StatusView    `json:"status,omitempty"`
	Workloads []api.WorkloadView `json:"workloads,omitempty"`
	Clusters  []api.ClusterView  `json:"clusters,omitempty"`
	// Sim is what the peer's simulated cluster holds: the truth of what
	// runs there, whatever any peer believes.
	Sim *api.SimulationView `json:"sim,omitempty"`
}

// EventKind names what the harness did.
type EventKind string

// What the harness does. A fault event (every kind but Heal, Write,
// Delete, Note and Check) has an ID; a Heal names the IDs it ends in
// Heals.
const (
	// Process faults of a local mesh.
	EventKill    EventKind = "kill"    // SIGKILL
	EventStop    EventKind = "stop"    // SIGSTOP
	EventRestart EventKind = "restart" // started again from its data dir
	// Network faults through the transports' hooks.
	EventCut   EventKind = "cut"   // links cut (both ways or one way)
	EventDelay EventKind = "delay" // delay and jitter on links
	EventLoss  EventKind = "loss"  // loss on links
	EventFlap  EventKind = "flap"  // links down and up on a period
	// Cluster and clock faults.
	EventNotReady EventKind = "not-ready" // a simulated cluster set NotReady
	EventSkew     EventKind = "skew"      // a peer's clock moved
	// EventForge is a request with one peer's certificate speaking for
	// another cluster or region: it must be refused.
	EventForge EventKind = "forge"
	// Heal ends the faults named in Heals (for a kill or a stop, the
	// restart or the continue).
	EventHeal EventKind = "heal"
	// Write and Delete are acknowledged writes through a peer's API.
	EventWrite  EventKind = "write"
	EventDelete EventKind = "delete"
	// Attempt is a write or delete sent and not yet acknowledged (Key,
	// Value; Detail "delete" for a delete): a peer may show it before the
	// harness hears back. It is in no report.
	EventAttempt EventKind = "attempt"
	// Note is anything else worth a line in the timeline (a step began, a
	// wait ended).
	EventNote EventKind = "note"
	// Assert is an assert step's verdict: Detail says what was asserted
	// and, when Failed, what did not hold.
	EventAssert EventKind = "assert"
)

// Event is something the harness did, at the moment it was acknowledged.
type Event struct {
	At   time.Time `json:"at"`
	Kind EventKind `json:"kind"`
	// ID identifies a fault so that its heal can name it.
	ID int `json:"id,omitempty"`
	// Heals are the IDs of the faults a Heal ends.
	Heals []int `json:"heals,omitempty"`
	// Clusters are the peers (by cluster name) the fault acts on: the
	// killed or stopped peers, the peers whose links were cut or slowed
	// (both ends), the cluster set NotReady.
	Clusters []string `json:"clusters,omitempty"`
	// Regions the fault acts on (a killed region, the sides of a cut).
	Regions []string `json:"regions,omitempty"`
	// Edge is set on a flap of an edge region's uplink.
	Edge bool `json:"edge,omitempty"`
	// Key and Value of an acknowledged Write ("namespace/name" of a
	// ConfigMap and its data's value), or the Key of a Delete; Via is the
	// peer that acknowledged it.
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	Via   string `json:"via,omitempty"`
	// Detail says what happened for a person.
	Detail string `json:"detail,omitempty"`
	// Failed is set on an Assert that did not hold.
	Failed bool `json:"failed,omitempty"`
}

// Final is the state read after the last heal, once the harness waited for
// the mesh to converge (or for the scenario's time to run out).
type Final struct {
	At time.Time `json:"at"`
	// Objects maps each region to the harness's keys it holds and their
	// values (a key it does not hold is absent), as read from one of its
	// peers.
	Objects map[string]map[string]string `json:"objects"`
	// Digests maps each region to its digest of the mesh objects.
	Digests map[string]string `json:"digests"`
	// Samples is one last sample of every peer.
	Samples []Sample `json:"samples"`
}

// Violation is one broken promise, with the evidence.
type Violation struct {
	At       time.Time `json:"at"`
	Message  string    `json:"message"`
	Evidence string    `json:"evidence,omitempty"`
}

// Recovery is how long the mesh took to run every workload's desired
// replicas Ready again after a fault.
type Recovery struct {
	FaultID int       `json:"faultId"`
	Kind    EventKind `json:"kind"`
	// Phase is PhaseHeal (measured from the fault's end: its heal, or its
	// start for a fault never healed) or PhaseTakeover (measured from its
	// start while it holds, counting only replicas outside the clusters it
	// acts on: how long the mesh took to ride it out).
	Phase string `json:"phase"`
	// From is when the measure starts; Took is until every workload was
	// Ready again, zero with Recovered false when it never was.
	From      time.Time     `json:"from"`
	Took      time.Duration `json:"took"`
	Recovered bool          `json:"recovered"`
}

// The phases of a Recovery.
const (
	PhaseHeal     = "after heal"
	PhaseTakeover = "takeover"
)

// Checker is one invariant. Every method is called from one goroutine, in
// time order: Event and Observe as things happen, Finish once at the end.
type Checker interface {
	// Name is the invariant's short name (as in report.json).
	Name() string
	// Promise says what the invariant promises, for a person.
	Promise() string
	Event(e Event)
	Observe(s Sample)
	// Finish checks the final state and returns every violation seen.
	Finish(f Final) []Violation
}

// RecoveryChecker is a Checker that also measures recoveries.
type RecoveryChecker interface {
	Checker
	Recoveries() []Recovery
}
