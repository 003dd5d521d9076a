package kubee2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/shoalmesh/shoal/deploy"
)

const webApp = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          resources: {requests: {cpu: 100m, memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data: {greeting: hello}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors:
    - {apiVersion: apps/v1, kind: Deployment, name: web}
    - {apiVersion: v1, kind: Service, name: web}
    - {apiVersion: v1, kind: ConfigMap, name: web-config}
  placement:
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
          - targetCluster: {clusterNames: [eu-1]}
            weight: 2
          - targetCluster: {clusterNames: [eu-2, eu-3]}
            weight: 1
---
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: web-mirror, namespace: shop}
spec:
  resourceSelectors:
    - {apiVersion: apps/v1, kind: Deployment, name: web}
  overrideRules:
    - targetCluster: {clusterNames: [eu-2]}
      overriders:
        imageOverrider:
          - {component: Registry, operator: replace, value: mirror.example.com}
`

const widgets = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: gadget, namespace: shop}
spec: {size: 3}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: widgets}
spec:
  resourceSelectors:
    - {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: widgets.example.com}
    - {apiVersion: example.com/v1, kind: Widget}
  placement: {}
`

const legacy = `
apiVersion: v1
kind: ConfigMap
metadata: {name: legacy, namespace: shop}
data: {owner: shoal}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: legacy, namespace: shop}
spec:
  resourceSelectors:
    - {apiVersion: v1, kind: ConfigMap, name: legacy}
`

// deployment reads shop/web in one member cluster.
func (r *region) deployment(ctx context.Context, cluster string) (*appsv1.Deployment, error) {
	return r.cluster(cluster).Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
}

// webRuns checks that web runs with want replicas, all Ready, in each
// cluster of want.
func (r *region) webRuns(ctx context.Context, want map[string]int32) error {
	for cluster, n := range want {
		d, err := r.deployment(ctx, cluster)
		if err != nil {
			return fmt.Errorf("%s: %w", cluster, err)
		}
		if *d.Spec.Replicas != n || d.Status.ReadyReplicas != n || d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("%s: web wants %d, has spec %d, %d ready", cluster, n, *d.Spec.Replicas, d.Status.ReadyReplicas)
		}
	}
	return nil
}

