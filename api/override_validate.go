package api

import (
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxAnnotationsBytes is Kubernetes' limit on the total size of an object's
// annotations (apimachinery's ValidateAnnotations), which Karmada applies
// to an annotationsOverrider's value.
const maxAnnotationsBytes = 256 * 1024

// validateOverride checks an override policy as Karmada does, and no more:
// its validating webhooks (ValidateOverrideSpec in
// pkg/util/validation/validation.go), its CRD schema (the enums of component
// and operator; the required keys are checkRequired's) and the API server
// (name and namespace). The webhook checks the overriders of overrideRules
// only: the deprecated spec.overriders get the schema's checks alone, and
// what is wrong in them fails when applied, as in Karmada. Every problem is
// appended to perr.
func validateOverride(o *OverridePolicy, perr *PolicyError) {
	for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
		perr.add("metadata.name", "%q is not a valid name: %s", o.Name, msg)
	}
	// A ClusterOverridePolicy's namespace was dropped when decoding.
	if o.Kind == KindOverridePolicy {
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			perr.add("metadata.namespace", "%q is not a valid namespace: %s", o.Namespace, msg)
		}
	}

	s := &o.Spec
	if o.Kind == KindOverridePolicy {
		// Karmada v1.17+ (validateResourceSelectors, called by
		// ValidateOverrideSpec with the policy's namespace). An empty
		// namespace was defaulted to the policy's, so only another one is
		// refused.
		for i, rs := range s.ResourceSelectors {
			if rs.Namespace != o.Namespace {
				perr.add(indexed("spec.resourceSelectors", i)+".namespace", "%q is not the policy's namespace %q; an OverridePolicy only applies to templates in its own namespace (use a ClusterOverridePolicy for others)", rs.Namespace, o.Namespace)
			}
		}
	}

	if s.TargetCluster != nil {
		validateClusterAffinity(s.TargetCluster, "spec.targetCluster", perr)
	}
	validateOverriders(&s.Overriders, "spec.overriders", false, perr)
	if s.OverrideRules != nil {
		if s.TargetCluster != nil {
			perr.add("spec.targetCluster", "cannot be set together with overrideRules; it is deprecated: move it into the rules")
		}
		// Karmada's emptyOverrides leaves fieldOverrider out: a deprecated
		// fieldOverrider beside overrideRules is accepted (and ignored
		// unless overrideRules is empty; see convertDeprecatedOverriders).
		if !s.Overriders.withoutField().IsZero() {
			perr.add("spec.overriders", "cannot be set together with overrideRules; it is deprecated: move it into the rules")
		}
	}
	for i := range s.OverrideRules {
		r := &s.OverrideRules[i]
		path := indexed("spec.overrideRules", i)
		if r.TargetCluster != nil {
			validateClusterAffinity(r.TargetCluster, path+".targetCluster", perr)
		}
		validateOverriders(&r.Overriders, path+".overriders", true, perr)
	}
}

// withoutField gives the overriders without their fieldOverrider.
func (o Overriders) withoutField() Overriders {
	o.FieldOverrider = nil
	return o
}

