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

// maxAffinityNameLength is the MaxLength of clusterAffinities[].affinityName
// (and of overflowAffinities[].affinityName) in Karmada's CRD.
const maxAffinityNameLength = 32

// validatePolicy checks a defaulted policy as Karmada does: its validating
// webhooks (ValidatePropagationSpec in pkg/util/validation/validation.go),
// its CRD schema (enums, minimums, lengths; the required keys are
// checkRequired's) and the API server (name and namespace). Shoal adds no
// rule of its own: what Karmada accepts and Shoal cannot act on is accepted
// with a warning (see policyWarnings). Every problem is appended to perr.
func validatePolicy(p *Policy, perr *PolicyError) {
	for _, msg := range validation.IsDNS1123Subdomain(p.Name) {
		perr.add("metadata.name", "%q is not a valid name: %s", p.Name, msg)
	}
	// A ClusterPropagationPolicy's namespace was dropped when decoding.
	if p.Kind == KindPropagationPolicy {
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
	if sp := s.SchedulePriority; sp != nil && sp.PriorityClassSource != KubePriorityClass {
		perr.add("spec.schedulePriority.priorityClassSource", "unknown value %q; use %s", sp.PriorityClassSource, KubePriorityClass)
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
		if p.Kind == KindPropagationPolicy && rs.Namespace != p.Namespace {
			perr.add(path+".namespace", "%q is not the policy's namespace %q; a PropagationPolicy only selects resources in its own namespace (use a ClusterPropagationPolicy for others)", rs.Namespace, p.Namespace)
		}
		// Karmada: preempting needs a name, or a policy could take over
		// resources it was never meant for.
		if s.Preemption == PreemptAlways && rs.Name == "" {
			perr.add(path+".name", "is required when preemption is Always, or the policy could preempt resources by accident")
		}
	}
}

func validatePlacement(pl *Placement, path string, perr *PolicyError) {
	if pl.ClusterAffinity != nil && pl.ClusterAffinities != nil {
		perr.add(path, "clusterAffinity and clusterAffinities cannot both be set; keep one")
	}
	if pl.ClusterAffinity != nil {
		validateClusterAffinity(pl.ClusterAffinity, path+".clusterAffinity", perr)
	}
	seen := make(map[string]int)
	for i, term := range pl.ClusterAffinities {
		tpath := path + ".clusterAffinities[" + strconv.Itoa(i) + "]"
		if validateAffinityName(term.AffinityName, tpath+".affinityName", perr) {
			if j, dup := seen[term.AffinityName]; dup {
				perr.add(tpath+".affinityName", "%q is already the name of clusterAffinities[%d]; each term needs a unique name", term.AffinityName, j)
			} else {
				seen[term.AffinityName] = i
			}
		}
		validateClusterAffinity(&term.ClusterAffinity, tpath, perr)
		validateOverflowAffinities(&term, pl.ReplicaScheduling, tpath, perr)
	}
	validateWorkloadAffinity(pl.WorkloadAffinity, path+".workloadAffinity", perr)
	for i, t := range pl.ClusterTolerations {
		validateToleration(t, path+".clusterTolerations["+strconv.Itoa(i)+"]", perr)
	}
	validateSpreadConstraints(pl.SpreadConstraints, path+".spreadConstraints", perr)
	if pl.ReplicaScheduling != nil {
		validateReplicaScheduling(pl.ReplicaScheduling, path+".replicaScheduling", perr)
	}
}

// validateAffinityName checks the name of a cluster group against Karmada's
// schema (1 to 32 characters) and webhook (a label key), and reports
// whether it is non-empty.
func validateAffinityName(name, path string, perr *PolicyError) bool {
	if name == "" {
		perr.add(path, "is required")
		return false
	}
	if len(name) > maxAffinityNameLength {
		perr.add(path, "must be no more than %d characters, got %d", maxAffinityNameLength, len(name))
	}
	for _, msg := range validation.IsQualifiedName(name) {
		perr.add(path, "%q is not a valid name: %s", name, msg)
	}
	return true
}

// validateOverflowAffinities applies Karmada's ValidateOverflowAffinities
// and the check of ValidatePlacement: overflow groups need the term's own
// clusters to be selected somehow, names unique within the term (its own
// included), and replicas divided by dynamic weight or Aggregated.
func validateOverflowAffinities(term *ClusterAffinityTerm, rs *ReplicaSchedulingStrategy, path string, perr *PolicyError) {
	if term.OverflowAffinities == nil {
		return
	}
	opath := path + ".overflowAffinities"
	if !overflowAllowed(rs) {
		perr.add(opath, "can only be used with replicaScheduling Divided by dynamicWeight or Aggregated")
	}
	a := &term.ClusterAffinity
	if a.LabelSelector == nil && a.FieldSelector == nil && len(a.ClusterNames) == 0 && len(a.ExcludeClusters) == 0 {
		perr.add(opath, "can only be used when the term selects its own clusters (clusterNames, exclude, labelSelector or fieldSelector)")
	}
	names := map[string]bool{term.AffinityName: true}
	for i := range term.OverflowAffinities {
		o := &term.OverflowAffinities[i]
		ipath := opath + "[" + strconv.Itoa(i) + "]"
		if validateAffinityName(o.AffinityName, ipath+".affinityName", perr) {
			if names[o.AffinityName] {
				perr.add(ipath+".affinityName", "%q is already used in this term; overflow groups need names unique in the term, its own included", o.AffinityName)
			}
			names[o.AffinityName] = true
		}
		validateClusterAffinity(&o.ClusterAffinity, ipath, perr)
	}
}

// overflowAllowed is Karmada's IsOverflowSchedulingAllowed.
func overflowAllowed(rs *ReplicaSchedulingStrategy) bool {
	if rs == nil || rs.ReplicaSchedulingType != ReplicaSchedulingTypeDivided {
		return false
	}
	switch rs.ReplicaDivisionPreference {
	case ReplicaDivisionPreferenceAggregated:
		return true
	case ReplicaDivisionPreferenceWeighted:
		return rs.WeightPreference != nil && rs.WeightPreference.DynamicWeight != ""
	}
	return false
}

// validateWorkloadAffinity applies Karmada's ValidateWorkloadAffinity: label
// keys, and not the same one for affinity and antiAffinity.
func validateWorkloadAffinity(w *WorkloadAffinity, path string, perr *PolicyError) {
	if w == nil {
		return
	}
	for _, t := range []struct {
		term *WorkloadAffinityTerm
		name string
	}{{w.Affinity, "affinity"}, {w.AntiAffinity, "antiAffinity"}} {
		if t.term == nil {
			continue
		}
		for _, msg := range validation.IsQualifiedName(t.term.GroupByLabelKey) {
			perr.add(path+"."+t.name+".groupByLabelKey", "%q is not a valid label key: %s", t.term.GroupByLabelKey, msg)
		}
	}
	if w.Affinity != nil && w.AntiAffinity != nil && w.Affinity.GroupByLabelKey == w.AntiAffinity.GroupByLabelKey {
		perr.add(path, "affinity and antiAffinity cannot group by the same label key %q", w.Affinity.GroupByLabelKey)
	}
}

// validateClusterAffinity checks the field selector only, as Karmada's
// ValidateClusterAffinity does. A label selector that does not parse is
// accepted, as Karmada accepts it, and never matches (see policyWarnings).
func validateClusterAffinity(a *ClusterAffinity, path string, perr *PolicyError) {
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
		// In or NotIn without values is accepted, as Karmada accepts it
		// (ClusterAffinity.Matches says what it matches).
		switch req.Operator {
		case "In", "NotIn":
		default:
			perr.add(rpath+".operator", "unsupported operator %q; use In or NotIn", req.Operator)
		}
	}
}

