package deploy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// requestCounter counts the requests a client sends, by method and the
// kind of path: "GET deployments/<name>" for a read of one Deployment,
// "GET deployments" for a list or watch, "PATCH deployments/<name>".
type requestCounter struct {
	rt http.RoundTripper
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	// /api/v1/namespaces/ns/deployments/name or /apis/g/v/namespaces/...
	p := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	what := p[len(p)-1]
	if len(p) >= 2 && (p[len(p)-2] == "deployments" || p[len(p)-2] == "namespaces") {
		what = p[len(p)-2] + "/<name>"
	}
	c.mu.Lock()
	c.n[req.Method+" "+what]++
	c.mu.Unlock()
	return c.rt.RoundTrip(req)
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestKubeClusterAPICallsPerObject counts the requests a KubeCluster sends
// for new objects: under ConflictAbort a read that the name is free and the
// apply, under ConflictOverwrite only the apply; the status read right
// after an apply takes the apply's answer; workers applying into a new
// namespace together look it up once. It also checks that Delete takes a
// Deployment's ReplicaSets with it.
func TestKubeClusterAPICallsPerObject(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := kubetest.Start(ctx, kubetest.Options{Clusters: 1, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	kc := cp.Clusters[0]
	counter := &requestCounter{n: map[string]int{}}
	rc := rest.CopyConfig(kc.RESTConfig)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.rt = rt; return counter })
	kube, err := deploy.NewKubeCluster(deploy.KubeConfig{ClusterName: "member1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, rc)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := kube.Start(kctx); err != nil {
		t.Fatal(err)
	}
	dep := func(ns, name string) deploy.Work {
		return deploy.Work{Key: api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name}, Generation: 1, HasReplicas: true, Replicas: 1,
			Manifest: fmt.Appendf(nil, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q},
"spec":{"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},
"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`, name, ns, name, name)}
	}
	applyAndRead := func(w deploy.Work) {
		t.Helper()
		if err := kube.Apply(ctx, w); err != nil {
			t.Fatal(err)
		}
		if st, err := kube.Status(ctx, w.Key); err != nil || st.AppliedGeneration != 1 {
			t.Fatalf("status right after the apply of %s: %+v, %v", w.Key.Display(), st, err)
		}
	}
	check := func(what string, got map[string]int, want map[string]int) {
		t.Helper()
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: %d %q requests, want %d (all: %v)", what, got[k], k, n, got)
			}
		}
	}

	// Warm up the Deployment informer, which starts with the first apply.
	applyAndRead(dep("default", "warm"))
	counter.take()

	for i := range 10 {
		applyAndRead(dep("burst", fmt.Sprint("abort-", i)))
	}
	check("10 new Deployments under Abort in a new namespace", counter.take(), map[string]int{
		"GET deployments/<name>": 10, "PATCH deployments/<name>": 10, "GET namespaces/<name>": 1, "POST namespaces": 1,
	})

	for i := range 5 {
		w := dep("burst", fmt.Sprint("overwrite-", i))
		w.ConflictResolution = deploy.ConflictOverwrite
		applyAndRead(w)
	}
	check("5 new Deployments under Overwrite", counter.take(), map[string]int{
		"GET deployments/<name>": 0, "PATCH deployments/<name>": 5, "GET namespaces/<name>": 0,
	})

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := kube.Apply(ctx, dep("together", fmt.Sprint("d-", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	check("8 applies at once into a new namespace", counter.take(), map[string]int{
		"GET namespaces/<name>": 1, "POST namespaces": 1, "PATCH deployments/<name>": 8,
	})

	// Delete takes the ReplicaSets (and so the pods) with the Deployment.
	gone := dep("burst", "abort-0")
	selector := metav1.ListOptions{LabelSelector: "app=abort-0"}
	eventually(t, time.Minute, "the ReplicaSet of abort-0", func() bool {
		rs, err := kc.Client.AppsV1().ReplicaSets("burst").List(ctx, selector)
		return err == nil && len(rs.Items) == 1
	})
	if err := kube.Delete(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the ReplicaSet of abort-0 deleted with it", func() bool {
		rs, err := kc.Client.AppsV1().ReplicaSets("burst").List(ctx, selector)
		return err == nil && len(rs.Items) == 0
	})
}
