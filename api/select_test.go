package api

import (
	"fmt"
	"math/rand/v2"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pol builds a policy for the selection tests. kind "pp" or "cpp".
func pol(kind, namespace, name string, priority int32, selectors ...ResourceSelector) *Policy {
	k := KindPropagationPolicy
	if kind == "cpp" {
		k = KindClusterPropagationPolicy
	}
	return &Policy{Kind: k, Namespace: namespace, Name: name, Spec: PropagationSpec{ResourceSelectors: selectors, Priority: &priority}}
}

func deploySel(ns, name string) ResourceSelector {
	return ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name}
}

func labelSel(ns string, labels map[string]string) ResourceSelector {
	return ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}
}

var web = &Template{
	Key:    ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
	Labels: map[string]string{"app": "web"},
}

func TestSelects(t *testing.T) {
	clusterRole := &Template{Key: ObjectKey{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "reader"}}
	tests := []struct {
		name string
		p    *Policy
		t    *Template
		want bool
	}{
		{"by name", pol("pp", "default", "a", 0, deploySel("default", "web")), web, true},
		{"other name", pol("pp", "default", "a", 0, deploySel("default", "api")), web, false},
		{"by kind", pol("pp", "default", "a", 0, deploySel("default", "")), web, true},
		{"other kind", pol("pp", "default", "a", 0, ResourceSelector{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "default"}), web, false},
		{"other apiVersion", pol("pp", "default", "a", 0, ResourceSelector{APIVersion: "apps/v1beta1", Kind: "Deployment", Namespace: "default"}), web, false},
		{"by label", pol("pp", "default", "a", 0, labelSel("default", map[string]string{"app": "web"})), web, true},
		{"other label", pol("pp", "default", "a", 0, labelSel("default", map[string]string{"app": "api"})), web, false},
		{"name wins over a non-matching labelSelector", pol("pp", "default", "a", 0, ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}}), web, true},
		{"any selector", pol("pp", "default", "a", 0, deploySel("default", "api"), deploySel("default", "web")), web, true},
		{"pp in other namespace", pol("pp", "prod", "a", 0, deploySel("", "web")), web, false},
		{"pp and cluster-scoped template", pol("pp", "default", "a", 0, ResourceSelector{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}), clusterRole, false},
		{"cpp any namespace", pol("cpp", "", "a", 0, deploySel("", "web")), web, true},
		{"cpp namespace in selector", pol("cpp", "", "a", 0, deploySel("prod", "web")), web, false},
		{"cpp cluster-scoped template", pol("cpp", "", "a", 0, ResourceSelector{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}), clusterRole, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Selects(tt.t); got != tt.want {
				t.Errorf("Selects = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSelectPolicy(t *testing.T) {
	tests := []struct {
		name     string
		policies []*Policy
		want     string // Ref of the winner, "" for none
	}{
		{"none", nil, ""},
		{"none matches", []*Policy{pol("pp", "default", "a", 0, deploySel("default", "api"))}, ""},
		{"nil entries are skipped", []*Policy{nil, pol("pp", "default", "a", 0, deploySel("default", "web")), nil}, "PropagationPolicy default/a"},
		{"pp beats cpp of higher priority", []*Policy{
			pol("cpp", "", "all", 100, deploySel("", "web")),
			pol("pp", "default", "z", -5, deploySel("default", "")),
		}, "PropagationPolicy default/z"},
		{"cpp when no pp matches", []*Policy{
			pol("cpp", "", "all", 0, deploySel("", "")),
			pol("pp", "default", "a", 0, deploySel("default", "api")),
			pol("pp", "prod", "b", 0, deploySel("prod", "web")),
		}, "ClusterPropagationPolicy all"},
		{"higher priority wins over precision", []*Policy{
			pol("pp", "default", "by-name", 1, deploySel("default", "web")),
			pol("pp", "default", "by-kind", 2, deploySel("default", "")),
		}, "PropagationPolicy default/by-kind"},
		{"name beats label beats kind", []*Policy{
			pol("pp", "default", "a-kind", 0, deploySel("default", "")),
			pol("pp", "default", "b-label", 0, labelSel("default", map[string]string{"app": "web"})),
			pol("pp", "default", "c-name", 0, deploySel("default", "web")),
		}, "PropagationPolicy default/c-name"},
		{"label beats kind", []*Policy{
			pol("pp", "default", "a-kind", 0, deploySel("default", "")),
			pol("pp", "default", "b-label", 0, labelSel("default", map[string]string{"app": "web"})),
		}, "PropagationPolicy default/b-label"},
		{"best selector of a policy counts", []*Policy{
			pol("pp", "default", "a", 0, labelSel("default", map[string]string{"app": "web"})),
			pol("pp", "default", "b", 0, deploySel("default", ""), deploySel("default", "web")),
		}, "PropagationPolicy default/b"},
		{"then alphabetical name", []*Policy{
			pol("pp", "default", "foo", 0, deploySel("default", "web")),
			pol("pp", "default", "bar", 0, deploySel("default", "web")),
		}, "PropagationPolicy default/bar"},
		{"cpp precedence", []*Policy{
			pol("cpp", "", "b-kind", 3, deploySel("", "")),
			pol("cpp", "", "a-name", 3, deploySel("default", "web")),
			pol("cpp", "", "c-low", 1, deploySel("default", "web")),
		}, "ClusterPropagationPolicy a-name"},
		{"negative priority loses", []*Policy{
			pol("cpp", "", "a", -1, deploySel("", "web")),
			pol("cpp", "", "b", 0, deploySel("", "")),
		}, "ClusterPropagationPolicy b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SelectPolicy(tt.policies, web)
			ref := ""
			if got != nil {
				ref = got.Ref()
			}
			if ref != tt.want {
				t.Errorf("SelectPolicy = %q, want %q", ref, tt.want)
			}
			// The order of the policies does not matter.
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 10; i++ {
				ps := append([]*Policy(nil), tt.policies...)
				r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
				if again := SelectPolicy(ps, web); again != got {
					t.Fatalf("shuffled order %v picked %v, not %v", refs(ps), again, got)
				}
			}
		})
	}
}

func refs(ps []*Policy) []string {
	var out []string
	for _, p := range ps {
		if p == nil {
			out = append(out, "<nil>")
			continue
		}
		out = append(out, fmt.Sprintf("%s@%d", p.Ref(), p.ExplicitPriority()))
	}
	return out
}

// Policies straight from YAML: defaulting fills the selector namespace, so a
// PropagationPolicy written without namespaces selects in its own.
func TestSelectPolicyFromYAML(t *testing.T) {
	docs, err := DecodeDocuments(readTestdata(t, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(docs[0].Manifest)
	if err != nil {
		t.Fatal(err)
	}
	pp := docs[1].Policy
	tmpl.Key.Namespace = ""
	if pp.Selects(tmpl) {
		t.Fatalf("a template without namespace is not in a policy's namespace")
	}
	tmpl.Key.Namespace = "default"
	if got := SelectPolicy([]*Policy{pp}, tmpl); got != pp {
		t.Errorf("SelectPolicy = %v", got)
	}
}
