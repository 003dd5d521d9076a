package api

import "bytes"

// Kinds of Karmada's override policies (policy.karmada.io/v1alpha1).
const (
	KindOverridePolicy        = "OverridePolicy"
	KindClusterOverridePolicy = "ClusterOverridePolicy"
)

// OverrideSpec is the spec of Karmada's OverridePolicy and
// ClusterOverridePolicy, field for field (pkg/apis/policy/v1alpha1/override_types.go).
// The two kinds differ only in scope: an OverridePolicy lives in a namespace
// and applies to templates of that namespace; a ClusterOverridePolicy applies
// to templates of any namespace and to cluster-scoped ones.
type OverrideSpec struct {
	// ResourceSelectors restricts the templates the policy applies to. Empty
	// means every template in the policy's scope, as in Karmada.
	ResourceSelectors []ResourceSelector `json:"resourceSelectors,omitempty"`

	// OverrideRules are the overriders to apply, each on the clusters its
	// targetCluster selects.
	OverrideRules []RuleWithCluster `json:"overrideRules,omitempty"`

	// TargetCluster is deprecated in Karmada (v1.0) in favour of
	// OverrideRules. Shoal accepts it with Overriders, turns the pair into
	// overrideRules[0] and warns.
	TargetCluster *ClusterAffinity `json:"targetCluster,omitempty"`

	// Overriders is deprecated in Karmada (v1.0) in favour of OverrideRules;
	// see TargetCluster.
	Overriders Overriders `json:"overriders,omitzero"`
}

// RuleWithCluster is one override rule: overriders and the clusters they
// apply to.
type RuleWithCluster struct {
	// TargetCluster selects the clusters the rule applies to; nil means
	// every cluster.
	TargetCluster *ClusterAffinity `json:"targetCluster,omitempty"`

	// Overriders are applied in Karmada's order: imageOverrider,
	// commandOverrider, argsOverrider, labelsOverrider, annotationsOverrider,
	// fieldOverrider, plaintext; within each kind, in the order written.
	Overriders Overriders `json:"overriders"`
}

// Overriders are the ways of overriding a template. See RuleWithCluster for
// the order in which they apply.
type Overriders struct {
	// Plaintext is a list of RFC 6902 JSON patch operations (add, remove,
	// replace) on the whole object.
	Plaintext []PlaintextOverrider `json:"plaintext,omitempty"`
	// ImageOverrider changes container images.
	ImageOverrider []ImageOverrider `json:"imageOverrider,omitempty"`
	// CommandOverrider changes container commands.
	CommandOverrider []CommandArgsOverrider `json:"commandOverrider,omitempty"`
	// ArgsOverrider changes container args.
	ArgsOverrider []CommandArgsOverrider `json:"argsOverrider,omitempty"`
	// LabelsOverrider changes metadata.labels.
	LabelsOverrider []LabelAnnotationOverrider `json:"labelsOverrider,omitempty"`
	// AnnotationsOverrider changes metadata.annotations.
	AnnotationsOverrider []LabelAnnotationOverrider `json:"annotationsOverrider,omitempty"`
	// FieldOverrider patches a JSON or YAML document held in a string field,
	// such as a ConfigMap's data entry.
	FieldOverrider []FieldOverrider `json:"fieldOverrider,omitempty"`
}

// IsZero reports whether no overrider is set.
func (o Overriders) IsZero() bool {
	return len(o.Plaintext) == 0 && len(o.ImageOverrider) == 0 && len(o.CommandOverrider) == 0 &&
		len(o.ArgsOverrider) == 0 && len(o.LabelsOverrider) == 0 && len(o.AnnotationsOverrider) == 0 &&
		len(o.FieldOverrider) == 0
}

// OverriderOperator is add, remove or replace.
type OverriderOperator string

// Overrider operators.
const (
	OverriderOpAdd     OverriderOperator = "add"
	OverriderOpRemove  OverriderOperator = "remove"
	OverriderOpReplace OverriderOperator = "replace"
)

