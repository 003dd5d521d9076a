package api

import (
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldProblem is one thing wrong with one field of a policy.
type FieldProblem struct {
	Path    string // e.g. spec.placement.spreadConstraints[0]; empty for the whole policy
	Message string
}

func (f FieldProblem) String() string {
	if f.Path == "" {
		return f.Message
	}
	return f.Path + ": " + f.Message
}

// PolicyError lists every problem found in one policy. errors.Is(err,
// ErrInvalid) holds for it. Its message reads
// `PropagationPolicy default/web-pp: spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)`,
// several problems separated by "; ".
type PolicyError struct {
	Ref      string // the policy, as Policy.Ref gives it
	Problems []FieldProblem
}

func (e *PolicyError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return e.Ref + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalid }

func (e *PolicyError) add(path, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	e.Problems = append(e.Problems, FieldProblem{Path: path, Message: msg})
}

// maxPolicyNameLength is Karmada's limit: the name is stored in a label
// value of every propagated object (validation.LabelValueMaxLength).
const maxPolicyNameLength = validation.LabelValueMaxLength

// validatePolicy checks a defaulted policy as Karmada's webhooks and CRD
// schema do (pkg/util/validation/validation.go), plus the few rules Shoal
// adds, and appends every problem to perr.
func validatePolicy(p *Policy, perr *PolicyError) {
	for _, msg := range validation.IsDNS1123Subdomain(p.Name) {
		perr.add("metadata.name", "%q is not a valid name: %s", p.Name, msg)
	}
	if len(p.Name) > maxPolicyNameLength {
		perr.add("metadata.name", "must be no more than %d characters, got %d", maxPolicyNameLength, len(p.Name))
	}
	switch p.Kind {
	case KindClusterPropagationPolicy:
		if p.Namespace != "" {
			perr.add("metadata.namespace", "a ClusterPropagationPolicy is cluster-scoped and must not have a namespace (got %q); remove it, or use a PropagationPolicy", p.Namespace)
		}
	default:
		for _, msg := range validation.IsDNS1123Label(p.Namespace) {
			perr.add("metadata.namespace", "%q is not a valid namespace: %s", p.Namespace, msg)
		}
	}

	s := &p.Spec
	validateResourceSelectors(p, perr)
	validatePlacement(&s.Placement, "spec.placement", perr)

	switch s.Preemption {
	case PreemptAlways, PreemptNever:
	default:
		perr.add("spec.preemption", "unknown value %q; use Always or Never", s.Preemption)
	}
	switch s.ConflictResolution {
	case ConflictAbort, ConflictOverwrite:
	default:
		perr.add("spec.conflictResolution", "unknown value %q; use Abort or Overwrite", s.ConflictResolution)
	}
	switch s.ActivationPreference {
	case "", LazyActivation:
	default:
		perr.add("spec.activationPreference", "unknown value %q; use Lazy or leave it empty", s.ActivationPreference)
	}
	if sp := s.Suspension; sp != nil && sp.Dispatching != nil && *sp.Dispatching &&
		sp.DispatchingOnClusters != nil && len(sp.DispatchingOnClusters.ClusterNames) > 0 {
		perr.add("spec.suspension", "dispatching cannot be set together with dispatchingOnClusters.clusterNames")
	}
	validateFailover(s, perr)
}

func validateResourceSelectors(p *Policy, perr *PolicyError) {
	s := &p.Spec
	if len(s.ResourceSelectors) == 0 {
		perr.add("spec.resourceSelectors", "at least one resource selector is required (an empty list does not mean everything: Karmada refuses it so that Secrets are not propagated by accident)")
	}
	for i, rs := range s.ResourceSelectors {
		path := "spec.resourceSelectors[" + strconv.Itoa(i) + "]"
		if rs.APIVersion == "" {
			perr.add(path+".apiVersion", "is required, e.g. apps/v1")
		}
		if rs.Kind == "" {
			perr.add(path+".kind", "is required, e.g. Deployment")
		}
		if p.Kind == KindPropagationPolicy && rs.Namespace != p.Namespace {
			perr.add(path+".namespace", "%q is not the policy's namespace %q; a PropagationPolicy only selects resources in its own namespace (use a ClusterPropagationPolicy for others)", rs.Namespace, p.Namespace)
		}
		if rs.LabelSelector != nil {
			validateLabelSelector(rs.LabelSelector, path+".labelSelector", perr)
		}
		// Karmada: preempting needs a name, or a policy could take over
		// resources it was never meant for.
		if s.Preemption == PreemptAlways && rs.Name == "" {
			perr.add(path+".name", "is required when preemption is Always, or the policy could preempt resources by accident")
		}
	}
}

func validateLabelSelector(ls *metav1.LabelSelector, path string, perr *PolicyError) {
	if _, err := metav1.LabelSelectorAsSelector(ls); err != nil {
		perr.add(path, "invalid label selector: %v", err)
	}
}

func validatePlacement(pl *Placement, path string, perr *PolicyError) {
	if pl.ClusterAffinity != nil && len(pl.ClusterAffinities) > 0 {
		perr.add(path, "clusterAffinity and clusterAffinities cannot both be set; keep one")
	}
	if pl.ClusterAffinity != nil {
		validateClusterAffinity(pl.ClusterAffinity, path+".clusterAffinity", perr)
	}
	seen := make(map[string]int)
	for i, term := range pl.ClusterAffinities {
		tpath := path + ".clusterAffinities[" + strconv.Itoa(i) + "]"
		if term.AffinityName == "" {
			perr.add(tpath+".affinityName", "is required")
		} else {
			for _, msg := range validation.IsQualifiedName(term.AffinityName) {
				perr.add(tpath+".affinityName", "%q is not a valid name: %s", term.AffinityName, msg)
			}
			if j, dup := seen[term.AffinityName]; dup {
				perr.add(tpath+".affinityName", "%q is already the name of clusterAffinities[%d]; each term needs a unique name", term.AffinityName, j)
			} else {
				seen[term.AffinityName] = i
			}
		}
		validateClusterAffinity(&term.ClusterAffinity, tpath, perr)
	}
	for i, t := range pl.ClusterTolerations {
		validateToleration(t, path+".clusterTolerations["+strconv.Itoa(i)+"]", perr)
	}
	validateSpreadConstraints(pl.SpreadConstraints, path+".spreadConstraints", perr)
	if pl.ReplicaScheduling != nil {
		validateReplicaScheduling(pl.ReplicaScheduling, path+".replicaScheduling", perr)
	}
}

func validateClusterAffinity(a *ClusterAffinity, path string, perr *PolicyError) {
	if a.LabelSelector != nil {
		validateLabelSelector(a.LabelSelector, path+".labelSelector", perr)
	}
	if a.FieldSelector == nil {
		return
	}
	for i, req := range a.FieldSelector.MatchExpressions {
		rpath := path + ".fieldSelector.matchExpressions[" + strconv.Itoa(i) + "]"
		switch req.Key {
		case ProviderField, RegionField, ZoneField:
		default:
			perr.add(rpath+".key", "unsupported key %q; use provider, region or zone", req.Key)
		}
		switch req.Operator {
		case "In", "NotIn":
			if len(req.Values) == 0 {
				perr.add(rpath+".values", "operator %s needs at least one value", req.Operator)
			}
		default:
			perr.add(rpath+".operator", "unsupported operator %q; use In or NotIn", req.Operator)
		}
	}
}

// validateToleration applies Kubernetes' rules for a toleration.
func validateToleration(t Toleration, path string, perr *PolicyError) {
	if t.Key != "" {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			perr.add(path+".key", "%q is not a valid taint key: %s", t.Key, msg)
		}
	}
	switch t.Operator {
	case "", "Equal":
		if t.Key == "" {
			perr.add(path+".operator", "must be Exists when key is empty (an empty key with Exists tolerates every taint)")
		}
	case "Exists":
		if t.Value != "" {
			perr.add(path+".value", "must be empty when operator is Exists, got %q", t.Value)
		}
	default:
		perr.add(path+".operator", "unknown operator %q; use Equal or Exists", t.Operator)
	}
	switch t.Effect {
	case "", TaintEffectNoSchedule, TaintEffectPreferNoSchedule, TaintEffectNoExecute:
	default:
		perr.add(path+".effect", "unknown effect %q; use NoSchedule, PreferNoSchedule, NoExecute or leave it empty for all", t.Effect)
	}
}

