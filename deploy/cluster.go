package deploy

import (
	"context"
	"errors"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Work is one object this cluster must hold.
type Work struct {
	Key api.ObjectKey
	// Manifest is the JSON template as the user wrote it (overrides come
	// later). The Cluster sets spec.replicas and Shoal's labels itself.
	Manifest []byte
	// Generation is the template generation; a change means re-apply.
	Generation int64
	// HasReplicas is true for kinds whose replicas Shoal divides between
	// clusters (see api.Template.HasReplicas).
	HasReplicas bool
	// Replicas is this cluster's share, already divided by the scheduler;
	// spec.replicas (spec.parallelism for a Job) is set to it when
	// HasReplicas.
	Replicas int32
}

// Health values of a Status.
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthUnhealthy   = "Unhealthy"
	HealthUnknown     = "Unknown"
)

// Status is what a cluster holds for one object.
type Status struct {
	Key               api.ObjectKey
	AppliedGeneration int64
	Replicas          int32 // replicas applied
	ReadyReplicas     int32
	Health            string // HealthHealthy, HealthProgressing, HealthUnhealthy or HealthUnknown
	Reason            string // e.g. "2/3 replicas Pending: insufficient cpu"
	Error             string // last apply/delete error; filled by the Reconciler
}

// Labels and annotations Shoal puts on every object it applies. List returns
// exactly the objects carrying ManagedByLabel=ManagedByValue.
const (
	ManagedByLabel       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "shoal"
	GenerationAnnotation = "shoal.io/generation"
)

// Cluster is one member cluster as Shoal drives it. Implementations must be
// safe for concurrent use.
type Cluster interface {
	// Apply makes the cluster hold w: creates the object, or updates it in
	// place (server-side apply). It is idempotent. It returns ErrUnavailable
	// when the cluster cannot take changes; on any error the object may or
	// may not have been changed, and Status tells which.
	Apply(ctx context.Context, w Work) error
	// Delete removes the object. Deleting an absent object returns nil.
	// Deletion may complete after Delete returns (finalizers); Status
	// returns ErrNotFound once it has.
	Delete(ctx context.Context, key api.ObjectKey) error
	// List returns the keys of the objects Shoal owns in this cluster.
	List(ctx context.Context) ([]api.ObjectKey, error)
	// Status returns what the cluster holds for key, or ErrNotFound.
	// Status.Error is left empty: apply errors are the caller's to record.
	Status(ctx context.Context, key api.ObjectKey) (Status, error)
	// Health returns whether the cluster can run workloads, and why.
	Health(ctx context.Context) (shoalpb.Health, string, error)
	// Capacity returns what the cluster's Ready nodes can still run.
	Capacity(ctx context.Context) (*shoalpb.Capacity, error)
	// Changed is signalled when any status, the health or the capacity may
	// have changed. Signals are coalesced (a buffer of one) and never block
	// the cluster; a receiver re-reads what it cares about.
	Changed() <-chan struct{}
}

var (
	// ErrNotFound is returned by Status for an object the cluster does not
	// hold.
	ErrNotFound = errors.New("deploy: object not found")
	// ErrUnavailable is returned when the cluster cannot take changes: its
	// API server does not answer, or (SimCluster) it is set NotReady.
	ErrUnavailable = errors.New("deploy: cluster unavailable")
)
