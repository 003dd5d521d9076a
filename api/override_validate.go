package api

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxAnnotationsBytes is Kubernetes' limit on the total size of an object's
// annotations (apimachinery's ValidateAnnotations), which Karmada applies
// to an annotationsOverrider's value.
const maxAnnotationsBytes = 256 * 1024

// validateOverride checks an override policy as Karmada's webhook does
// (ValidateOverrideSpec in pkg/util/validation/validation.go) and as its CRD
// schema does (the enums of component and operator), plus what Shoal adds so
// that a rule fails when it is applied as rarely as possible: values
// required for add and replace, JSON pointers that are well-formed and
// non-empty where an empty one makes no sense. It appends every problem to
// perr.
func validateOverride(o *OverridePolicy, perr *PolicyError) {
	for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
		perr.add("metadata.name", "%q is not a valid name: %s", o.Name, msg)
	}
	switch o.Kind {
	case KindClusterOverridePolicy:
		if o.Namespace != "" {
			perr.add("metadata.namespace", "a ClusterOverridePolicy is cluster-scoped and must not have a namespace (got %q); remove it, or use an OverridePolicy", o.Namespace)
		}
	default:
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			perr.add("metadata.namespace", "%q is not a valid namespace: %s", o.Namespace, msg)
		}
	}

	s := &o.Spec
	for i, rs := range s.ResourceSelectors {
		path := "spec.resourceSelectors[" + strconv.Itoa(i) + "]"
		if rs.APIVersion == "" {
			perr.add(path+".apiVersion", "is required, e.g. apps/v1")
		}
		if rs.Kind == "" {
			perr.add(path+".kind", "is required, e.g. Deployment")
		}
		if rs.LabelSelector != nil {
			validateLabelSelector(rs.LabelSelector, path+".labelSelector", perr)
		}
	}

	if s.OverrideRules == nil {
		// The deprecated form: validated where the user wrote it.
		validateRule(&RuleWithCluster{TargetCluster: s.TargetCluster, Overriders: s.Overriders}, "spec", perr)
		return
	}
	if s.TargetCluster != nil {
		perr.add("spec.targetCluster", "cannot be set together with overrideRules; it is deprecated: move it into the rules")
	}
	if !s.Overriders.IsZero() {
		perr.add("spec.overriders", "cannot be set together with overrideRules; it is deprecated: move it into the rules")
	}
	for i := range s.OverrideRules {
		validateRule(&s.OverrideRules[i], "spec.overrideRules["+strconv.Itoa(i)+"]", perr)
	}
}

