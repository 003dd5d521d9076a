package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group and version of the Karmada policy API that Shoal accepts unchanged.
const (
	PolicyGroup      = "policy.karmada.io"
	PolicyVersion    = "v1alpha1"
	PolicyAPIVersion = PolicyGroup + "/" + PolicyVersion

	KindPropagationPolicy        = "PropagationPolicy"
	KindClusterPropagationPolicy = "ClusterPropagationPolicy"
)

// PropagationPolicy selects namespaced resource templates and says where they
// run. Its YAML form is Karmada's policy.karmada.io/v1alpha1 PropagationPolicy.
type PropagationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PropagationSpec `json:"spec"`
}

// ClusterPropagationPolicy is a cluster-scoped PropagationPolicy: it may
// select resources in any namespace and cluster-scoped resources. A namespaced
// PropagationPolicy that matches a resource always wins over it.
type ClusterPropagationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PropagationSpec `json:"spec"`
}

// PropagationSpec is the desired behaviour of a propagation policy.
type PropagationSpec struct {
	// ResourceSelectors picks the resource templates the policy applies to.
	ResourceSelectors []ResourceSelector `json:"resourceSelectors"`

	// Association is deprecated in Karmada in favour of PropagateDeps.
	Association bool `json:"association,omitempty"`
	// PropagateDeps propagates referenced ConfigMaps/Secrets along with the
	// workload. Not implemented by Shoal yet.
	PropagateDeps bool `json:"propagateDeps,omitempty"`

	// Placement says which clusters run the selected resources and how
	// replicas are split between them.
	Placement Placement `json:"placement,omitempty"`

	// Priority decides between several policies that match one resource:
	// the higher wins. Defaults to 0.
	Priority *int32 `json:"priority,omitempty"`

	// Preemption lets a policy take resources from a lower-priority policy
	// (Always) or not (Never, the default).
	Preemption PreemptionBehavior `json:"preemption,omitempty"`

	DependentOverrides []string `json:"dependentOverrides,omitempty"`

	// SchedulerName names the scheduler; only "default-scheduler" exists.
	SchedulerName string `json:"schedulerName,omitempty"`

	// Failover says how workloads move when a cluster fails.
	Failover *FailoverBehavior `json:"failover,omitempty"`

	// ConflictResolution says what to do when the resource already exists in
	// a member cluster and is not Shoal's: Abort (default) or Overwrite.
	ConflictResolution ConflictResolution `json:"conflictResolution,omitempty"`

	ActivationPreference ActivationPreference `json:"activationPreference,omitempty"`

	Suspension *Suspension `json:"suspension,omitempty"`

	// PreserveResourcesOnDeletion keeps the propagated resources in member
	// clusters when the template is deleted.
	PreserveResourcesOnDeletion *bool `json:"preserveResourcesOnDeletion,omitempty"`

	SchedulePriority *SchedulePriority `json:"schedulePriority,omitempty"`
}

// ResourceSelector selects resource templates.
type ResourceSelector struct {
	APIVersion    string                `json:"apiVersion"`
	Kind          string                `json:"kind"`
	Namespace     string                `json:"namespace,omitempty"`
	Name          string                `json:"name,omitempty"`
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
}

// FieldSelector selects clusters by their provider, region and zone.
type FieldSelector struct {
	MatchExpressions []FieldSelectorRequirement `json:"matchExpressions,omitempty"`
}

