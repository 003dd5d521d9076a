package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// The real-cluster scenarios (real-propagation, real-failover,
// real-footprint) run a region of 3 `shoal agent` processes, each driving
// its own real member cluster: a kube-apiserver, kube-controller-manager and
// kube-scheduler built from the Kubernetes Go modules, with kwok playing
// the kubelet of 2 Nodes so that pods become Running and Ready without
// containers (deploy/kubetest; `make bench` builds the binaries with
// `make k8s-tools` and passes their folder in SHOAL_K8S_BIN). Each peer
// runs with a kubeconfig holding the token of the service account that
// `shoal install` creates, so it has exactly the RBAC of an installation.
// The bench reads the members' Deployments itself, through client-go
// informers on each member's API server (admin credentials), so that "Ready"
// is what Kubernetes says, not what Shoal reports.

const (
	realRegionName = "eu-west" // node.MeshRegionName(0): clusters eu-1, eu-2, eu-3
	realNamespace  = "default"
	realNodes      = 2
	realNodeCPU    = "32"
	realNodeMemory = "64Gi"
	realNodePods   = "500"
	// realPoll bounds how long a condition over the members' Deployments
	// can hold before the bench checks it (it also checks on every watch
	// event).
	realPoll = 20 * time.Millisecond
)

// realClusterNames are the member clusters, named as node.StartMesh names
// the peers of the region's first three clusters.
var realClusterNames = []string{"eu-1", "eu-2", "eu-3"}

// realSetup says how the real-cluster scenarios run, for their "How
// measured" paragraphs.
const realSetup = "3 member clusters, each a real kube-apiserver, kube-controller-manager and kube-scheduler " +
	"(Kubernetes v1.36, built from its Go modules by `make k8s-tools`) sharing one etcd, with kwok (fast pod stages) " +
	"playing the kubelet of 2 Nodes of 32 CPUs, 64Gi and 500 pods each, so pods become Running and Ready without " +
	"containers (deploy/kubetest). One region of 3 `shoal agent` processes (LAN gossip profile), each driving one " +
	"member through `--kubeconfig` with the token of the service account `shoal install` creates (its RBAC, not " +
	"cluster-admin). Everything on 127.0.0.1 of the one machine described above, control planes included."

// realRegion is the control planes and the peers of a real-cluster scenario.
type realRegion struct {
	cp       *kubetest.ControlPlane
	mesh     *benchMesh
	dir      string
	clusters map[string]*kubetest.Cluster
	startup  time.Duration
}

// startRealRegion starts the control planes and the peer processes (with
// the extra agent flags) and waits until the region is healthy: one leader,
// every peer alive, every cluster Ready and untainted. The caller must call
// close.
func startRealRegion(ctx context.Context, b *bencher, extra []string) (*realRegion, error) {
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "shoal-bench-real-")
	if err != nil {
		return nil, err
	}
	r := &realRegion{dir: dir, clusters: map[string]*kubetest.Cluster{}}
	if err := os.Mkdir(filepath.Join(dir, "k8s"), 0o755); err != nil {
		r.close()
		return nil, err
	}
	b.progress("  starting %d Kubernetes control planes (%d kwok nodes of %s CPUs, %s, %s pods each)",
		len(realClusterNames), realNodes, realNodeCPU, realNodeMemory, realNodePods)
	r.cp, err = kubetest.Start(ctx, kubetest.Options{
		Names: realClusterNames, NodesPerCluster: realNodes,
		NodeCPU: realNodeCPU, NodeMemory: realNodeMemory, NodePods: realNodePods,
		Dir: filepath.Join(dir, "k8s"),
	})
	if err != nil {
		r.close()
		return nil, scrubPaths(err)
	}
	peerArgs := map[string][]string{}
	for _, c := range r.cp.Clusters {
		r.clusters[c.Name] = c
		kc, err := installRealPeer(ctx, c)
		if err != nil {
			r.close()
			return nil, scrubPaths(fmt.Errorf("%s: %w", c.Name, err))
		}
		peerArgs[c.Name] = []string{"--kubeconfig", kc}
	}
	b.progress("  control planes ready after %s; starting 3 peer processes", time.Since(t0).Round(100*time.Millisecond))
	args := append([]string{"--gossip-profile", "lan"}, extra...)
	if r.mesh, err = startBenchMeshPeers(ctx, b, len(realClusterNames), args, peerArgs); err != nil {
		r.close()
		return nil, err
	}
	for _, name := range r.mesh.names() {
		if r.clusters[name] == nil {
			r.close()
			return nil, fmt.Errorf("the mesh named a peer %s, which has no member cluster", name)
		}
	}
	r.startup = time.Since(t0)
	b.progress("  region healthy %s after the start", r.startup.Round(100*time.Millisecond))
	return r, nil
}

// close stops the peers, then the control planes, and removes their files.
func (r *realRegion) close() {
	if r.mesh != nil {
		r.mesh.close()
	}
	if r.cp != nil {
		r.cp.Stop()
	}
	os.RemoveAll(r.dir)
}

// members returns the member clusters by name, in name order.
func (r *realRegion) members(names ...string) []*kubetest.Cluster {
	if len(names) == 0 {
		names = realClusterNames
	}
	out := make([]*kubetest.Cluster, 0, len(names))
	for _, n := range names {
		out = append(out, r.clusters[n])
	}
	return out
}

