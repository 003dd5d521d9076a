package kubee2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/deploy"
)

const keepAndAdopt = `
apiVersion: v1
kind: ConfigMap
metadata: {name: kept, namespace: ops}
data: {v: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: adopted, namespace: ops}
data: {owner: shoal}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: ops, namespace: ops}
spec:
  resourceSelectors:
    - {apiVersion: v1, kind: ConfigMap}
  conflictResolution: Overwrite
  preserveResourcesOnDeletion: true
---
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: broken-on-eu-3, namespace: ops}
spec:
  resourceSelectors:
    - {apiVersion: v1, kind: ConfigMap, name: kept}
  overrideRules:
    - targetCluster: {clusterNames: [eu-3]}
      overriders:
        plaintext:
          - {path: /spec/missing/field, operator: replace, value: x}
`

// Overwrite adopts what exists, preserveResourcesOnDeletion keeps the
// objects when the template goes, and an override that cannot apply on one
// cluster is reported there while the others are unaffected.
func TestRealClustersPolicyBehaviours(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := startRegion(t, ctx)
	for _, c := range r.cp.Clusters {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops"}}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "adopted", Namespace: "ops"}, Data: map[string]string{"owner": "someone-else"}}
	if _, err := r.cluster("eu-1").Client.CoreV1().ConfigMaps("ops").Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.apply(ctx, keepAndAdopt)

	r.eventually("adopted everywhere, kept on eu-1 and eu-2, override error on eu-3", func() error {
		for _, c := range r.cp.Clusters {
			cm, err := c.Client.CoreV1().ConfigMaps("ops").Get(ctx, "adopted", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			if cm.Data["owner"] != "shoal" || cm.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue {
				return fmt.Errorf("%s: adopted is %v %v", c.Name, cm.Data, cm.Labels)
			}
		}
		for _, name := range []string{"eu-1", "eu-2"} {
			if _, err := r.cluster(name).Client.CoreV1().ConfigMaps("ops").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		ds, err := r.client.Describe(ctx, "ConfigMap", "ops", "kept")
		if err != nil {
			return err
		}
		for _, p := range ds[0].Placements {
			switch {
			case p.Cluster == "eu-3" && !strings.Contains(p.Error, "broken-on-eu-3"):
				return fmt.Errorf("eu-3: error %q does not name the override", p.Error)
			case p.Cluster != "eu-3" && (p.Error != "" || p.Health != "Healthy"):
				return fmt.Errorf("%s: %s %s", p.Cluster, p.Health, p.Error)
			}
		}
		return nil
	})
	if _, err := r.cluster("eu-3").Client.CoreV1().ConfigMaps("ops").Get(ctx, "kept", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("eu-3 holds kept although its overrides could not be rendered (err %v)", err)
	}

	if _, err := r.client.Delete(ctx, "ConfigMap", "ops", "kept"); err != nil {
		t.Fatal(err)
	}
	r.eventually("kept released, not deleted, on eu-1 and eu-2", func() error {
		for _, name := range []string{"eu-1", "eu-2"} {
			cm, err := r.cluster(name).Client.CoreV1().ConfigMaps("ops").Get(ctx, "kept", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, owned := cm.Labels[deploy.ManagedByLabel]; owned {
				return fmt.Errorf("%s: still marked as Shoal's", name)
			}
		}
		return nil
	})
}