// FieldSelectorRequirement has the shape of Kubernetes'
// NodeSelectorRequirement. Key is one of provider, region, zone.
type FieldSelectorRequirement struct {
	Key string `json:"key"`
	// Operator is In, NotIn, Exists, DoesNotExist, Gt or Lt.
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Field selector keys.
const (
	ProviderField = "provider"
	RegionField   = "region"
	ZoneField     = "zone"
)

// Placement describes where resources run.
type Placement struct {
	// ClusterAffinity restricts the clusters. Mutually exclusive with
	// ClusterAffinities.
	ClusterAffinity *ClusterAffinity `json:"clusterAffinity,omitempty"`

	// ClusterAffinities are tried in order: the first term with a feasible
	// placement is used.
	ClusterAffinities []ClusterAffinityTerm `json:"clusterAffinities,omitempty"`

	// ClusterTolerations lets the resources run on tainted clusters.
	ClusterTolerations []Toleration `json:"clusterTolerations,omitempty"`

	// SpreadConstraints spread the resources over groups of clusters.
	SpreadConstraints []SpreadConstraint `json:"spreadConstraints,omitempty"`

	// ReplicaScheduling says how replicas are split between clusters.
	ReplicaScheduling *ReplicaSchedulingStrategy `json:"replicaScheduling,omitempty"`

	// WorkloadAffinity co-locates (affinity) or separates (antiAffinity)
	// workloads whose templates share a label value (Karmada v1.18+; see
	// region/workload_affinity.go).
	WorkloadAffinity *WorkloadAffinity `json:"workloadAffinity,omitempty"`
}

// WorkloadAffinity groups workloads by the value of a label of their
// templates.
type WorkloadAffinity struct {
	Affinity     *WorkloadAffinityTerm `json:"affinity,omitempty"`
	AntiAffinity *WorkloadAffinityTerm `json:"antiAffinity,omitempty"`
}

// WorkloadAffinityTerm names the label key whose value makes the group
// (Karmada's WorkloadAffinityTerm and WorkloadAntiAffinityTerm, which have
// this one field).
type WorkloadAffinityTerm struct {
	GroupByLabelKey string `json:"groupByLabelKey"`
}

// SpreadFieldValue names a cluster field to spread by.
type SpreadFieldValue string

// Fields a spread constraint may spread by.
const (
	SpreadByFieldCluster  SpreadFieldValue = "cluster"
	SpreadByFieldRegion   SpreadFieldValue = "region"
	SpreadByFieldZone     SpreadFieldValue = "zone"
	SpreadByFieldProvider SpreadFieldValue = "provider"
)

// SpreadConstraint spreads resources over groups of clusters.
type SpreadConstraint struct {
	// SpreadByField groups clusters by a field. Mutually exclusive with
	// SpreadByLabel.
	SpreadByField SpreadFieldValue `json:"spreadByField,omitempty"`
	// SpreadByLabel groups clusters by the value of a label.
	SpreadByLabel string `json:"spreadByLabel,omitempty"`
	// MaxGroups is the most groups to select.
	MaxGroups int `json:"maxGroups,omitempty"`
	// MinGroups is the fewest groups to select.
	MinGroups int `json:"minGroups,omitempty"`
}

// ClusterAffinity selects clusters.
type ClusterAffinity struct {
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
	FieldSelector *FieldSelector        `json:"fieldSelector,omitempty"`
	// ClusterNames lists the clusters that may be selected.
	ClusterNames []string `json:"clusterNames,omitempty"`
	// ExcludeClusters lists clusters that are never selected.
	ExcludeClusters []string `json:"exclude,omitempty"`
}

// ClusterAffinityTerm is a named cluster affinity.
type ClusterAffinityTerm struct {
	AffinityName    string `json:"affinityName"`
	ClusterAffinity `json:",inline"`
	// OverflowAffinities are further tiers of clusters for a workload's
	// replicas (Karmada v1.18+; only with Divided by dynamicWeight or
	// Aggregated). The term's own clusters are filled first, up to their
	// room; what does not fit spills into the first overflow tier, then the
	// next; a scale down empties the last tier in use first. A cluster
	// belongs to the first tier that selects it. The tiers are part of the
	// term, which alone is recorded as the term in use.
	OverflowAffinities []OverflowClusterAffinity `json:"overflowAffinities,omitempty"`
}

// OverflowClusterAffinity is one overflow tier of a ClusterAffinityTerm.
type OverflowClusterAffinity struct {
	AffinityName    string `json:"affinityName"`
	ClusterAffinity `json:",inline"`
}

// Toleration lets a resource run on a cluster with a matching taint. It has
// the shape of Kubernetes' core/v1 Toleration.
type Toleration struct {
	Key string `json:"key,omitempty"`
	// Operator is Exists or Equal (the default).
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	// Effect is NoSchedule, PreferNoSchedule or NoExecute; empty matches all.
	Effect string `json:"effect,omitempty"`
	// TolerationSeconds bounds how long a NoExecute taint is tolerated.
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// Taint effects and the taints the failover logic sets.
const (
	TaintEffectNoSchedule       = "NoSchedule"
	TaintEffectPreferNoSchedule = "PreferNoSchedule"
	TaintEffectNoExecute        = "NoExecute"

	TaintClusterUnreachable = "cluster.karmada.io/unreachable"
	TaintClusterNotReady    = "cluster.karmada.io/not-ready"
)

// ReplicaSchedulingType is Duplicated or Divided.
type ReplicaSchedulingType string

// Replica scheduling types.
const (
	ReplicaSchedulingTypeDuplicated ReplicaSchedulingType = "Duplicated"
	ReplicaSchedulingTypeDivided    ReplicaSchedulingType = "Divided"
)

// ReplicaDivisionPreference is Aggregated or Weighted.
type ReplicaDivisionPreference string

// Replica division preferences.
const (
	ReplicaDivisionPreferenceAggregated ReplicaDivisionPreference = "Aggregated"
	ReplicaDivisionPreferenceWeighted   ReplicaDivisionPreference = "Weighted"
)

// ReplicaSchedulingStrategy says how replicas are assigned.
type ReplicaSchedulingStrategy struct {
	ReplicaSchedulingType     ReplicaSchedulingType     `json:"replicaSchedulingType,omitempty"`
	ReplicaDivisionPreference ReplicaDivisionPreference `json:"replicaDivisionPreference,omitempty"`
	WeightPreference          *ClusterPreferences       `json:"weightPreference,omitempty"`
}

// DynamicWeightFactor names what dynamic weights are computed from.
type DynamicWeightFactor string

// DynamicWeightByAvailableReplicas weighs clusters by how many replicas they
// can still run.
const DynamicWeightByAvailableReplicas DynamicWeightFactor = "AvailableReplicas"

// ClusterPreferences weighs clusters.
type ClusterPreferences struct {
	StaticWeightList []StaticClusterWeight `json:"staticWeightList,omitempty"`
	DynamicWeight    DynamicWeightFactor   `json:"dynamicWeight,omitempty"`
}

// StaticClusterWeight gives matching clusters a weight.
type StaticClusterWeight struct {
	TargetCluster ClusterAffinity `json:"targetCluster"`
	Weight        int64           `json:"weight"`
}

// PreemptionBehavior is Always or Never.
type PreemptionBehavior string

// Preemption behaviours.
const (
	PreemptAlways PreemptionBehavior = "Always"
	PreemptNever  PreemptionBehavior = "Never"
)

// ConflictResolution is Abort or Overwrite.
type ConflictResolution string

// Conflict resolutions.
const (
	ConflictOverwrite ConflictResolution = "Overwrite"
	ConflictAbort     ConflictResolution = "Abort"
)

// ActivationPreference is empty or Lazy.
type ActivationPreference string

// LazyActivation applies policy changes only when the template changes.
const LazyActivation ActivationPreference = "Lazy"

// Suspension pauses propagation.
type Suspension struct {
	Dispatching           *bool            `json:"dispatching,omitempty"`
	DispatchingOnClusters *SuspendClusters `json:"dispatchingOnClusters,omitempty"`
	Scheduling            *bool            `json:"scheduling,omitempty"`
}

// SuspendClusters lists clusters to suspend dispatching to.
type SuspendClusters struct {
	ClusterNames []string `json:"clusterNames,omitempty"`
}

// SchedulePriority orders scheduling between workloads.
type SchedulePriority struct {
	// PriorityClassSource is required; the only value is KubePriorityClass.
	PriorityClassSource string `json:"priorityClassSource"`
	PriorityClassName   string `json:"priorityClassName"`
}

// KubePriorityClass is the one priorityClassSource of Karmada's schema:
// the priority comes from a Kubernetes PriorityClass.
const KubePriorityClass = "KubePriorityClass"

// FailoverBehavior says how workloads move on failure.
type FailoverBehavior struct {
	// Application failover (unhealthy workload in a healthy cluster).
	Application *ApplicationFailoverBehavior `json:"application,omitempty"`
	// Cluster failover (the cluster itself fails).
	Cluster *ClusterFailoverBehavior `json:"cluster,omitempty"`
}

// PurgeMode says how the replicas left on a failed cluster are removed.
type PurgeMode string

// Purge modes. Karmada renamed Immediately/Graciously to Directly/Gracefully;
// both spellings are accepted.
const (
	PurgeModeDirectly    PurgeMode = "Directly"
	PurgeModeGracefully  PurgeMode = "Gracefully"
	PurgeModeNever       PurgeMode = "Never"
	PurgeModeImmediately PurgeMode = "Immediately"
	PurgeModeGraciously  PurgeMode = "Graciously"
)

// ApplicationFailoverBehavior is Karmada's application failover.
type ApplicationFailoverBehavior struct {
	DecisionConditions DecisionConditions `json:"decisionConditions,omitempty"`
	PurgeMode          PurgeMode          `json:"purgeMode,omitempty"`
	GracePeriodSeconds *int32             `json:"gracePeriodSeconds,omitempty"`
	StatePreservation  *StatePreservation `json:"statePreservation,omitempty"`
}

// DecisionConditions decide when application failover starts.
type DecisionConditions struct {
	TolerationSeconds *int32 `json:"tolerationSeconds,omitempty"`
}

// ClusterFailoverBehavior is how workloads leave a failed cluster.
type ClusterFailoverBehavior struct {
	// PurgeMode: Gracefully (default) keeps the old replicas until the
	// replacements are Ready; Directly removes them as soon as the cluster
	// is reachable again.
	PurgeMode         PurgeMode          `json:"purgeMode,omitempty"`
	StatePreservation *StatePreservation `json:"statePreservation,omitempty"`
}

// StatePreservation carries state from the old cluster to the new one.
type StatePreservation struct {
	Rules []StatePreservationRule `json:"rules"`
}

// StatePreservationRule is one piece of state to carry.
type StatePreservationRule struct {
	AliasLabelName string `json:"aliasLabelName"`
	JSONPath       string `json:"jsonPath"`
}