// installRealPeer creates in c what `shoal install` gives a peer that runs
// outside the cluster (namespace, service account, cluster role and
// binding) and returns a kubeconfig with a token of that service account.
func installRealPeer(ctx context.Context, c *kubetest.Cluster) (string, error) {
	out, err := deploy.InstallManifests(deploy.InstallOptions{
		Region: realRegionName, Cluster: c.Name, Image: "shoal:bench", Advertise: "127.0.0.1",
	})
	if err != nil {
		return "", err
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return "", err
	}
	gvrs := map[string]schema.GroupVersionResource{
		"Namespace":          {Version: "v1", Resource: "namespaces"},
		"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
		"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return "", err
		}
		u := &unstructured.Unstructured{Object: obj}
		gvr, ok := gvrs[u.GetKind()]
		if !ok {
			continue // the Secret, Service and StatefulSet run the peer in the cluster; here it runs outside
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("installing %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	expiry := int64(4 * 3600)
	tok, err := c.Client.CoreV1().ServiceAccounts("shoal-system").CreateToken(ctx, "shoal",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return c.KubeconfigForToken(tok.Status.Token)
}

// deployWatch follows the Deployments of realNamespace in some member
// clusters through one informer per cluster.
type deployWatch struct {
	stores  map[string]cache.Store // by cluster name
	changed chan struct{}          // signalled (never blocking) on every event
	stop    chan struct{}
	once    sync.Once
}

// watchDeployments starts informers on the clusters and waits until each
// has listed. The caller must call close. Watch only clusters whose API
// server runs: a reflector that cannot reach its server logs through klog.
func watchDeployments(ctx context.Context, clusters []*kubetest.Cluster) (*deployWatch, error) {
	w := &deployWatch{stores: map[string]cache.Store{}, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	signal := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	var synced []cache.InformerSynced
	for _, c := range clusters {
		f := informers.NewSharedInformerFactoryWithOptions(c.Client, 0, informers.WithNamespace(realNamespace))
		inf := f.Apps().V1().Deployments().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { signal() },
			UpdateFunc: func(any, any) { signal() },
			DeleteFunc: func(any) { signal() },
		}); err != nil {
			w.close()
			return nil, err
		}
		w.stores[c.Name] = inf.GetStore()
		synced = append(synced, inf.HasSynced)
		f.Start(w.stop)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), synced...) {
		w.close()
		return nil, errors.New("the members' Deployments were not listed within 30 s")
	}
	return w, nil
}

func (w *deployWatch) close() { w.once.Do(func() { close(w.stop) }) }

// get returns a cluster's Deployment, or nil.
func (w *deployWatch) get(cluster, name string) *appsv1.Deployment {
	s := w.stores[cluster]
	if s == nil {
		return nil
	}
	o, ok, err := s.GetByKey(realNamespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	d, _ := o.(*appsv1.Deployment)
	return d
}

// wait checks cond on every watch event and every realPoll until it
// returns nil, and returns the time it first did. cond's error says what
// is still missing; wait returns the last one if timeout passes first.
func (w *deployWatch) wait(ctx context.Context, timeout time.Duration, what string, cond func() error) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(realPoll)
	defer tick.Stop()
	for {
		now := time.Now()
		err := cond()
		if err == nil {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s: not within %s: %w", what, timeout, err)
		case <-w.changed:
		case <-tick.C:
		}
	}
}

// deploymentReady says why d is not a Deployment of want replicas, all
// Ready and updated, its status observed at its current generation (nil if
// it is).
func deploymentReady(d *appsv1.Deployment, want int32) error {
	switch {
	case d == nil:
		return errors.New("absent")
	case d.Spec.Replicas == nil || *d.Spec.Replicas != want:
		return fmt.Errorf("spec.replicas %v, want %d", ptrValue(d.Spec.Replicas), want)
	case d.Status.ObservedGeneration < d.Generation:
		return fmt.Errorf("status of generation %d, object at %d", d.Status.ObservedGeneration, d.Generation)
	case d.Status.ReadyReplicas != want || d.Status.UpdatedReplicas != want:
		return fmt.Errorf("%d ready, %d updated of %d", d.Status.ReadyReplicas, d.Status.UpdatedReplicas, want)
	}
	return nil
}

func ptrValue(p *int32) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// allReady says which of the named Deployments is not Ready at want
// replicas in which cluster (nil when all are, everywhere). want maps
// cluster to replicas.
func (w *deployWatch) allReady(names []string, want map[string]int32) error {
	for _, cluster := range sortedKeys(want) {
		for _, n := range names {
			if err := deploymentReady(w.get(cluster, n), want[cluster]); err != nil {
				return fmt.Errorf("%s in %s: %w", n, cluster, err)
			}
		}
	}
	return nil
}

// allPresent says which of the named Deployments is missing from which
// cluster (nil when every cluster has all of them).
func (w *deployWatch) allPresent(names []string, clusters []string) error {
	for _, cluster := range clusters {
		for _, n := range names {
			if w.get(cluster, n) == nil {
				return fmt.Errorf("%s absent from %s", n, cluster)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// everywhere is want with n replicas in each of the clusters.
func everywhere(n int32, clusters ...string) map[string]int32 {
	if len(clusters) == 0 {
		clusters = realClusterNames
	}
	out := map[string]int32{}
	for _, c := range clusters {
		out[c] = n
	}
	return out
}

// controlPlaneRSS sums ControlPlane.RSS by component, in MiB.
func controlPlaneRSS(cp *kubetest.ControlPlane) (byComponent map[string]float64, total float64) {
	byComponent = map[string]float64{}
	for k, v := range cp.RSS() {
		comp := k
		if _, c, ok := strings.Cut(k, "/"); ok {
			comp = c
		}
		mib := float64(v) / (1 << 20)
		byComponent[comp] += mib
		total += mib
	}
	return byComponent, total
}