func validateSpreadConstraints(scs []SpreadConstraint, path string, perr *PolicyError) {
	byField := make(map[SpreadFieldValue]int)
	for i, sc := range scs {
		cpath := path + "[" + strconv.Itoa(i) + "]"
		if sc.SpreadByField != "" && sc.SpreadByLabel != "" {
			perr.add(cpath, "spreadByField and spreadByLabel cannot both be set; keep one")
		}
		if sc.SpreadByLabel != "" {
			for _, msg := range validation.IsQualifiedName(sc.SpreadByLabel) {
				perr.add(cpath+".spreadByLabel", "%q is not a valid label key: %s", sc.SpreadByLabel, msg)
			}
		}
		if sc.SpreadByField != "" {
			switch sc.SpreadByField {
			case SpreadByFieldCluster, SpreadByFieldRegion, SpreadByFieldZone, SpreadByFieldProvider:
				if j, dup := byField[sc.SpreadByField]; dup {
					perr.add(cpath+".spreadByField", "spreadConstraints[%d] already spreads by %s; give one constraint per field", j, sc.SpreadByField)
				} else {
					byField[sc.SpreadByField] = i
				}
			default:
				perr.add(cpath+".spreadByField", "unknown field %q; use cluster, region, zone or provider", sc.SpreadByField)
			}
		}
		if sc.MinGroups < 0 {
			perr.add(cpath+".minGroups", "must not be negative, got %d", sc.MinGroups)
		}
		if sc.MaxGroups < 0 {
			perr.add(cpath+".maxGroups", "must not be negative, got %d", sc.MaxGroups)
		}
		if sc.MaxGroups > 0 && sc.MaxGroups < sc.MinGroups {
			perr.add(cpath, "maxGroups (%d) is less than minGroups (%d)", sc.MaxGroups, sc.MinGroups)
		}
	}
	// Karmada: once any constraint spreads by a field, one must spread by
	// cluster, to say how many clusters to pick within the groups.
	if len(byField) > 0 {
		if _, ok := byField[SpreadByFieldCluster]; !ok {
			perr.add(path, "a constraint with spreadByField: cluster is required when spreading by region, zone or provider, to say how many clusters to select")
		}
	}
}