func TestRealClusters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := startRegion(t, ctx)

	t.Run("peer runs with the RBAC of shoal install, not as cluster-admin", func(t *testing.T) {
		for name, p := range r.peers {
			rc, err := clientcmd.BuildConfigFromFlags("", p.Config().Kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			cs := kubernetes.NewForConfigOrDie(rc)
			_, err = cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
			if !apierrors.IsForbidden(err) {
				t.Fatalf("%s: the peer's credentials may list cluster roles (err %v): not the installed service account", name, err)
			}
		}
	})

	r.apply(ctx, webApp)
	t.Run("divided deployment, service, configmap and image override", func(t *testing.T) {
		r.eventually("web runs 2/1/1 Ready", func() error { return r.webRuns(ctx, map[string]int32{"eu-1": 2, "eu-2": 1, "eu-3": 1}) })
		for _, c := range r.cp.Clusters {
			d, err := r.deployment(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			want := "nginx:1.27"
			if c.Name == "eu-2" {
				want = "mirror.example.com/nginx:1.27"
			}
			if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
				t.Errorf("%s: image %q, want %q", c.Name, got, want)
			}
			if d.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue {
				t.Errorf("%s: web is not marked as Shoal's: %v", c.Name, d.Labels)
			}
			managers := map[string]bool{}
			for _, mf := range d.ManagedFields {
				managers[mf.Manager] = true
			}
			if !managers["shoal"] {
				t.Errorf("%s: no field manager shoal in %v", c.Name, managers)
			}
			if _, err := c.Client.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{}); err != nil {
				t.Errorf("%s: service: %v", c.Name, err)
			}
			if _, err := c.Client.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{}); err != nil {
				t.Errorf("%s: configmap: %v", c.Name, err)
			}
		}
		// Which overrides each cluster applied arrives with its status
		// report, which may trail the objects themselves.
		var mismatch string
		for end := time.Now().Add(deadline); ; {
			ds, err := r.client.Describe(ctx, "Deployment", "shop", "web")
			if err != nil || len(ds) != 1 {
				t.Fatalf("describe: %v %v", ds, err)
			}
			mismatch = ""
			for _, p := range ds[0].Placements {
				got := strings.Join(p.Overrides, ",")
				want := ""
				if p.Cluster == "eu-2" {
					want = "OverridePolicy shop/web-mirror"
				}
				if got != want {
					mismatch += fmt.Sprintf("overrides on %s %q, want %q; ", p.Cluster, got, want)
				}
			}
			if mismatch == "" || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if mismatch != "" {
			t.Errorf("describe: %s", mismatch)
		}
	})

	t.Run("custom resource definition and custom resource", func(t *testing.T) {
		r.apply(ctx, widgets)
		gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
		r.eventually("a Widget in every cluster", func() error {
			for _, c := range r.cp.Clusters {
				dyn := dynamic.NewForConfigOrDie(c.RESTConfig)
				w, err := dyn.Resource(gvr).Namespace("shop").Get(ctx, "gadget", metav1.GetOptions{})
				if err != nil {
					return fmt.Errorf("%s: %w", c.Name, err)
				}
				if size, _, _ := unstructuredInt(w.Object, "spec", "size"); size != 3 {
					return fmt.Errorf("%s: widget size %d", c.Name, size)
				}
			}
			return nil
		})
	})

	t.Run("drift made by hand is put back", func(t *testing.T) {
		c1 := r.cluster("eu-1")
		d, err := r.deployment(ctx, "eu-1")
		if err != nil {
			t.Fatal(err)
		}
		five := int32(5)
		d.Spec.Replicas = &five
		if _, err := c1.Client.AppsV1().Deployments("shop").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := r.cluster("eu-3").Client.CoreV1().ConfigMaps("shop").Delete(ctx, "web-config", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r.eventually("eu-1 scaled back to 2 and eu-3's configmap re-created", func() error {
			if err := r.webRuns(ctx, map[string]int32{"eu-1": 2}); err != nil {
				return err
			}
			_, err := r.cluster("eu-3").Client.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
			return err
		})
	})

	t.Run("an object that is not Shoal's is not overwritten under Abort", func(t *testing.T) {
		theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "shop"}, Data: map[string]string{"owner": "someone-else"}}
		if _, err := r.cluster("eu-3").Client.CoreV1().ConfigMaps("shop").Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		r.apply(ctx, legacy)
		r.eventually("legacy is Shoal's in eu-1 and eu-2, the conflict reported on eu-3", func() error {
			for _, name := range []string{"eu-1", "eu-2"} {
				cm, err := r.cluster(name).Client.CoreV1().ConfigMaps("shop").Get(ctx, "legacy", metav1.GetOptions{})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if cm.Data["owner"] != "shoal" {
					return fmt.Errorf("%s: owner %q", name, cm.Data["owner"])
				}
			}
			ds, err := r.client.Describe(ctx, "ConfigMap", "shop", "legacy")
			if err != nil {
				return err
			}
			for _, p := range ds[0].Placements {
				if p.Cluster == "eu-3" && p.Error != "" {
					return nil
				}
			}
			return fmt.Errorf("no error reported on eu-3: %+v", ds[0].Placements)
		})
		cm, err := r.cluster("eu-3").Client.CoreV1().ConfigMaps("shop").Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["owner"] != "someone-else" || cm.Labels[deploy.ManagedByLabel] != "" {
			t.Fatalf("eu-3's own configmap was overwritten: %v %v", cm.Data, cm.Labels)
		}
	})

	t.Run("a stopped API server fails over, and back, keeping every object's identity", func(t *testing.T) {
		testAPIServerLossKeepsIdentities(t, ctx, r)
	})

	t.Run("a peer restarted while cut off deletes nothing", func(t *testing.T) {
		testCutOffRestartKeepsObjects(t, ctx, r)
	})
}

func unstructuredInt(obj map[string]any, fields ...string) (int64, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = m[f]
	}
	switch v := cur.(type) {
	case int64:
		return v, true, nil
	case float64:
		return int64(v), true, nil
	}
	return 0, false, nil
}
