package api

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	ok := ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	with := func(f func(*ObjectKey)) ObjectKey { k := ok; f(&k); return k }
	long := strings.Repeat("a", 254)
	tests := []struct {
		name string
		key  ObjectKey
		want []string // substrings of the error; nil: valid
	}{
		{"a Deployment", ok, nil},
		{"core group", ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg.v2"}, nil},
		{"cluster-scoped", ObjectKey{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "reader"}, nil},
		{"a policy", ObjectKey{APIVersion: PolicyAPIVersion, Kind: KindPropagationPolicy, Namespace: "default", Name: "web"}, nil},
		{"name of 253", with(func(k *ObjectKey) { k.Name = long[:253] }), nil},

		{"the version in the kind", ObjectKey{APIVersion: "policy.karmada.io", Kind: "v1alpha1/PropagationPolicy", Namespace: "default", Name: "web"},
			[]string{`apiVersion "policy.karmada.io": must be v1`, `kind "v1alpha1/PropagationPolicy": must not contain '/'`, "apiVersion: policy.karmada.io/v1alpha1, kind: PropagationPolicy"}},
		{"two slashes in apiVersion", with(func(k *ObjectKey) { k.APIVersion = "apps/v1/x" }), []string{`apiVersion "apps/v1/x"`, "one '/'"}},
		{"bare version other than v1", with(func(k *ObjectKey) { k.APIVersion = "v2" }), []string{`apiVersion "v2": must be v1`}},
		{"upper-case group", with(func(k *ObjectKey) { k.APIVersion = "Apps/v1" }), []string{`apiVersion "Apps/v1": group: a lowercase RFC 1123 subdomain`}},
		{"bad version", with(func(k *ObjectKey) { k.APIVersion = "apps/V1" }), []string{`apiVersion "apps/V1": version: a lowercase RFC 1123 label`}},
		{"empty group", with(func(k *ObjectKey) { k.APIVersion = "/v1" }), []string{`apiVersion "/v1": group:`}},
		{"kind with a dash", with(func(k *ObjectKey) { k.Kind = "Deploy-ment" }), []string{`kind "Deploy-ment": must start with a letter`}},
		{"kind starting with a digit", with(func(k *ObjectKey) { k.Kind = "2Deployment" }), []string{`kind "2Deployment"`}},
		{"kind too long", with(func(k *ObjectKey) { k.Kind = "K" + strings.Repeat("k", MaxKindLength) }), []string{"at most 63"}},
		{"slash in kind and apiVersion", with(func(k *ObjectKey) { k.Kind = "v1/Deployment" }), []string{`kind "v1/Deployment": must not contain '/'`}},
		{"slash in namespace", with(func(k *ObjectKey) { k.Namespace = "a/b" }), []string{`metadata.namespace "a/b": must not contain '/'`}},
		{"namespace with a dot", with(func(k *ObjectKey) { k.Namespace = "a.b" }), []string{`metadata.namespace "a.b": must not contain dots`}},
		{"slash in name", with(func(k *ObjectKey) { k.Name = "web/x" }), []string{`metadata.name "web/x": must not contain '/'`}},
		{"upper-case name", with(func(k *ObjectKey) { k.Name = "Web" }), []string{`metadata.name "Web": a lowercase RFC 1123 subdomain`}},
		{"name of 254", with(func(k *ObjectKey) { k.Name = long }), []string{"metadata.name", "no more than 253"}},
		{"NUL in name", with(func(k *ObjectKey) { k.Name = "web\x00" }), []string{`metadata.name "web\x00": must not contain a NUL byte`}},
		{"NUL in kind", with(func(k *ObjectKey) { k.Kind = "Deploy\x00/ment" }), []string{"kind", "NUL"}},
		{"NUL in apiVersion", with(func(k *ObjectKey) { k.APIVersion = "apps/v1\x00" }), []string{"apiVersion", "NUL"}},
		{"no name", with(func(k *ObjectKey) { k.Name = "" }), []string{`metadata.name "": is required`}},
		{"zero key", ObjectKey{}, []string{"apiVersion", "kind", "metadata.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%+v: %v", tt.key, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("%+v: %v, want ErrInvalidKey", tt.key, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestValidKeysAreDistinct checks the point of ValidateKey: among keys it
// accepts, String is one-to-one. The parts are drawn from pieces that
// collide when joined with "/" unless the rules hold.
func TestValidKeysAreDistinct(t *testing.T) {
	pieces := []string{"", "v1", "a", "b", "a/b", "v1alpha1", "/", "a.b", "Foo", "v1alpha1/Foo", "policy.karmada.io", "x/v1", "\x00"}
	part := func(r *rand.Rand) string {
		s := pieces[r.IntN(len(pieces))]
		if r.IntN(3) == 0 {
			s += "/" + pieces[r.IntN(len(pieces))]
		}
		return s
	}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]ObjectKey{}
	valid := 0
	for range 200_000 {
		k := ObjectKey{APIVersion: part(r), Kind: part(r), Namespace: part(r), Name: part(r)}
		if ValidateKey(k) != nil {
			continue
		}
		valid++
		if other, ok := seen[k.String()]; ok && other != k {
			t.Fatalf("%+v and %+v share the key %q", k, other, k.String())
		}
		seen[k.String()] = k
	}
	if valid < 100 {
		t.Fatalf("only %d valid keys drawn; the test checks nothing", valid)
	}
}
