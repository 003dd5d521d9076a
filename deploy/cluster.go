package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"

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
	// ConflictResolution says what Apply does when the object already
	// exists in the cluster and is not Shoal's (Karmada's
	// conflictResolution): ConflictAbort (also when empty) leaves it alone
	// and fails with ErrConflict; ConflictOverwrite adopts it.
	ConflictResolution string
	// Release means the template was deleted under
	// preserveResourcesOnDeletion: the Reconciler calls Cluster.Release,
	// which stops managing the object but leaves it in the cluster, and then
	// reports the key removed. Manifest may be empty.
	Release bool
	// RenderError, when set, says why this cluster's overrides could not be
	// rendered: the Reconciler leaves the object as it is and reports it
	// Unhealthy with this error.
	RenderError string
	// Preserve are application failover's statePreservation rules: the
	// Reconciler reads each JSONPath from the live object's status and
	// reports the value (Status.Preserved).
	Preserve []PreserveRule
}

// PreserveRule reads one piece of a copy's state: JSONPath (Kubernetes
// JSONPath syntax, e.g. "{ .jobStatus.jobID }") against the object's
// .status, reported under Label.
type PreserveRule struct {
	Label    string
	JSONPath string
}

// Values of Work.ConflictResolution.
const (
	ConflictAbort     = "Abort"
	ConflictOverwrite = "Overwrite"
)

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
	// Drifted is set by a Cluster that can tell that the live object no
	// longer holds what Shoal last applied (edited by hand or by another
	// controller), or that it has not applied the object since it started;
	// the Reconciler then applies the work again even though generation
	// and replicas match. It is never reported.
	Drifted bool
	// Preserved holds the Work's Preserve rules read from the live status,
	// by label; PreserveError says why one could not be read. Filled by
	// the Reconciler.
	Preserved     map[string]string
	PreserveError string
}

// LiveStatuser is a Cluster that can give the .status of the live object
// it holds for key (nil if it has none); the Reconciler reads Work.Preserve
// from it. ErrNotFound if it holds no such object.
type LiveStatuser interface {
	LiveStatus(ctx context.Context, key api.ObjectKey) (map[string]any, error)
}

// sameStatus reports whether two statuses say the same.
func sameStatus(a, b Status) bool {
	return a.Key == b.Key && a.AppliedGeneration == b.AppliedGeneration && a.Replicas == b.Replicas &&
		a.ReadyReplicas == b.ReadyReplicas && a.Health == b.Health && a.Reason == b.Reason && a.Error == b.Error &&
		a.Drifted == b.Drifted && maps.Equal(a.Preserved, b.Preserved) && a.PreserveError == b.PreserveError
}

// Labels and annotations Shoal puts on every object it applies. List returns
// exactly the objects carrying ManagedByLabel=ManagedByValue.
// TemplateAnnotation holds the template's api.ObjectKey.String() and
// ClusterLabel the member cluster's name (KubeCluster only). A namespace
// that KubeCluster creates because an object needs it carries
// CreatedNamespaceLabel=true instead: it is not owned, and never deleted.
const (
	ManagedByLabel        = "app.kubernetes.io/managed-by"
	ManagedByValue        = "shoal"
	GenerationAnnotation  = "shoal.io/generation"
	TemplateAnnotation    = "shoal.io/template"
	ClusterLabel          = "shoal.io/cluster"
	CreatedNamespaceLabel = "shoal.io/created-namespace"
)

// Cluster is one member cluster as Shoal drives it. Implementations must be
// safe for concurrent use.
type Cluster interface {
	// Apply makes the cluster hold w: creates the object, or updates it in
	// place (server-side apply). It is idempotent. It returns ErrUnavailable
	// when the cluster cannot take changes, and ErrConflict (leaving the
	// object alone) when an object of that name exists, is not Shoal's and
	// w.ConflictResolution is not ConflictOverwrite; on any other error the
	// object may or may not have been changed, and Status tells which.
	// Works with Release or RenderError set are not for Apply.
	Apply(ctx context.Context, w Work) error
	// Delete removes the object. Deleting an absent object returns nil.
	// Deletion may complete after Delete returns (finalizers); Status
	// returns ErrNotFound once it has.
	Delete(ctx context.Context, key api.ObjectKey) error
	// Release stops managing the object without deleting it: Shoal's
	// labels and annotations are removed and the object is left as it is.
	// Afterwards Status returns ErrNotFound and List leaves the key out.
	// Releasing an absent object returns nil.
	Release(ctx context.Context, key api.ObjectKey) error
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
	// ErrConflict is returned by Apply when the object exists in the
	// cluster, is not Shoal's, and the work's ConflictResolution is Abort.
	// The object is left as it is.
	ErrConflict = errors.New("exists in the cluster and is not Shoal's; conflictResolution Abort")
)

// applicable rejects works that are not for Cluster.Apply.
func applicable(w Work) error {
	switch {
	case w.Release:
		return fmt.Errorf("%s: a released work is not applied (use Release)", w.Key.Display())
	case w.RenderError != "":
		return fmt.Errorf("%s: overrides could not be rendered: %s", w.Key.Display(), w.RenderError)
	}
	return nil
}
