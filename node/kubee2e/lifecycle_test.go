package kubee2e_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

// flaky is pinned to eu-2 by its static weight; on eu-2 alone an override
// (flakyStarved) asks for more cpu than any node has, so its pods stay
// Pending and the Deployment passes its progress deadline: Unhealthy there
// only. Its arguments: a release annotation and the progress deadline.
const flaky = `
apiVersion: v1
kind: ConfigMap
metadata: {name: flaky-config, namespace: apps}
data: {checkpoint: s3://bucket/flaky}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: flaky, namespace: apps, annotations: {release: "%[1]s"}}
spec:
  replicas: 2
  progressDeadlineSeconds: %[2]s
  selector: {matchLabels: {app: flaky}}
  template:
    metadata: {labels: {app: flaky}}
    spec:
      containers:
        - name: app
          image: flaky:1
          resources: {requests: {cpu: 100m, memory: 32Mi}}
          envFrom: [{configMapRef: {name: flaky-config}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: flaky, namespace: apps}
spec:
  propagateDeps: true
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: flaky}]
  placement:
    clusterAffinity: {clusterNames: [eu-2, eu-3]}
    replicaScheduling:
      replicaSchedulingType: Divided
      weightPreference: {staticWeightList: [{targetCluster: {clusterNames: [eu-2]}, weight: 1}]}
  failover:
    application:
      decisionConditions: {tolerationSeconds: 2}
      purgeMode: Gracefully
      gracePeriodSeconds: 120
      statePreservation:
        rules: [{aliasLabelName: example.com/observed-generation, jsonPath: "{ .observedGeneration }"}]
`

const flakyStarved = `
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: flaky-starved-on-eu-2, namespace: apps}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: flaky}]
  overrideRules:
    - targetCluster: {clusterNames: [eu-2]}
      overriders:
        plaintext:
          - {path: /spec/template/spec/containers/0/resources/requests/cpu, operator: replace, value: "500"}
`