// validateOverriders checks the operators and components of every overrider
// against the enums of Karmada's schema; with webhook, it also makes the
// checks of Karmada's ValidateOverrideRules, which apply to overrideRules
// only. path is where the overriders are.
func validateOverriders(ov *Overriders, path string, webhook bool, perr *PolicyError) {
	for i, im := range ov.ImageOverrider {
		p := indexed(path+".imageOverrider", i)
		if webhook && im.Predicate != nil {
			validatePointer(im.Predicate.Path, p+".predicate.path", perr)
		}
		switch im.Component {
		case ImageComponentRegistry, ImageComponentRepository, ImageComponentTag:
		case "":
			perr.add(p+".component", "is required: Registry, Repository or Tag")
		default:
			perr.add(p+".component", "unknown component %q; use Registry, Repository or Tag", im.Component)
		}
		// A missing value of add or replace is accepted: the schema only
		// says, in prose, that it must not be empty.
		validateOperator(im.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
	}
	for i, c := range ov.CommandOverrider {
		validateOperator(c.Operator, indexed(path+".commandOverrider", i), perr, OverriderOpAdd, OverriderOpRemove)
	}
	for i, c := range ov.ArgsOverrider {
		validateOperator(c.Operator, indexed(path+".argsOverrider", i), perr, OverriderOpAdd, OverriderOpRemove)
	}
	for i, l := range ov.LabelsOverrider {
		p := indexed(path+".labelsOverrider", i)
		validateOperator(l.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
		if webhook {
			validateLabels(l.Value, p+".value", perr)
		}
	}
	for i, a := range ov.AnnotationsOverrider {
		p := indexed(path+".annotationsOverrider", i)
		validateOperator(a.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
		if webhook {
			validateAnnotations(a.Value, p+".value", perr)
		}
	}
	for i := range ov.FieldOverrider {
		validateFieldOverrider(&ov.FieldOverrider[i], indexed(path+".fieldOverrider", i), webhook, perr)
	}
	for i, pt := range ov.Plaintext {
		// Karmada checks nothing of a plaintext path: json-patch judges it
		// when applied. A missing value of add or replace is JSON null and
		// a value given to remove is ignored, as in Karmada.
		validateOperator(pt.Operator, indexed(path+".plaintext", i), perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
	}
}

// validateLabels applies apimachinery's ValidateLabels, as Karmada does.
func validateLabels(labels map[string]string, path string, perr *PolicyError) {
	for _, k := range sortedKeys(labels) {
		for _, msg := range validation.IsQualifiedName(k) {
			perr.add(path, "%q is not a valid label key: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			perr.add(path+"."+k, "%q is not a valid label value: %s", labels[k], msg)
		}
	}
}

// validateAnnotations applies apimachinery's ValidateAnnotations, as
// Karmada does.
func validateAnnotations(annotations map[string]string, path string, perr *PolicyError) {
	size := 0
	for _, k := range sortedKeys(annotations) {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			perr.add(path, "%q is not a valid annotation key: %s", k, msg)
		}
		size += len(k) + len(annotations[k])
	}
	if size > maxAnnotationsBytes {
		perr.add(path, "annotations may hold at most %d bytes, got %d", maxAnnotationsBytes, size)
	}
}

// validateFieldOverrider checks the operators against the schema's enum;
// with webhook, also what Karmada's ValidateOverrideRules checks: one of
// json and yaml, the paths, and the values of the operations.
func validateFieldOverrider(f *FieldOverrider, path string, webhook bool, perr *PolicyError) {
	if webhook {
		validatePointer(f.FieldPath, path+".fieldPath", perr)
		switch {
		case len(f.JSON) == 0 && len(f.YAML) == 0:
			perr.add(path, "neither json nor yaml is set; give the operations under the one that matches the field's content")
		case len(f.JSON) > 0 && len(f.YAML) > 0:
			perr.add(path, "json and yaml cannot both be set; the field holds one or the other")
		}
	}
	for i, op := range f.JSON {
		validateSubPatch(op.SubPath, op.Operator, op.Value, indexed(path+".json", i), webhook, perr)
	}
	for i, op := range f.YAML {
		validateSubPatch(op.SubPath, op.Operator, op.Value, indexed(path+".yaml", i), webhook, perr)
	}
}

// validateSubPatch checks one operation of a fieldOverrider; with webhook,
// as Karmada's validateOverrideOperator does: a value for add and replace,
// none for remove.
func validateSubPatch(subPath string, op OverriderOperator, value JSONValue, path string, webhook bool, perr *PolicyError) {
	known := validateOperator(op, path, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
	if !webhook {
		return
	}
	validatePointer(subPath, path+".subPath", perr)
	switch {
	case !known:
	case op == OverriderOpRemove && len(value) > 0:
		perr.add(path+".value", "is not allowed for operator remove")
	case op != OverriderOpRemove && len(value) == 0:
		perr.add(path+".value", "is required for operator %s", op)
	}
}

// validateOperator checks that op is one of allowed and reports whether it
// is.
func validateOperator(op OverriderOperator, path string, perr *PolicyError, allowed ...OverriderOperator) bool {
	for _, a := range allowed {
		if op == a {
			return true
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if op == "" {
		perr.add(path+".operator", "is required: %s", orList(names))
	} else {
		perr.add(path+".operator", "unknown operator %q; use %s", op, orList(names))
	}
	return false
}

// validatePointer is Karmada's check of a JSON pointer (go-openapi's
// jsonpointer.New): empty, or starting with "/". Escapes are not checked:
// json-patch reads ~1 as "/", ~0 as "~" and any other "~" as itself.
func validatePointer(p, path string, perr *PolicyError) {
	if p != "" && p[0] != '/' {
		perr.add(path, "%q is not a JSON pointer: it must be empty or start with \"/\"", p)
	}
}

func indexed(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orList(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