func validateReplicaScheduling(rs *ReplicaSchedulingStrategy, path string, perr *PolicyError) {
	switch rs.ReplicaSchedulingType {
	case ReplicaSchedulingTypeDuplicated:
		if rs.ReplicaDivisionPreference != "" {
			perr.add(path+".replicaDivisionPreference", "only applies when replicaSchedulingType is Divided, but it is Duplicated; remove it or use Divided")
		}
		if rs.WeightPreference != nil {
			perr.add(path+".weightPreference", "only applies when replicaSchedulingType is Divided, but it is Duplicated; remove it or use Divided")
		}
		return
	case ReplicaSchedulingTypeDivided:
	default:
		perr.add(path+".replicaSchedulingType", "unknown value %q; use Duplicated or Divided", rs.ReplicaSchedulingType)
		return
	}
	switch rs.ReplicaDivisionPreference {
	case ReplicaDivisionPreferenceAggregated:
		if rs.WeightPreference != nil {
			perr.add(path+".weightPreference", "only applies when replicaDivisionPreference is Weighted, but it is Aggregated; remove it or use Weighted")
		}
		return
	case ReplicaDivisionPreferenceWeighted:
	default:
		perr.add(path+".replicaDivisionPreference", "unknown value %q; use Aggregated or Weighted", rs.ReplicaDivisionPreference)
		return
	}
	wp := rs.WeightPreference
	if wp == nil {
		return
	}
	wpath := path + ".weightPreference"
	if wp.DynamicWeight != "" && len(wp.StaticWeightList) > 0 {
		perr.add(wpath, "staticWeightList and dynamicWeight cannot both be set; keep one")
	}
	if wp.DynamicWeight != "" && wp.DynamicWeight != DynamicWeightByAvailableReplicas {
		perr.add(wpath+".dynamicWeight", "unknown factor %q; the only one is AvailableReplicas", wp.DynamicWeight)
	}
	for i, w := range wp.StaticWeightList {
		spath := wpath + ".staticWeightList[" + strconv.Itoa(i) + "]"
		if w.Weight <= 0 {
			perr.add(spath+".weight", "must be at least 1, got %d", w.Weight)
		}
		validateClusterAffinity(&w.TargetCluster, spath+".targetCluster", perr)
	}
}