// validateRule checks one rule; path is where its targetCluster and
// overriders are.
func validateRule(r *RuleWithCluster, path string, perr *PolicyError) {
	if r.TargetCluster != nil {
		validateClusterAffinity(r.TargetCluster, path+".targetCluster", perr)
	}
	ov := &r.Overriders
	path += ".overriders"
	for i, im := range ov.ImageOverrider {
		validateImageOverrider(&im, indexed(path+".imageOverrider", i), perr)
	}
	for i, c := range ov.CommandOverrider {
		validateCommandArgs(&c, indexed(path+".commandOverrider", i), perr)
	}
	for i, c := range ov.ArgsOverrider {
		validateCommandArgs(&c, indexed(path+".argsOverrider", i), perr)
	}
	for i, l := range ov.LabelsOverrider {
		p := indexed(path+".labelsOverrider", i)
		validateOperator(l.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
		for _, k := range sortedKeys(l.Value) {
			for _, msg := range validation.IsQualifiedName(k) {
				perr.add(p+".value", "%q is not a valid label key: %s", k, msg)
			}
			for _, msg := range validation.IsValidLabelValue(l.Value[k]) {
				perr.add(p+".value."+k, "%q is not a valid label value: %s", l.Value[k], msg)
			}
		}
	}
	for i, a := range ov.AnnotationsOverrider {
		p := indexed(path+".annotationsOverrider", i)
		validateOperator(a.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
		size := 0
		for _, k := range sortedKeys(a.Value) {
			for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
				perr.add(p+".value", "%q is not a valid annotation key: %s", k, msg)
			}
			size += len(k) + len(a.Value[k])
		}
		if size > maxAnnotationsBytes {
			perr.add(p+".value", "annotations may hold at most %d bytes, got %d", maxAnnotationsBytes, size)
		}
	}
	for i := range ov.FieldOverrider {
		validateFieldOverrider(&ov.FieldOverrider[i], indexed(path+".fieldOverrider", i), perr)
	}
	for i, pt := range ov.Plaintext {
		p := indexed(path+".plaintext", i)
		validatePointer(pt.Path, p+".path", true, perr)
		// As in Karmada, a missing value of add or replace is JSON null,
		// and a value given to remove is ignored.
		validateOperator(pt.Operator, p, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace)
	}
}

func validateImageOverrider(im *ImageOverrider, path string, perr *PolicyError) {
	if im.Predicate != nil {
		validatePointer(im.Predicate.Path, path+".predicate.path", true, perr)
	}
	switch im.Component {
	case ImageComponentRegistry, ImageComponentRepository, ImageComponentTag:
	case "":
		perr.add(path+".component", "is required: Registry, Repository or Tag")
	default:
		perr.add(path+".component", "unknown component %q; use Registry, Repository or Tag", im.Component)
	}
	if validateOperator(im.Operator, path, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace) &&
		im.Operator != OverriderOpRemove && im.Value == "" {
		perr.add(path+".value", "is required for operator %s", im.Operator)
	}
}

func validateCommandArgs(c *CommandArgsOverrider, path string, perr *PolicyError) {
	if c.ContainerName == "" {
		perr.add(path+".containerName", "is required")
	}
	validateOperator(c.Operator, path, perr, OverriderOpAdd, OverriderOpRemove)
}

func validateFieldOverrider(f *FieldOverrider, path string, perr *PolicyError) {
	validatePointer(f.FieldPath, path+".fieldPath", true, perr)
	switch {
	case len(f.JSON) == 0 && len(f.YAML) == 0:
		perr.add(path, "neither json nor yaml is set; give the operations under the one that matches the field's content")
	case len(f.JSON) > 0 && len(f.YAML) > 0:
		perr.add(path, "json and yaml cannot both be set; the field holds one or the other")
	}
	for i, op := range f.JSON {
		validateSubPatch(op.SubPath, op.Operator, op.Value, indexed(path+".json", i), perr)
	}
	for i, op := range f.YAML {
		validateSubPatch(op.SubPath, op.Operator, op.Value, indexed(path+".yaml", i), perr)
	}
}

// validateSubPatch checks one operation of a fieldOverrider as Karmada's
// validateOverrideOperator does: a value for add and replace, none for
// remove.
func validateSubPatch(subPath string, op OverriderOperator, value JSONValue, path string, perr *PolicyError) {
	validatePointer(subPath, path+".subPath", false, perr)
	if !validateOperator(op, path, perr, OverriderOpAdd, OverriderOpRemove, OverriderOpReplace) {
		return
	}
	switch {
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

// CheckJSONPointer reports what is wrong with p as an RFC 6901 JSON pointer:
// it must be empty (the whole document) or start with "/", and "~" may only
// appear as ~0 (for "~") or ~1 (for "/").
func CheckJSONPointer(p string) error {
	if p == "" {
		return nil
	}
	if p[0] != '/' {
		return fmt.Errorf("%q is not a JSON pointer: it must start with \"/\"", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Errorf("%q is not a JSON pointer: \"~\" must be followed by 0 or 1 (write ~0 for \"~\" and ~1 for \"/\" in a key)", p)
		}
	}
	return nil
}

func validatePointer(p, path string, required bool, perr *PolicyError) {
	if p == "" {
		if required {
			perr.add(path, "is required: a JSON pointer such as /spec/replicas")
		}
		return
	}
	if err := CheckJSONPointer(p); err != nil {
		perr.add(path, "%v", err)
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