// The application lifecycle against real control planes: promote adopts a
// running Deployment (same object, same pods); migrate moves it with its
// ConfigMap to another cluster with at least its replicas Ready at every
// sample, its source peer killed mid-way, and the ConfigMap leaves the
// cluster it left; clone makes an independent copy; a Deployment Unhealthy
// on one cluster fails over to another with the state it preserves.
func TestRealClustersLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := startRegion(t, ctx)
	for _, c := range r.cp.Clusters {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eu1 := r.cluster("eu-1").Client
	two := int32(2)
	legacy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "apps", Labels: map[string]string{"team": "a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "legacy"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "legacy"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "legacy:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
					EnvFrom:   []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "legacy-config"}}}},
				}}},
			},
		},
	}
	if _, err := eu1.CoreV1().ConfigMaps("apps").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "legacy-config", Namespace: "apps"},
		Data: map[string]string{"mode": "old"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu1.AppsV1().Deployments("apps").Create(ctx, legacy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyOn := func(cluster, name string) int32 {
		d, err := r.cluster(cluster).Client.AppsV1().Deployments("apps").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0
		}
		return d.Status.ReadyReplicas
	}
	podUIDs := func() []string {
		pods, err := eu1.CoreV1().Pods("apps").List(ctx, metav1.ListOptions{LabelSelector: "app=legacy"})
		if err != nil {
			return nil
		}
		var out []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				out = append(out, string(p.UID))
			}
		}
		slices.Sort(out)
		return out
	}
	r.eventually("legacy Ready on eu-1 before Shoal knows it", func() error {
		if n := readyOn("eu-1", "legacy"); n != 2 {
			return fmt.Errorf("%d Ready", n)
		}
		return nil
	})
	before, err := eu1.AppsV1().Deployments("apps").Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := podUIDs()

	t.Run("promote keeps the object and its pods", func(t *testing.T) {
		c, err := r.clientOf("eu-1")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Promote(ctx, api.PromoteRequest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "legacy", Cluster: "eu-1", Deps: true})
		if err != nil {
			t.Fatal(err)
		}
		if resp.UIDs["Deployment apps/legacy"] != string(before.UID) {
			t.Fatalf("promote answered %+v, the live uid is %s", resp, before.UID)
		}
		r.eventually("legacy managed by Shoal on eu-1", func() error {
			d, err := eu1.AppsV1().Deployments("apps").Get(ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue {
				return fmt.Errorf("labels %v", d.Labels)
			}
			// Its generation moves (a Deployment's does when its annotations
			// change, and Shoal adds its own), its pod template must not.
			if d.UID != before.UID || !reflect.DeepEqual(d.Spec.Template, before.Spec.Template) {
				return fmt.Errorf("uid %s, was %s; pod template %+v, was %+v: not the same object, or its pods change", d.UID, before.UID, d.Spec.Template, before.Spec.Template)
			}
			return nil
		})
		time.Sleep(2 * time.Second) // a rollout, had adoption started one, would have replaced pods by now
		if got := podUIDs(); fmt.Sprint(got) != fmt.Sprint(pods) {
			t.Fatalf("pods after promote %v, before %v: restarted", got, pods)
		}
		rss, err := eu1.AppsV1().ReplicaSets("apps").List(ctx, metav1.ListOptions{LabelSelector: "app=legacy"})
		if err != nil || len(rss.Items) != 1 {
			t.Fatalf("replica sets after promote: %d, %v; want the one from before (no rollout)", len(rss.Items), err)
		}
	})

	t.Run("migrate keeps the replicas Ready through the loss of the source peer", func(t *testing.T) {
		var mu sync.Mutex
		low := ""
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				a, b := readyOn("eu-1", "legacy"), readyOn("eu-2", "legacy")
				if a+b < 2 {
					mu.Lock()
					if low == "" {
						low = fmt.Sprintf("eu-1 %d, eu-2 %d Ready", a, b)
					}
					mu.Unlock()
				}
			}
		})
		if _, err := r.client.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "apps", Name: "legacy", From: "eu-1", To: "eu-2"}); err != nil {
			t.Fatal(err)
		}
		r.kill("eu-1")
		r.eventually("legacy Ready on eu-2 with its ConfigMap", func() error {
			if n := readyOn("eu-2", "legacy"); n != 2 {
				return fmt.Errorf("%d Ready", n)
			}
			_, err := r.cluster("eu-2").Client.CoreV1().ConfigMaps("apps").Get(ctx, "legacy-config", metav1.GetOptions{})
			return err
		})
		r.restart("eu-1")
		r.eventually("eu-1's copy and ConfigMap gone once its peer is back", func() error {
			if _, err := eu1.AppsV1().Deployments("apps").Get(ctx, "legacy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("legacy on eu-1: %v", err)
			}
			if _, err := eu1.CoreV1().ConfigMaps("apps").Get(ctx, "legacy-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("legacy-config on eu-1: %v", err)
			}
			return nil
		})
		close(stop)
		wg.Wait()
		if low != "" {
			t.Fatalf("fewer than 2 Ready at a sample: %s", low)
		}
	})

	t.Run("clone makes an independent copy", func(t *testing.T) {
		if _, err := r.client.Clone(ctx, api.CloneRequest{Kind: "Deployment", Namespace: "apps", Name: "legacy", From: "eu-2", To: "eu-3", ToNamespace: "apps-copy"}); err != nil {
			t.Fatal(err)
		}
		eu3 := r.cluster("eu-3").Client
		r.eventually("the clone Ready on eu-3 with its ConfigMap", func() error {
			d, err := eu3.AppsV1().Deployments("apps-copy").Get(ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.ReadyReplicas != 2 {
				return fmt.Errorf("%d Ready", d.Status.ReadyReplicas)
			}
			_, err = eu3.CoreV1().ConfigMaps("apps-copy").Get(ctx, "legacy-config", metav1.GetOptions{})
			return err
		})
		if _, err := r.client.Delete(ctx, "Deployment", "apps", "legacy"); err != nil {
			t.Fatal(err)
		}
		r.eventually("the original gone from eu-2", func() error {
			if _, err := r.cluster("eu-2").Client.AppsV1().Deployments("apps").Get(ctx, "legacy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("legacy on eu-2: %v", err)
			}
			return nil
		})
		if d, err := eu3.AppsV1().Deployments("apps-copy").Get(ctx, "legacy", metav1.GetOptions{}); err != nil || d.Status.ReadyReplicas != 2 {
			t.Fatalf("the clone after the original went: %v", err)
		}
	})

	t.Run("application failover moves only the unhealthy copy, with its state and its dependency, and back", func(t *testing.T) {
		r.apply(ctx, fmt.Sprintf(flaky, "1", "3")+"---"+flakyStarved)
		r.eventually("flaky Unhealthy on eu-2, then Ready on eu-3 with the preserved label", func() error {
			d, err := r.cluster("eu-3").Client.AppsV1().Deployments("apps").Get(ctx, "flaky", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.ReadyReplicas != 2 {
				return fmt.Errorf("eu-3: %d Ready", d.Status.ReadyReplicas)
			}
			if v := d.Labels["example.com/observed-generation"]; v == "" {
				return fmt.Errorf("eu-3's copy has no preserved state label: %v", d.Labels)
			}
			return nil
		})
		r.eventually("eu-2's copy gone, eu-2 still Ready", func() error {
			if _, err := r.cluster("eu-2").Client.AppsV1().Deployments("apps").Get(ctx, "flaky", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("flaky on eu-2: %v", err)
			}
			cs, err := r.client.Clusters(ctx)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Name == "eu-2" && c.Health != "Ready" {
					return fmt.Errorf("eu-2 is %s", c.Health)
				}
			}
			return nil
		})
		ds, err := r.client.Describe(ctx, "Deployment", "apps", "flaky")
		if err != nil || len(ds) != 1 || len(ds[0].ApplicationFailover) != 1 || ds[0].ApplicationFailover[0].Cluster != "eu-2" {
			t.Fatalf("describe: %+v, %v", ds, err)
		}
		configOn := func(cluster string) error {
			_, err := r.cluster(cluster).Client.CoreV1().ConfigMaps("apps").Get(ctx, "flaky-config", metav1.GetOptions{})
			return err
		}
		r.eventually("flaky-config followed flaky to eu-3 and left eu-2", func() error {
			if err := configOn("eu-3"); err != nil {
				return fmt.Errorf("eu-3: %w", err)
			}
			if err := configOn("eu-2"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("eu-2 still holds it: %v", err)
			}
			return nil
		})

		// The cause is fixed (the starving override goes; the deadline is
		// a normal one again, so that a slow start is no failure) and a new
		// generation lifts the bar: flaky and its ConfigMap go back to
		// eu-2, the cluster its weight prefers, and leave eu-3.
		if _, err := r.client.Delete(ctx, "OverridePolicy", "apps", "flaky-starved-on-eu-2"); err != nil {
			t.Fatal(err)
		}
		r.apply(ctx, fmt.Sprintf(flaky, "2", "600"))
		r.eventually("flaky and flaky-config back on eu-2 only", func() error {
			if n := readyOn("eu-2", "flaky"); n != 2 {
				return fmt.Errorf("eu-2: %d Ready", n)
			}
			if err := configOn("eu-2"); err != nil {
				return fmt.Errorf("eu-2: %w", err)
			}
			if _, err := r.cluster("eu-3").Client.AppsV1().Deployments("apps").Get(ctx, "flaky", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("flaky on eu-3: %v", err)
			}
			if err := configOn("eu-3"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("flaky-config on eu-3: %v", err)
			}
			return nil
		})
	})
}