// validateToleration refuses the operators Lt and Gt, as Karmada's
// validateClusterTolerations does (they compare numbers on nodes, which
// clusters are not). Nothing else of a toleration is checked, by Karmada's
// schema or webhook: an unknown operator or effect tolerates nothing
// (Toleration.ToleratesTaint).
func validateToleration(t Toleration, path string, perr *PolicyError) {
	switch t.Operator {
	case "Lt", "Gt":
		perr.add(path+".operator", "unsupported operator %q; use Equal, Exists or leave it empty", t.Operator)
	}
}

func validateSpreadConstraints(scs []SpreadConstraint, path string, perr *PolicyError) {
	byField := make(map[SpreadFieldValue]int)
	for i, sc := range scs {
		cpath := path + "[" + strconv.Itoa(i) + "]"
		if sc.SpreadByField != "" && sc.SpreadByLabel != "" {
			perr.add(cpath, "spreadByField and spreadByLabel cannot both be set; keep one")
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

// validateReplicaScheduling checks the enums and the minimum weight of
// Karmada's schema. Fields that do not apply (a division preference of
// Duplicated, weights of Aggregated, a static list beside dynamicWeight) are
// accepted and ignored, as Karmada ignores them.
func validateReplicaScheduling(rs *ReplicaSchedulingStrategy, path string, perr *PolicyError) {
	switch rs.ReplicaSchedulingType {
	case ReplicaSchedulingTypeDuplicated, ReplicaSchedulingTypeDivided:
	default:
		perr.add(path+".replicaSchedulingType", "unknown value %q; use Duplicated or Divided", rs.ReplicaSchedulingType)
	}
	switch rs.ReplicaDivisionPreference {
	case "", ReplicaDivisionPreferenceAggregated, ReplicaDivisionPreferenceWeighted:
	default:
		perr.add(path+".replicaDivisionPreference", "unknown value %q; use Aggregated or Weighted", rs.ReplicaDivisionPreference)
	}
	wp := rs.WeightPreference
	if wp == nil {
		return
	}
	wpath := path + ".weightPreference"
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
		// Karmada's schema never took the old spellings Immediately and
		// Graciously here, only for application failover.
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
	// The old spellings were normalised by setDefaults.
	switch a.PurgeMode {
	case PurgeModeDirectly, PurgeModeGracefully, PurgeModeNever:
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

// policyWarnings returns what the user of a valid policy should know: each
// Karmada field it sets that Shoal does not implement yet (accepted and
// ignored, never silently), each label selector that does not parse
// (Karmada accepts it; it never matches) and the notes of decoding
// (notes, already prefixed with the policy).
func policyWarnings(p *Policy, notes []string) []string {
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
	ref := p.Ref()
	out := notes
	for _, f := range fields {
		out = append(out, ref+": "+f+": not implemented by Shoal yet; ignored")
	}
	for i, rs := range s.ResourceSelectors {
		out = appendSelectorWarning(out, ref, "spec.resourceSelectors["+strconv.Itoa(i)+"].labelSelector", rs.LabelSelector)
	}
	pl := &s.Placement
	if pl.ClusterAffinity != nil {
		out = appendSelectorWarning(out, ref, "spec.placement.clusterAffinity.labelSelector", pl.ClusterAffinity.LabelSelector)
	}
	for i, term := range pl.ClusterAffinities {
		tpath := "spec.placement.clusterAffinities[" + strconv.Itoa(i) + "]"
		out = appendSelectorWarning(out, ref, tpath+".labelSelector", term.LabelSelector)
		for j, o := range term.OverflowAffinities {
			out = appendSelectorWarning(out, ref, tpath+".overflowAffinities["+strconv.Itoa(j)+"].labelSelector", o.LabelSelector)
		}
	}
	if rs := pl.ReplicaScheduling; rs != nil && rs.WeightPreference != nil {
		for i := range rs.WeightPreference.StaticWeightList {
			out = appendSelectorWarning(out, ref, "spec.placement.replicaScheduling.weightPreference.staticWeightList["+strconv.Itoa(i)+"].targetCluster.labelSelector",
				rs.WeightPreference.StaticWeightList[i].TargetCluster.LabelSelector)
		}
	}
	return out
}

// appendSelectorWarning warns about a label selector that does not parse:
// Karmada's schema and webhooks accept it, and its matching treats it as
// matching nothing (ResourceMatches and ClusterMatches in pkg/util), as
// Shoal's does.
func appendSelectorWarning(out []string, ref, path string, ls *metav1.LabelSelector) []string {
	if ls == nil {
		return out
	}
	if _, err := metav1.LabelSelectorAsSelector(ls); err != nil {
		out = append(out, fmt.Sprintf("%s: %s: invalid label selector (%v); Karmada accepts it, and it never matches", ref, path, err))
	}
	return out
}
