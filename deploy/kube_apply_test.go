package deploy

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shoalmesh/shoal/api"
)

func TestKubeObject(t *testing.T) {
	key := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}
	manifest := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop",
		"labels":{"app":"web"},"annotations":{"note":"x"},"uid":"u","resourceVersion":"7","managedFields":[{"manager":"kubectl"}],
		"creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"replicas":9},"status":{"replicas":9}}`
	u, err := kubeObject(Work{Key: key, Manifest: []byte(manifest), Generation: 4, HasReplicas: true, Replicas: 2}, true, "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.GetLabels(); got["app"] != "web" || got[ManagedByLabel] != ManagedByValue || got[ClusterLabel] != "eu-1" {
		t.Errorf("labels %v", got)
	}
	if got := u.GetAnnotations(); got["note"] != "x" || got[TemplateAnnotation] != key.String() || got[GenerationAnnotation] != "4" {
		t.Errorf("annotations %v", got)
	}
	if r, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); r != 2 {
		t.Errorf("spec.replicas %d, want 2", r)
	}
	if u.GetUID() != "" || u.GetResourceVersion() != "" || u.GetManagedFields() != nil || u.GetCreationTimestamp() != (metav1.Time{}) {
		t.Errorf("server-owned metadata left: %v", u.Object["metadata"])
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("status left")
	}
	if got, _ := keyOfString(u); got != key.String() {
		t.Errorf("key of the rendered object %q", got)
	}

	job := api.ObjectKey{APIVersion: "batch/v1", Kind: "Job", Namespace: "default", Name: "j"}
	u, err = kubeObject(Work{Key: job, Manifest: []byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}`), HasReplicas: true, Replicas: 3}, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _ := unstructured.NestedInt64(u.Object, "spec", "parallelism"); p != 3 || u.GetNamespace() != "default" {
		t.Errorf("job: parallelism %d, namespace %q", p, u.GetNamespace())
	}
	if _, ok := u.GetLabels()[ClusterLabel]; ok {
		t.Error("cluster label without a cluster name")
	}

	// A cluster-scoped custom kind keyed in "default" is applied without a
	// namespace; a ConfigMap's replicas are left alone.
	widget := api.ObjectKey{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "default", Name: "w"}
	u, err = kubeObject(Work{Key: widget, Manifest: []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"}}`)}, false, "c")
	if err != nil || u.GetNamespace() != "" {
		t.Fatalf("cluster-scoped: %v, namespace %q", err, u.GetNamespace())
	}
	if _, ok := u.Object["spec"]; ok {
		t.Error("spec added to an object without replicas")
	}

	for name, tc := range map[string]struct {
		key      api.ObjectKey
		manifest string
	}{
		"other name":      {key, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"shop"}}`},
		"other kind":      {key, `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web","namespace":"shop"}}`},
		"other namespace": {key, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod"}}`},
		"not an object":   {key, `[1,2]`},
	} {
		if _, err := kubeObject(Work{Key: tc.key, Manifest: []byte(tc.manifest)}, true, "c"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func keyOfString(u *unstructured.Unstructured) (string, bool) {
	k := keyOf(u)
	return k.String(), k != api.ObjectKey{}
}

func TestConflict(t *testing.T) {
	key := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"}
	live := func(labels, ann map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
		u.SetName("cfg")
		u.SetLabels(labels)
		u.SetAnnotations(ann)
		return u
	}
	other := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "x"}.String()
	for _, tc := range []struct {
		name       string
		live       *unstructured.Unstructured
		resolution string
		adopt      bool
		conflict   bool
	}{
		{"absent", nil, "", false, false},
		{"Shoal's", live(map[string]string{ManagedByLabel: ManagedByValue}, map[string]string{TemplateAnnotation: key.String()}), "", false, false},
		{"Shoal's, label only", live(map[string]string{ManagedByLabel: ManagedByValue}, nil), "", false, false},
		{"Shoal's, label removed by hand", live(nil, map[string]string{TemplateAnnotation: key.String()}), "", false, false},
		{"someone else's, Abort by default", live(map[string]string{"app": "x"}, nil), "", false, true},
		{"someone else's, Abort", live(map[string]string{ManagedByLabel: "Helm"}, nil), ConflictAbort, false, true},
		{"someone else's, Overwrite", live(nil, nil), ConflictOverwrite, true, false},
		{"another template's", live(map[string]string{ManagedByLabel: ManagedByValue}, map[string]string{TemplateAnnotation: other}), "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adopt, err := conflict(tc.live, Work{Key: key, ConflictResolution: tc.resolution})
			if adopt != tc.adopt || errors.Is(err, ErrConflict) != tc.conflict {
				t.Fatalf("conflict = %v, %v; want adopt %v, conflict %v", adopt, err, tc.adopt, tc.conflict)
			}
			if err != nil && !strings.Contains(err.Error(), "ConfigMap default/cfg exists in the cluster and is not Shoal's") {
				t.Fatalf("message %q", err)
			}
		})
	}
	// A namespace KubeCluster created for an object is Shoal's to adopt.
	ns := live(map[string]string{CreatedNamespaceLabel: "true"}, nil)
	if adopt, err := conflict(ns, Work{Key: api.ObjectKey{APIVersion: "v1", Kind: "Namespace", Name: "cfg"}}); adopt || err != nil {
		t.Fatalf("created namespace: %v, %v", adopt, err)
	}
}

func TestParseKey(t *testing.T) {
	for _, k := range []api.ObjectKey{
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a", Name: "b"},
		{APIVersion: "v1", Kind: "Namespace", Name: "shop"},
		{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "widgets.example.com"},
	} {
		if got, ok := parseKey(k.String()); !ok || got != k {
			t.Errorf("parseKey(%q) = %+v, %v", k.String(), got, ok)
		}
	}
	for _, s := range []string{"", "v1/ConfigMap/a", "a/b/c/d/e/f", "v1//ns/name", "v1/ConfigMap/ns/", "/v1/Kind/ns/n"} {
		if got, ok := parseKey(s); ok {
			t.Errorf("parseKey(%q) = %+v, want not ok", s, got)
		}
	}
}

func TestOwnershipMarks(t *testing.T) {
	key := api.ObjectKey{APIVersion: "autoscaling/v1", Kind: "HorizontalPodAutoscaler", Namespace: "default", Name: "h"}
	// Read back in another version (as an orphan found through discovery's
	// preferred version), the object still names its template's key.
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}}
	u.SetNamespace("default")
	u.SetName("h")
	u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue})
	u.SetAnnotations(map[string]string{TemplateAnnotation: key.String()})
	if got := keyOf(u); got != key {
		t.Fatalf("keyOf = %+v, want %+v", got, key)
	}
	if !ownedBy(u, key) {
		t.Fatal("not owned for its own key")
	}
	if ownedBy(u, api.ObjectKey{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Namespace: "default", Name: "h"}) {
		t.Fatal("owned for another template's key")
	}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}},
		{Manager: "shoal", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}},
	})
	if got := managedBy(u, "shoal"); got != `{"f:spec":{}}` {
		t.Fatalf("managedBy = %q", got)
	}
	if got := managedBy(u, "kubectl"); got != "" {
		t.Fatalf("managedBy of an absent manager = %q", got)
	}
}
