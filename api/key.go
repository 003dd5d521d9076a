package api

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// ObjectKey names a mesh object: a resource template or a policy.
type ObjectKey struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// ErrInvalidKey is returned by ValidateKey, and so by DecodeDocuments, for
// an object whose apiVersion, kind, namespace or name breaks the rules
// Kubernetes has for them. The message names each bad field.
var ErrInvalidKey = errors.New("invalid object identity")

// MaxKindLength bounds a kind. Kubernetes derives the resource name from
// the kind (lower-cased, pluralised) and that must be a DNS label, so no
// kind served by an API server is longer.
const MaxKindLength = validation.DNS1123LabelMaxLength

var kindRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// ValidateKey checks a key as Kubernetes checks the same fields of an
// object:
//
//   - apiVersion is "v1" (the core group) or GROUP/VERSION, the group a
//     DNS-1123 subdomain and the version a DNS-1123 label;
//   - kind starts with a letter and holds only letters and digits, at most
//     MaxKindLength;
//   - namespace is empty or a DNS-1123 label;
//   - name is a DNS-1123 subdomain (at most 253).
//
// So no field holds a "/" except apiVersion's one separator, and none a
// NUL: String is then one-to-one, and two different objects never share a
// key of the region state. The error wraps ErrInvalidKey and names every
// bad field.
func ValidateKey(k ObjectKey) error {
	var problems []string
	bad := func(field, value string, msgs ...string) {
		problems = append(problems, fmt.Sprintf("%s %s: %s", field, strconv.Quote(value), strings.Join(msgs, "; ")))
	}
	// check gives the problems common to every field, first: they make the
	// grammar's message (a regular expression) needlessly obscure.
	check := func(field, value string, slashes int) bool {
		switch {
		case value == "":
			bad(field, value, "is required")
		case strings.IndexByte(value, 0) >= 0:
			bad(field, value, "must not contain a NUL byte")
		case strings.Count(value, "/") > slashes:
			if slashes == 0 {
				bad(field, value, "must not contain '/'")
			} else {
				bad(field, value, "must hold one '/' at most, between group and version")
			}
		default:
			return true
		}
		return false
	}

	if check("apiVersion", k.APIVersion, 1) {
		g, v, grouped := strings.Cut(k.APIVersion, "/")
		switch {
		case !grouped && k.APIVersion != "v1":
			bad("apiVersion", k.APIVersion, "must be v1 (the core group) or GROUP/VERSION, such as apps/v1")
		case grouped:
			var msgs []string
			for _, m := range validation.IsDNS1123Subdomain(g) {
				msgs = append(msgs, "group: "+m)
			}
			for _, m := range validation.IsDNS1123Label(v) {
				msgs = append(msgs, "version: "+m)
			}
			if len(msgs) > 0 {
				bad("apiVersion", k.APIVersion, msgs...)
			}
		}
	}
	if strings.Count(k.Kind, "/") == 1 && k.APIVersion != "" && !strings.ContainsAny(k.APIVersion+k.Kind, "\x00") && !strings.Contains(k.APIVersion, "/") {
		// The mistake that shows a "/" matters: kind v1alpha1/Foo with
		// apiVersion example.io has the key of example.io/v1alpha1 Foo.
		v, kind, _ := strings.Cut(k.Kind, "/")
		bad("kind", k.Kind, fmt.Sprintf("must not contain '/': the version belongs in apiVersion (apiVersion: %s/%s, kind: %s)", k.APIVersion, v, kind))
	} else if check("kind", k.Kind, 0) {
		if len(k.Kind) > MaxKindLength || !kindRE.MatchString(k.Kind) {
			bad("kind", k.Kind, fmt.Sprintf("must start with a letter and hold only letters and digits, at most %d, such as Deployment", MaxKindLength))
		}
	}
	if k.Namespace != "" && check("metadata.namespace", k.Namespace, 0) {
		if msgs := validation.IsDNS1123Label(k.Namespace); len(msgs) > 0 {
			bad("metadata.namespace", k.Namespace, msgs...)
		}
	}
	if check("metadata.name", k.Name, 0) {
		if msgs := validation.IsDNS1123Subdomain(k.Name); len(msgs) > 0 {
			bad("metadata.name", k.Name, msgs...)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidKey, strings.Join(problems, "; "))
}

// String gives the key in its stable form apiVersion/kind/namespace/name,
// used as the map key of the region state. It is one-to-one over the keys
// ValidateKey accepts.
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
