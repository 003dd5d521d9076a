package api

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// overrideObject is Karmada's OverridePolicy and ClusterOverridePolicy
// object: both kinds have this shape.
type overrideObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec OverrideSpec `json:"spec"`
}

// DecodeOverridePolicy decodes one OverridePolicy or ClusterOverridePolicy
// from YAML or JSON, as DecodePolicy does for propagation policies: decoding
// is strict (a field Karmada does not have is an error naming its path), the
// policy is defaulted as Karmada's webhooks do and validated. It returns the
// warnings the user should read (deprecated fields converted, selectors that
// can never match). An invalid policy gives a *PolicyError listing every
// problem; errors.Is(err, ErrInvalid) holds for it.
func DecodeOverridePolicy(manifest []byte) (*OverridePolicy, []string, error) {
	raw, err := singleDocument(manifest, "override policy")
	if err != nil {
		return nil, nil, err
	}
	o, _, warnings, err := decodeOverrideJSON(raw)
	if err != nil {
		return nil, nil, err
	}
	return o, warnings, nil
}

// decodeOverrideDocument is DecodeDocuments' step for an override policy.
func decodeOverrideDocument(index int, key ObjectKey, j []byte) (Document, error) {
	o, obj, warnings, err := decodeOverrideJSON(j)
	if o != nil {
		key.Namespace = o.Namespace // the defaulted namespace
	}
	if err != nil {
		return Document{}, &DocumentError{Index: index, Key: key, Err: err}
	}
	manifest, err := json.Marshal(obj)
	if err != nil {
		return Document{}, &DocumentError{Index: index, Key: key, Err: fmt.Errorf("encoding the defaulted policy: %w", err)}
	}
	return Document{Index: index, Key: key, Manifest: manifest, Override: o, Warnings: warnings}, nil
}

// decodeOverrideJSON decodes an override policy from JSON. It returns the
// policy, the defaulted Karmada object (for the stored manifest) and the
// warnings. On an invalid policy it still returns the policy's identity in
// o, for naming it.
func decodeOverrideJSON(j []byte) (o *OverridePolicy, obj *overrideObject, warnings []string, err error) {
	key, err := readIdentity(j)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := requireIdentity(key); err != nil {
		return nil, nil, nil, err
	}
	if key.APIVersion != PolicyAPIVersion || (key.Kind != KindOverridePolicy && key.Kind != KindClusterOverridePolicy) {
		return nil, nil, nil, unknownPolicyKind(key)
	}

	obj = &overrideObject{}
	strictErrs, err := kjson.UnmarshalStrict(j, obj)
	o = &OverridePolicy{Kind: key.Kind, Namespace: key.Namespace, Name: key.Name}
	var notes []string
	switch {
	case o.Kind == KindOverridePolicy && o.Namespace == "":
		o.Namespace = DefaultNamespace
		obj.Namespace = DefaultNamespace
	case o.Kind == KindClusterOverridePolicy && o.Namespace != "":
		ns := o.Namespace
		o.Namespace, obj.Namespace = "", ""
		notes = append(notes, droppedNamespace(o.Ref(), ns))
	}
	perr := &PolicyError{Ref: o.Ref()}
	if err != nil {
		perr.add(typeErrorPath(err), "%s", typeErrorMessage(err))
		return o, nil, nil, perr
	}
	for _, se := range strictErrs {
		perr.add(strictErrorPath(se), "%s", strictErrorMessage(se, key.Kind))
	}
	// Karmada's CRD requires spec, among others; spec: {} is an override
	// of nothing.
	checkRequired(j, overrideRequired, perr)

	defaultOverrideSelectors(o, &obj.Spec)
	o.Spec = obj.Spec
	// Validation sees the deprecated fields where the user wrote them, so
	// its errors name them so; they are converted once the policy is valid.
	validateOverride(o, perr)
	if len(perr.Problems) > 0 {
		return o, nil, nil, perr
	}
	notes = append(notes, convertDeprecatedOverriders(o.Ref(), &obj.Spec)...)
	o.Spec = obj.Spec
	return o, obj, append(notes, overrideWarnings(o)...), nil
}

// defaultOverrideSelectors does what Karmada's OverridePolicy webhook does
// (pkg/webhook/overridepolicy/mutating.go): an empty
// resourceSelectors[].namespace becomes the policy's namespace. A
// ClusterOverridePolicy keeps it empty, which there means every namespace.
// Defaulting twice gives the same result, so a stored manifest decodes to
// the same policy.
func defaultOverrideSelectors(o *OverridePolicy, s *OverrideSpec) {
	if o.Kind != KindOverridePolicy {
		return
	}
	for i := range s.ResourceSelectors {
		if s.ResourceSelectors[i].Namespace == "" {
			s.ResourceSelectors[i].Namespace = o.Namespace
		}
	}
}

// convertDeprecatedOverriders turns the deprecated spec.targetCluster and
// spec.overriders of a valid policy into overrideRules[0], which is how
// Karmada's override manager reads them when overrideRules is empty
// (getOverridersFromOverridePolicies in pkg/util/overridemanager), and
// returns a warning saying so. Beside a non-empty overrideRules, the only
// deprecated overrider validation lets through is a fieldOverrider (Karmada's
// emptyOverrides does not count it); the manager ignores it, and so is it
// dropped, with a warning.
func convertDeprecatedOverriders(ref string, s *OverrideSpec) []string {
	if s.TargetCluster == nil && s.Overriders.IsZero() {
		return nil
	}
	if len(s.OverrideRules) > 0 {
		s.Overriders = Overriders{}
		return []string{ref + ": spec.overriders.fieldOverrider is ignored beside spec.overrideRules, as Karmada ignores it; move it into the rules"}
	}
	s.OverrideRules = []RuleWithCluster{{TargetCluster: s.TargetCluster, Overriders: s.Overriders}}
	s.TargetCluster, s.Overriders = nil, Overriders{}
	return []string{ref + ": spec.targetCluster and spec.overriders are deprecated in Karmada; Shoal accepts them and stores them as spec.overrideRules[0] (errors when applying name them so)"}
}

// overrideWarnings returns what the user should know about a valid policy:
// label selectors that never match, and a policy that changes nothing.
func overrideWarnings(o *OverridePolicy) []string {
	var out []string
	ref := o.Ref()
	for i, rs := range o.Spec.ResourceSelectors {
		out = appendSelectorWarning(out, ref, indexed("spec.resourceSelectors", i)+".labelSelector", rs.LabelSelector)
	}
	for i, r := range o.Spec.OverrideRules {
		if r.TargetCluster != nil {
			out = appendSelectorWarning(out, ref, indexed("spec.overrideRules", i)+".targetCluster.labelSelector", r.TargetCluster.LabelSelector)
		}
	}
	if len(o.Spec.OverrideRules) == 0 {
		out = append(out, ref+": spec.overrideRules is empty: the policy changes nothing")
	}
	return out
}
