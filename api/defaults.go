package api

import "fmt"

// Defaults Shoal applies to a decoded policy before validating it. They are
// Karmada's: some are set by its mutating admission webhooks
// (pkg/webhook/propagationpolicy and clusterpropagationpolicy, through
// pkg/util/helper/policy.go), the rest by the +kubebuilder:default markers of
// pkg/apis/policy/v1alpha1/propagation_types.go, which the API server applies
// from the CRD schema. Defaulting twice gives the same result, so a stored
// (defaulted) manifest decodes to the same policy.
const (
	// DefaultSchedulerName is the only scheduler: Karmada's
	// +kubebuilder:default="default-scheduler" on spec.schedulerName.
	DefaultSchedulerName = "default-scheduler"

	// DefaultApplicationTolerationSeconds is Karmada's default of
	// failover.application.decisionConditions.tolerationSeconds (300 s).
	DefaultApplicationTolerationSeconds int32 = 300

	// DefaultApplicationGracePeriodSeconds is the grace period Karmada's
	// helper.SetDefaultGracePeriodSeconds sets when application failover
	// purges gracefully (600 s).
	DefaultApplicationGracePeriodSeconds int32 = 600
)

// ServiceImport's apiVersion and kind: a policy selecting one propagates
// its dependencies (helper.ContainsServiceImport).
const (
	serviceImportAPIVersion = "multicluster.x-k8s.io/v1alpha1"
	serviceImportKind       = "ServiceImport"
)

// setDefaults fills in what Karmada fills in. namespace is the policy's
// (already defaulted) namespace, empty for a ClusterPropagationPolicy. It
// returns a note for each deprecated spelling it replaced ("field: …").
func setDefaults(kind, namespace string, spec *PropagationSpec) (notes []string) {
	// The PropagationPolicy webhook sets an empty resourceSelectors[].namespace
	// to the policy's namespace. A ClusterPropagationPolicy keeps it empty,
	// which there means every namespace.
	if kind == KindPropagationPolicy {
		for i := range spec.ResourceSelectors {
			if spec.ResourceSelectors[i].Namespace == "" {
				spec.ResourceSelectors[i].Namespace = namespace
			}
		}
	}

	// Both policy webhooks propagate the dependencies of a ServiceImport.
	for _, rs := range spec.ResourceSelectors {
		if rs.APIVersion == serviceImportAPIVersion && rs.Kind == serviceImportKind {
			spec.PropagateDeps = true
		}
	}

	// spec.priority: +kubebuilder:default=0.
	if spec.Priority == nil {
		var zero int32
		spec.Priority = &zero
	}
	// spec.preemption: +kubebuilder:default=Never.
	if spec.Preemption == "" {
		spec.Preemption = PreemptNever
	}
	// spec.conflictResolution: +kubebuilder:default="Abort".
	if spec.ConflictResolution == "" {
		spec.ConflictResolution = ConflictAbort
	}
	// spec.schedulerName: +kubebuilder:default="default-scheduler".
	if spec.SchedulerName == "" {
		spec.SchedulerName = DefaultSchedulerName
	}

	defaultPlacement(&spec.Placement)
	if spec.Failover != nil {
		notes = defaultFailover(spec.Failover)
	}
	return notes
}

func defaultPlacement(pl *Placement) {
	// helper.SetDefaultSpreadConstraints: a constraint with neither
	// spreadByField nor spreadByLabel spreads by cluster, and minGroups 0
	// (unset) becomes 1, for every constraint.
	for i := range pl.SpreadConstraints {
		sc := &pl.SpreadConstraints[i]
		if sc.SpreadByField == "" && sc.SpreadByLabel == "" {
			sc.SpreadByField = SpreadByFieldCluster
		}
		if sc.MinGroups == 0 {
			sc.MinGroups = 1
		}
	}

	// Without replicaScheduling Karmada duplicates: Placement.ReplicaSchedulingType()
	// in propagation_helper.go returns Duplicated for a nil strategy. Shoal
	// writes that down, so that readers of a policy need not know the rule.
	if pl.ReplicaScheduling == nil {
		pl.ReplicaScheduling = &ReplicaSchedulingStrategy{ReplicaSchedulingType: ReplicaSchedulingTypeDuplicated}
		return
	}
	rs := pl.ReplicaScheduling
	// A replicaScheduling that is present but has no type is Divided:
	// +kubebuilder:default=Divided on replicaSchedulingType.
	if rs.ReplicaSchedulingType == "" {
		rs.ReplicaSchedulingType = ReplicaSchedulingTypeDivided
	}
	// helper.SetReplicaDivisionPreferenceWeighted: Divided without a
	// division preference is Weighted (with no weightPreference, every
	// cluster weighs the same).
	if rs.ReplicaSchedulingType == ReplicaSchedulingTypeDivided && rs.ReplicaDivisionPreference == "" {
		rs.ReplicaDivisionPreference = ReplicaDivisionPreferenceWeighted
	}
}

func defaultFailover(f *FailoverBehavior) (notes []string) {
	// failover.cluster.purgeMode: +kubebuilder:default=Gracefully. Its enum
	// has never had the old spellings: validation refuses them.
	if c := f.Cluster; c != nil && c.PurgeMode == "" {
		c.PurgeMode = PurgeModeGracefully
	}
	if a := f.Application; a != nil {
		// Karmada's defaults: decisionConditions.tolerationSeconds
		// +kubebuilder:default=300, purgeMode +kubebuilder:default=Gracefully,
		// and helper.SetDefaultGracePeriodSeconds gives a graceful purge
		// 600 s.
		if a.DecisionConditions.TolerationSeconds == nil {
			t := DefaultApplicationTolerationSeconds
			a.DecisionConditions.TolerationSeconds = &t
		}
		// The old spellings Immediately and Graciously are normalised so
		// the rest of Shoal sees one name each, with a note. Karmada v1.18
		// (the current release) accepts them; the v1.19 schema (read after
		// v1.19.0-rc.0) no longer does. Shoal keeps accepting them until
		// v1.19.0 is released: refusing now would break policies the
		// release accepts.
		switch a.PurgeMode {
		case "":
			a.PurgeMode = PurgeModeGracefully
		case PurgeModeGraciously, PurgeModeImmediately:
			now := PurgeModeGracefully
			if a.PurgeMode == PurgeModeImmediately {
				now = PurgeModeDirectly
			}
			notes = append(notes, fmt.Sprintf("spec.failover.application.purgeMode: %s is deprecated (Karmada v1.19 refuses it); Shoal takes it as %s: write %s", a.PurgeMode, now, now))
			a.PurgeMode = now
		}
		if isGraceful(a.PurgeMode) && a.GracePeriodSeconds == nil {
			g := DefaultApplicationGracePeriodSeconds
			a.GracePeriodSeconds = &g
		}
	}
	return notes
}

func isGraceful(m PurgeMode) bool {
	return m == PurgeModeGraciously || m == PurgeModeGracefully
}