// ImageComponent is the part of an image reference
// [registry/]repository[:tag|@digest] that an ImageOverrider changes.
type ImageComponent string

// Image components.
const (
	ImageComponentRegistry   ImageComponent = "Registry"
	ImageComponentRepository ImageComponent = "Repository"
	ImageComponentTag        ImageComponent = "Tag"
)

// ImageOverrider changes one component of container images.
type ImageOverrider struct {
	// Predicate names the one image field to change. Without it, every
	// container image of a Pod, ReplicaSet, Deployment, DaemonSet,
	// StatefulSet, Job (and, in Shoal, CronJob) is changed.
	Predicate *ImagePredicate `json:"predicate,omitempty"`
	// Component is Registry, Repository or Tag (a tag or a digest).
	Component ImageComponent `json:"component"`
	// Operator: add appends Value to the component, replace sets it, remove
	// clears it.
	Operator OverriderOperator `json:"operator"`
	// Value is required for add and replace, ignored for remove.
	Value string `json:"value,omitempty"`
}

// ImagePredicate selects an image field.
type ImagePredicate struct {
	// Path is a JSON pointer (RFC 6901) to a string field holding an
	// image, e.g. /spec/template/spec/containers/0/image.
	Path string `json:"path"`
}

// CommandArgsOverrider changes the command or the args of the containers
// with a given name.
type CommandArgsOverrider struct {
	ContainerName string `json:"containerName"`
	// Operator: add appends Value; remove deletes every item equal to one
	// of Value.
	Operator OverriderOperator `json:"operator"`
	Value    []string          `json:"value,omitempty"`
}

// LabelAnnotationOverrider changes labels or annotations.
type LabelAnnotationOverrider struct {
	// Operator: add sets every key of Value; replace sets only the keys
	// already present; remove deletes the keys of Value that are present.
	Operator OverriderOperator `json:"operator"`
	// Value is required by Karmada's schema, even for remove; {} will do.
	Value map[string]string `json:"value"`
}

// PlaintextOverrider is one JSON patch operation on the whole object.
type PlaintextOverrider struct {
	// Path is a JSON pointer (RFC 6901).
	Path     string            `json:"path"`
	Operator OverriderOperator `json:"operator"`
	// Value is required for add and replace, and not allowed for remove.
	Value JSONValue `json:"value,omitempty"`
}

// FieldOverrider patches the JSON or the YAML document held in a string
// field. Exactly one of JSON and YAML is set.
type FieldOverrider struct {
	// FieldPath is a JSON pointer (RFC 6901) to a string field, e.g.
	// /data/config.yaml.
	FieldPath string               `json:"fieldPath"`
	JSON      []JSONPatchOperation `json:"json,omitempty"`
	YAML      []YAMLPatchOperation `json:"yaml,omitempty"`
}

// JSONPatchOperation is one patch operation inside a JSON sub-document.
type JSONPatchOperation struct {
	// SubPath is a JSON pointer inside the sub-document.
	SubPath  string            `json:"subPath"`
	Operator OverriderOperator `json:"operator"`
	Value    JSONValue         `json:"value,omitempty"`
}

// YAMLPatchOperation is one patch operation inside a YAML sub-document
// (which is patched as its JSON equivalent).
type YAMLPatchOperation struct {
	SubPath  string            `json:"subPath"`
	Operator OverriderOperator `json:"operator"`
	Value    JSONValue         `json:"value,omitempty"`
}

// JSONValue is any JSON value, kept as written (Karmada's
// apiextensionsv1.JSON). As in Karmada, JSON null is no value at all.
type JSONValue []byte

// MarshalJSON gives the value, or null when there is none.
func (v JSONValue) MarshalJSON() ([]byte, error) {
	if len(v) == 0 {
		return []byte("null"), nil
	}
	return v, nil
}

// UnmarshalJSON keeps a copy of the value; null leaves it empty.
func (v *JSONValue) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) == 0 || string(t) == "null" {
		*v = nil
		return nil
	}
	*v = append((*v)[:0], b...)
	return nil
}
