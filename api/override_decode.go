package api

import (
	"bytes"
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
	if o.Kind == KindOverridePolicy && o.Namespace == "" {
		o.Namespace = DefaultNamespace
		obj.Namespace = DefaultNamespace
	}
	perr := &PolicyError{Ref: o.Ref()}
	if err != nil {
		perr.add(typeErrorPath(err), "%s", typeErrorMessage(err))
		return o, nil, nil, perr
	}
	for _, se := range strictErrs {
		perr.add(strictErrorPath(se), "%s", strictErrorMessage(se, key.Kind))
	}
	if !hasSpec(j) {
		// Karmada's CRD requires spec; spec: {} is an override of nothing.
		perr.add("spec", "is required")
	}

	defaultOverrideSelectors(o, &obj.Spec)
	o.Spec = obj.Spec
	// Validation sees the deprecated fields where the user wrote them, so
	// its errors name them so; they are converted once the policy is valid.
	validateOverride(o, perr)
	if len(perr.Problems) > 0 {
		return o, nil, nil, perr
	}
	warnings = convertDeprecatedOverriders(o.Ref(), &obj.Spec)
	o.Spec = obj.Spec
	return o, obj, append(warnings, overrideWarnings(o)...), nil
}

// hasSpec reports whether the object has a spec that is not null.
func hasSpec(j []byte) bool {
	var probe struct {
		Spec json.RawMessage `json:"spec"`
	}
	if json.Unmarshal(j, &probe) != nil {
		return false
	}
	s := bytes.TrimSpace(probe.Spec)
	return len(s) > 0 && string(s) != "null"
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
// Karmada's override manager reads them when overrideRules is absent
// (getOverridersFromOverridePolicies in pkg/util/overridemanager), and
// returns a warning saying so. (With overrideRules present too, validation
// has refused the policy, as Karmada's does.)
func convertDeprecatedOverriders(ref string, s *OverrideSpec) []string {
	if s.OverrideRules != nil || (s.TargetCluster == nil && s.Overriders.IsZero()) {
		return nil
	}
	s.OverrideRules = []RuleWithCluster{{TargetCluster: s.TargetCluster, Overriders: s.Overriders}}
	s.TargetCluster, s.Overriders = nil, Overriders{}
	return []string{ref + ": spec.targetCluster and spec.overriders are deprecated in Karmada; Shoal accepts them and stores them as spec.overrideRules[0] (errors when applying name them so)"}
}

// overrideWarnings returns what the user should know about a valid policy.
func overrideWarnings(o *OverridePolicy) []string {
	var out []string
	if o.Kind == KindOverridePolicy {
		for i, rs := range o.Spec.ResourceSelectors {
			if rs.Namespace != o.Namespace {
				out = append(out, fmt.Sprintf("%s: spec.resourceSelectors[%d].namespace: %q is not the policy's namespace %q, so this selector never matches: an OverridePolicy only applies to templates in its own namespace (use a ClusterOverridePolicy for others)",
					o.Ref(), i, rs.Namespace, o.Namespace))
			}
		}
	}
	if len(o.Spec.OverrideRules) == 0 {
		out = append(out, o.Ref()+": spec.overrideRules is empty: the policy changes nothing")
	}
	return out
}
