package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/api"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrOverride is returned by Render when an override cannot be applied to
// a template for a cluster: a path that does not exist, a field of the wrong
// type, an image that is not an image reference. The error is an
// *OverrideError naming the policy, the rule and the overrider.
var ErrOverride = errors.New("override cannot be applied")

// OverrideError says which override could not be applied, and why. Its
// message reads
// `ClusterOverridePolicy all: overrideRules[0].overriders.plaintext[1]: path /spec/foo: not found`.
type OverrideError struct {
	Policy string // the policy's Ref()
	Path   string // the overrider: overrideRules[0].overriders.plaintext[1]
	Err    error  // what failed
}

func (e *OverrideError) Error() string { return e.Policy + ": " + e.Path + ": " + e.Err.Error() }

// Unwrap gives what failed.
func (e *OverrideError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrOverride) true.
func (e *OverrideError) Is(target error) bool { return target == ErrOverride }

// AppliedOverride records one override policy applied to a cluster's copy.
type AppliedOverride struct {
	Policy string // the policy's Ref()
	Rules  []int  // indexes of the rules that matched the cluster, ascending
}

// Render applies the override policies, already selected and ordered by
// api.SelectOverrides, to a template's JSON manifest for one cluster, as
// Karmada's override manager does: policy by policy, and within a policy
// every rule whose targetCluster matches the cluster, in order; within a
// rule the overriders in Karmada's order (imageOverrider, commandOverrider,
// argsOverrider, labelsOverrider, annotationsOverrider, fieldOverrider,
// plaintext). Nil policies are skipped.
//
// It returns the rendered JSON and the policies that applied (those with at
// least one matching rule). When none applied, the output is a copy of
// manifest, byte for byte. When one override cannot be applied, the error
// is an *OverrideError naming the policy, rule, overrider and what failed
// ("ClusterOverridePolicy all: overrideRules[0].overriders.plaintext[1]: path /spec/foo: not found"),
// and nothing is rendered: the caller reports the error on the workload for
// this cluster. Render never modifies manifest or the policies, and is safe
// for concurrent use.
func Render(manifest []byte, overrides []*api.OverridePolicy, cluster api.ClusterFacts) ([]byte, []AppliedOverride, error) {
	if t := bytes.TrimSpace(manifest); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return nil, nil, fmt.Errorf("%w: the manifest is not a JSON object", ErrOverride)
	}
	doc := manifest
	var applied []AppliedOverride
	for _, o := range overrides {
		if o == nil {
			continue
		}
		var rules []int
		for i := range o.Spec.OverrideRules {
			r := &o.Spec.OverrideRules[i]
			if ok, _ := r.TargetCluster.Matches(cluster); !ok {
				continue
			}
			out, err := applyOverriders(doc, &r.Overriders)
			if err != nil {
				return nil, nil, &OverrideError{
					Policy: o.Ref(),
					Path:   fmt.Sprintf("overrideRules[%d].overriders.%s", i, err.where),
					Err:    err.err,
				}
			}
			doc = out
			rules = append(rules, i)
		}
		if len(rules) > 0 {
			applied = append(applied, AppliedOverride{Policy: o.Ref(), Rules: rules})
		}
	}
	return bytes.Clone(doc), applied, nil
}

// render turns w into the manifest the cluster should hold: the template with
// this cluster's replica share, the managed-by label and the generation
// annotation. It also checks that the manifest names w.Key, and returns the
// parsed template for its per-replica requests.
func render(w Work) ([]byte, *api.Template, error) {
	t, err := api.ParseTemplate(w.Manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	if t.Key != w.Key {
		return nil, nil, fmt.Errorf("%s: manifest names %s instead", w.Key.Display(), t.Key.Display())
	}
	if w.Replicas < 0 {
		return nil, nil, fmt.Errorf("%s: replicas must not be negative, got %d", w.Key.Display(), w.Replicas)
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(w.Manifest))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&obj); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	meta := child(obj, "metadata")
	child(meta, "labels")[ManagedByLabel] = ManagedByValue
	child(meta, "annotations")[GenerationAnnotation] = strconv.FormatInt(w.Generation, 10)
	if w.HasReplicas {
		field := "replicas"
		if w.Key.APIVersion == "batch/v1" && w.Key.Kind == "Job" {
			field = "parallelism"
		}
		child(obj, "spec")[field] = w.Replicas
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	return out, t, nil
}

// AddLabels sets labels on a JSON manifest's metadata.labels (application
// failover's preserved state on a new copy). Each must be a valid label
// name and value.
func AddLabels(manifest []byte, labels map[string]string) ([]byte, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	ls := child(child(obj, "metadata"), "labels")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("label %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
		ls[k] = v
	}
	return json.Marshal(obj)
}

// child returns m[name] as an object, creating it (or replacing a non-object)
// as needed.
func child(m map[string]any, name string) map[string]any {
	c, ok := m[name].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[name] = c
	}
	return c
}
