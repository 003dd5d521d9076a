package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// TestKubeClusterEndToEnd drives a KubeCluster and a Reconciler against a
// real API server (kube-apiserver, controller manager, scheduler, kwok
// nodes), one promise after another.
func TestKubeClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := kubetest.Start(ctx, kubetest.Options{Clusters: 1, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil { // ErrNoBinaries says to run `make k8s-tools`; `make test` does
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	kc := cp.Clusters[0]
	client := kc.Client

	e := startKube(t, ctx, kc.RESTConfig)
	web := deploy.Work{Key: api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
		Manifest: []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
"spec":{"containers":[{"name":"c","image":"nginx","resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}]}}}}`),
		Generation: 1, HasReplicas: true, Replicas: 2}
	svc := deploy.Work{Key: api.ObjectKey{APIVersion: "v1", Kind: "Service", Namespace: "shop", Name: "web"},
		Manifest: []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},
"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}`), Generation: 1}
	cfg := cmWork("cfg", "ours")
	desired := []deploy.Work{web, svc, cfg}
	e.r.SetDesired(desired)

	e.wait(t, web.Key, "Deployment ready", func(st deploy.Status) bool {
		return st.AppliedGeneration == 1 && st.Replicas == 2 && st.ReadyReplicas == 2 && st.Health == deploy.HealthHealthy
	})
	e.wait(t, svc.Key, "Service healthy", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	e.wait(t, cfg.Key, "ConfigMap healthy", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })

	t.Run("marks and field manager", func(t *testing.T) {
		d, err := client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue || d.Labels[deploy.ClusterLabel] != "member1" ||
			d.Annotations[deploy.TemplateAnnotation] != web.Key.String() || d.Annotations[deploy.GenerationAnnotation] != "1" {
			t.Errorf("marks: labels %v, annotations %v", d.Labels, d.Annotations)
		}
		applied := false
		for _, m := range d.ManagedFields {
			applied = applied || (m.Manager == "shoal" && m.Operation == metav1.ManagedFieldsOperationApply)
		}
		if !applied {
			t.Errorf("no server-side apply entry of field manager shoal: %+v", d.ManagedFields)
		}
		ns, err := client.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if err != nil || ns.Labels[deploy.CreatedNamespaceLabel] != "true" {
			t.Errorf("namespace shop: %v, labels %v", err, ns.Labels)
		}
	})

	t.Run("health and capacity", func(t *testing.T) {
		h, reason, err := e.kube.Health(ctx)
		if err != nil || h != shoalpb.Health_HEALTH_READY || !strings.Contains(reason, "2/2 nodes Ready") {
			t.Errorf("Health = %v %q %v", h, reason, err)
		}
		var c *shoalpb.Capacity
		eventually(t, time.Minute, "capacity counts the pods", func() bool {
			c, err = e.kube.Capacity(ctx)
			return err == nil && c.GetNodes() == 2 && c.GetAllocatable().GetCpuMilli()-c.GetAvailable().GetCpuMilli() >= 200
		})
		n, err := e.kube.EstimateReplicas(ctx, api.Resources{CPUMilli: 1000})
		if want := int32(c.GetAvailable().GetCpuMilli() / 1000); err != nil || n > want || n < want-2 {
			t.Errorf("EstimateReplicas = %d, %v; available %dm", n, err, c.GetAvailable().GetCpuMilli())
		}
	})

	t.Run("hand-scaled drift is put back", func(t *testing.T) {
		patch := []byte(`{"spec":{"replicas":5}}`)
		if _, err := client.AppsV1().Deployments("shop").Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "replicas back to 2", func() bool {
			d, err := client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
			return err == nil && *d.Spec.Replicas == 2
		})
	})

	t.Run("hand-edited data is put back", func(t *testing.T) {
		patch := []byte(`{"data":{"k":"edited"}}`)
		if _, err := client.CoreV1().ConfigMaps("default").Patch(ctx, "cfg", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "data back", func() bool { return cmData(ctx, client, "cfg") == "ours" })
	})

	t.Run("hand-deleted object is re-created", func(t *testing.T) {
		if err := client.CoreV1().ConfigMaps("default").Delete(ctx, "cfg", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "re-created", func() bool { return cmData(ctx, client, "cfg") == "ours" })
	})

	theirs := cmWork("theirs", "ours")
	t.Run("conflict Abort is not overwritten", func(t *testing.T) {
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, configMapObject("theirs", "theirs"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		desired = append(desired, theirs)
		e.r.SetDesired(desired)
		e.wait(t, theirs.Key, "conflict reported", func(st deploy.Status) bool {
			return strings.Contains(st.Error, "exists in the cluster and is not Shoal's; conflictResolution Abort")
		})
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "theirs", metav1.GetOptions{})
		if err != nil || cm.Data["k"] != "theirs" || cm.Labels[deploy.ManagedByLabel] != "" {
			t.Fatalf("their ConfigMap was touched: %v %v", cm.Data, cm.Labels)
		}
	})

	t.Run("conflict Overwrite adopts", func(t *testing.T) {
		desired[len(desired)-1].ConflictResolution = deploy.ConflictOverwrite
		e.r.SetDesired(desired)
		e.wait(t, theirs.Key, "adopted", func(st deploy.Status) bool { return st.Error == "" && st.AppliedGeneration == 1 })
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "theirs", metav1.GetOptions{})
		if err != nil || cm.Data["k"] != "ours" || cm.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue {
			t.Fatalf("not adopted: %v %v", cm.Data, cm.Labels)
		}
	})

	t.Run("Release keeps the object without marks", func(t *testing.T) {
		desired[2] = deploy.Work{Key: cfg.Key, Generation: 1, Release: true}
		e.r.SetDesired(desired)
		eventually(t, time.Minute, "reported removed", func() bool { return e.rec.wasRemoved(cfg.Key) })
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "cfg", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("released ConfigMap: %v", err)
		}
		if cm.Data["k"] != "ours" || cm.Labels[deploy.ManagedByLabel] != "" || cm.Annotations[deploy.TemplateAnnotation] != "" ||
			cm.Annotations[deploy.GenerationAnnotation] != "" {
			t.Fatalf("released ConfigMap: data %v, labels %v, annotations %v", cm.Data, cm.Labels, cm.Annotations)
		}
	})

	t.Run("CRD and custom resource in one desired set", func(t *testing.T) {
		crd, widget := crdWorks()
		desired = append(desired, crd, widget)
		e.r.SetDesired(desired)
		e.wait(t, widget.Key, "custom resource applied", func(st deploy.Status) bool {
			return st.AppliedGeneration == 1 && st.Health == deploy.HealthHealthy && st.Error == ""
		})
	})

	t.Run("orphans are found by a fresh KubeCluster and deleted", func(t *testing.T) {
		e.stop()
		fresh := startKube(t, ctx, kc.RESTConfig)
		keys, err := fresh.kube.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		crd, widget := crdWorks()
		for _, want := range []api.ObjectKey{web.Key, svc.Key, theirs.Key, crd.Key, widget.Key} {
			if !containsKey(keys, want) {
				t.Errorf("List of a fresh KubeCluster lacks %s: %v", want.Display(), keys)
			}
		}
		if containsKey(keys, cfg.Key) {
			t.Errorf("List includes the released %s", cfg.Key.Display())
		}
		// The new desired set no longer has "theirs" or the custom resource.
		fresh.r.SetDesired([]deploy.Work{web, svc, crd})
		eventually(t, time.Minute, "orphans deleted", func() bool {
			_, err1 := client.CoreV1().ConfigMaps("default").Get(ctx, "theirs", metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && fresh.rec.wasRemoved(theirs.Key) && fresh.rec.wasRemoved(widget.Key)
		})
		fresh.wait(t, web.Key, "still ready", func(st deploy.Status) bool { return st.ReadyReplicas == 2 })
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "cfg", metav1.GetOptions{}); err != nil {
			t.Fatalf("the released ConfigMap was deleted: %v", err)
		}

		t.Run("API server down", func(t *testing.T) {
			kc.StopAPIServer()
			h, reason, err := fresh.kube.Health(ctx)
			if err != nil || h != shoalpb.Health_HEALTH_NOT_READY || !strings.Contains(reason, "API server unreachable") {
				t.Errorf("Health = %v %q %v", h, reason, err)
			}
			if err := fresh.kube.Apply(ctx, cmWork("later", "x")); !errors.Is(err, deploy.ErrUnavailable) {
				t.Errorf("Apply = %v, want ErrUnavailable", err)
			}
		})
	})
}

// kubeEnv is a started KubeCluster with a running Reconciler.
type kubeEnv struct {
	kube *deploy.KubeCluster
	r    *deploy.Reconciler
	rec  *recorder
	stop func()
}

func startKube(t *testing.T, ctx context.Context, rc *rest.Config) *kubeEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	kube, err := deploy.NewKubeCluster(deploy.KubeConfig{ClusterName: "member1", Logger: log}, rc)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	if err := kube.Start(rctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	rec := newRecorder()
	r, err := deploy.NewReconciler(deploy.ReconcilerConfig{ClusterName: "member1", Logger: log,
		ResyncInterval: 2 * time.Second, MinRetryDelay: 100 * time.Millisecond, MaxRetryDelay: 2 * time.Second}, kube, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(rctx) })
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return &kubeEnv{kube: kube, r: r, rec: rec, stop: stop}
}

func (e *kubeEnv) wait(t *testing.T, k api.ObjectKey, what string, cond func(deploy.Status) bool) {
	t.Helper()
	var st deploy.Status
	var ok bool
	eventually(t, 2*time.Minute, k.Display()+" "+what, func() bool {
		st, ok = e.rec.status(k)
		return ok && cond(st)
	})
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func cmWork(name, value string) deploy.Work {
	return deploy.Work{Key: configMapKey(name), Generation: 1,
		Manifest: fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"k":%q}}`, name, value)}
}

func cmData(ctx context.Context, client kubernetes.Interface, name string) string {
	cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["k"]
}

func crdWorks() (crd, widget deploy.Work) {
	crd = deploy.Work{Key: api.ObjectKey{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "widgets.example.com"},
		Generation: 1, Manifest: []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"widgets.example.com"},"spec":{"group":"example.com","scope":"Namespaced",
"names":{"plural":"widgets","singular":"widget","kind":"Widget"},
"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
"properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}`)}
	widget = deploy.Work{Key: api.ObjectKey{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "default", Name: "w"},
		Generation: 1, Manifest: []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},"spec":{"size":3}}`)}
	return crd, widget
}

func containsKey(keys []api.ObjectKey, k api.ObjectKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func configMapObject(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"k": value}}
}
