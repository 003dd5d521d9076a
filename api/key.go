package api

import (
	"fmt"
	"strings"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// ObjectKey names a mesh object: a resource template or a policy.
type ObjectKey struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// String gives the key in its stable form apiVersion/kind/namespace/name,
// used as the map key of the region state.
func (k ObjectKey) String() string {
	return k.APIVersion + "/" + k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Display gives the key as people read it: "Deployment default/web".
func (k ObjectKey) Display() string {
	if k.Namespace == "" {
		return fmt.Sprintf("%s %s", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s %s/%s", k.Kind, k.Namespace, k.Name)
}

// Proto converts the key to its wire form.
func (k ObjectKey) Proto() *shoalpb.ObjectKey {
	return &shoalpb.ObjectKey{ApiVersion: k.APIVersion, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

// KeyFromProto converts a wire key; a nil key gives the zero key.
func KeyFromProto(p *shoalpb.ObjectKey) ObjectKey {
	if p == nil {
		return ObjectKey{}
	}
	return ObjectKey{APIVersion: p.GetApiVersion(), Kind: p.GetKind(), Namespace: p.GetNamespace(), Name: p.GetName()}
}

// IsPolicy reports whether the key names a Karmada policy of any kind
// (propagation or override) rather than a resource template.
func (k ObjectKey) IsPolicy() bool {
	return strings.HasPrefix(k.APIVersion, PolicyGroup+"/")
}

// IsPropagationPolicy reports whether the key names a PropagationPolicy or
// ClusterPropagationPolicy.
func (k ObjectKey) IsPropagationPolicy() bool {
	return k.APIVersion == PolicyAPIVersion &&
		(k.Kind == KindPropagationPolicy || k.Kind == KindClusterPropagationPolicy)
}

// IsOverridePolicy reports whether the key names an OverridePolicy or
// ClusterOverridePolicy.
func (k ObjectKey) IsOverridePolicy() bool {
	return k.APIVersion == PolicyAPIVersion &&
		(k.Kind == KindOverridePolicy || k.Kind == KindClusterOverridePolicy)
}