func validateFailover(s *PropagationSpec, perr *PolicyError) {
	f := s.Failover
	if f == nil {
		return
	}
	if c := f.Cluster; c != nil {
		switch c.PurgeMode {
		case PurgeModeDirectly, PurgeModeGracefully:
		default:
			perr.add("spec.failover.cluster.purgeMode", "unknown value %q; use Directly or Gracefully", c.PurgeMode)
		}
		validateStatePreservation(c.StatePreservation, "spec.failover.cluster.statePreservation", perr)
	}
	a := f.Application
	if a == nil {
		return
	}
	path := "spec.failover.application"
	if !s.PropagateDeps {
		perr.add("spec.propagateDeps", "must be true when failover.application is set, so that dependencies move with the application")
	}
	switch a.PurgeMode {
	case PurgeModeDirectly, PurgeModeGracefully, PurgeModeNever, PurgeModeImmediately, PurgeModeGraciously:
	default:
		perr.add(path+".purgeMode", "unknown value %q; use Directly, Gracefully or Never", a.PurgeMode)
	}
	if t := a.DecisionConditions.TolerationSeconds; t != nil && *t < 0 {
		perr.add(path+".decisionConditions.tolerationSeconds", "must not be negative, got %d", *t)
	}
	if g := a.GracePeriodSeconds; g != nil {
		if *g <= 0 {
			perr.add(path+".gracePeriodSeconds", "must be greater than 0, got %d", *g)
		}
		if !isGraceful(a.PurgeMode) {
			perr.add(path+".gracePeriodSeconds", "only applies when purgeMode is Gracefully, but it is %s", a.PurgeMode)
		}
	}
	validateStatePreservation(a.StatePreservation, path+".statePreservation", perr)
}

// validateStatePreservation checks each rule's aliasLabelName as a label
// name, as Karmada's webhook does (its jsonPath is not checked there; a
// path that cannot be read is reported where it is read).
func validateStatePreservation(sp *StatePreservation, path string, perr *PolicyError) {
	if sp == nil {
		return
	}
	for i, r := range sp.Rules {
		rpath := path + ".rules[" + strconv.Itoa(i) + "]"
		for _, msg := range validation.IsQualifiedName(r.AliasLabelName) {
			perr.add(rpath+".aliasLabelName", "%q is not a label name: %s", r.AliasLabelName, msg)
		}
	}
}

// unimplemented returns a warning for every Karmada field the policy sets
// that Shoal does not implement yet: it is accepted and ignored, never
// silently.
func unimplemented(p *Policy) []string {
	s := &p.Spec
	var fields []string
	if s.Association {
		fields = append(fields, "spec.association")
	}
	if len(s.DependentOverrides) > 0 {
		fields = append(fields, "spec.dependentOverrides")
	}
	if s.Preemption == PreemptAlways {
		fields = append(fields, "spec.preemption: Always")
	}
	if s.SchedulerName != DefaultSchedulerName {
		fields = append(fields, fmt.Sprintf("spec.schedulerName %q (Shoal has only %s)", s.SchedulerName, DefaultSchedulerName))
	}
	if s.ActivationPreference != "" {
		fields = append(fields, "spec.activationPreference")
	}
	if s.Suspension != nil {
		fields = append(fields, "spec.suspension")
	}
	if s.SchedulePriority != nil {
		fields = append(fields, "spec.schedulePriority")
	}
	if s.Failover != nil && s.Failover.Cluster != nil && s.Failover.Cluster.StatePreservation != nil {
		fields = append(fields, "spec.failover.cluster.statePreservation")
	}
	if len(fields) == 0 {
		return nil
	}
	ref := p.Ref()
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = ref + ": " + f + ": not implemented by Shoal yet; ignored"
	}
	return out
}
