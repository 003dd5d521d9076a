package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/shoalmesh/shoal/api"
)

// KubeConfig configures a KubeCluster.
type KubeConfig struct {
	// ClusterName names the member cluster in logs and in the ClusterLabel
	// of every object applied. Required.
	ClusterName string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Resync is the informers' resync period; 0 disables it (the
	// Reconciler compares everything on its own resync anyway).
	Resync time.Duration
	// FieldManager is the server-side apply field manager. Default "shoal".
	FieldManager string
	// QPS and Burst bound the requests KubeCluster sends to the API server
	// (client-go's token bucket: QPS requests per second on average, up to
	// Burst at once). Defaults 200 and twice QPS, where client-go has 5 and 10
	// and kube-controller-manager 20 and 30: a peer is the only Shoal
	// client of its cluster, a burst of new objects costs it two requests
	// each (a read that the name is free, the apply) with eight workers in
	// flight, and the API server's own Priority and Fairness, not this
	// limit, is what protects it from overload (a 429 is retried). They
	// apply unless the REST config passed to NewKubeCluster has its own
	// RateLimiter.
	QPS   float32
	Burst int
}

// DefaultKubeConfig returns the defaults for the named cluster.
func DefaultKubeConfig(clusterName string) KubeConfig {
	return KubeConfig{ClusterName: clusterName, Logger: slog.Default(), FieldManager: "shoal", QPS: 200, Burst: 400}
}

// Validate checks that the cluster is named and the resync, QPS and Burst
// not negative.
func (c KubeConfig) Validate() error {
	var errs []error
	if c.ClusterName == "" {
		errs = append(errs, errors.New("kube cluster config: cluster name is required"))
	}
	if c.Resync < 0 {
		errs = append(errs, fmt.Errorf("kube cluster config: resync must not be negative, got %s", c.Resync))
	}
	if c.QPS < 0 {
		errs = append(errs, fmt.Errorf("kube cluster config: QPS must not be negative, got %g", c.QPS))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("kube cluster config: burst must not be negative, got %d", c.Burst))
	}
	return errors.Join(errs...)
}

func (c KubeConfig) withDefaults() KubeConfig {
	d := DefaultKubeConfig(c.ClusterName)
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.FieldManager == "" {
		c.FieldManager = d.FieldManager
	}
	if c.QPS == 0 {
		c.QPS = d.QPS
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(2*c.QPS))
	}
	return c
}

// ErrKindNotServed is returned by Apply for an object whose kind the
// cluster does not serve (yet): typically a custom resource whose
// CustomResourceDefinition is not Established. The REST mapper is reset, so
// a retry after a backoff sees the kind once it is served.
var ErrKindNotServed = errors.New("kind not served by the cluster")

// KubeCluster is a real member cluster driven through client-go, the twin of
// SimCluster.
//
// Apply renders the work (this cluster's replicas, Shoal's labels and
// annotations: see ManagedByLabel) and server-side applies it with the
// configured field manager, forcing conflicts, after mapping its kind
// through discovery and creating its namespace if missing. Before taking
// over an object it does not own, Apply checks (under ConflictAbort, the
// default) whether one of that name exists and fails with ErrConflict if it
// is someone else's; under ConflictOverwrite it applies over whatever is
// there, adopting it. Delete deletes with propagation policy Background:
// the object goes at once, its dependents (a Deployment's ReplicaSets and
// their pods) after it.
//
// Reads come from informers. Objects Shoal owns are watched with the label
// selector ManagedByLabel=ManagedByValue, one informer per resource, started
// for every resource Shoal applies and, at Start, for every served resource
// that already holds such objects (orphans of an earlier run, which List
// returns so that the Reconciler deletes those not desired). Nodes and pods
// are watched for Health and Capacity. Every informer event signals
// Changed; handlers do nothing else.
//
// Drift: after each apply KubeCluster remembers the object's UID and the
// fields its field manager owns (managedFields). A hand edit of an owned
// field moves that field to another manager, so Status reports Drifted when
// the owned set differs, when the UID differs (deleted and re-created by
// someone else), or when the object was not applied since this KubeCluster
// started; the Reconciler then applies again. A hand scale also shows as a
// replica count that differs from the work's.
//
// Because the informers lag behind writes, KubeCluster remembers the
// resource version of its last write per object; until the cache has caught
// up, Status and Delete read the object from the API server instead, except
// the first read after the write, which takes the write's answer.
//
// API requests per new object: under ConflictAbort one read (the name is
// not someone else's: server-side apply has no create-if-absent) and the
// apply; under ConflictOverwrite only the apply. Namespaces are looked up
// (and created) once.
type KubeCluster struct {
	cfg  KubeConfig
	log  *slog.Logger
	dyn  dynamic.Interface
	disc *apiDiscovery
	// selector picks the objects Shoal owns.
	selector string
	changed  chan struct{}
	started  atomic.Bool
	synced   atomic.Bool

	mu         sync.Mutex
	stop       <-chan struct{} // set by Start
	informers  map[schema.GroupVersionResource]*ownedInformer
	pending    map[api.ObjectKey]pendingWrite // writes the cache may not show yet
	nsMu       sync.Mutex                     // one namespace lookup at a time (ensureNamespace)
	applied    map[api.ObjectKey]appliedMark
	namespaces map[string]bool // known to exist
	nodes      cache.SharedIndexInformer
	pods       cache.SharedIndexInformer
}

var _ Cluster = (*KubeCluster)(nil)

type ownedInformer struct {
	inf     cache.SharedIndexInformer
	lastErr atomic.Pointer[error] // last list/watch failure, for messages
}

// pendingWrite is KubeCluster's last write of an object, until its
// informer shows it.
type pendingWrite struct {
	rv string // the resource version it produced
	// obj is the object the API server answered the write with, for the
	// first read after it (the Reconciler's, of the status just applied);
	// later reads while the informer lags ask the API server.
	obj *unstructured.Unstructured
}

// appliedMark is what KubeCluster remembers of its last apply of an object.
type appliedMark struct {
	uid    string
	fields string // the field manager's Apply entry in managedFields
}

// mapping is where an object's kind is served.
type mapping struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// NewKubeCluster returns a KubeCluster for the API server rc points at.
// Nothing is read until Start.
func NewKubeCluster(cfg KubeConfig, rc *rest.Config) (*KubeCluster, error) {
	if rc == nil {
		return nil, errors.New("kube cluster: REST config is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	rc = rest.CopyConfig(rc)
	if rc.UserAgent == "" {
		rc.UserAgent = "shoal"
	}
	if rc.RateLimiter == nil {
		rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	}
	log := cfg.Logger
	if rc.WarningHandler == nil && rc.WarningHandlerWithContext == nil {
		// Deprecation warnings (listing every resource at Start meets
		// many) go to the debug log rather than klog's standard error.
		rc.WarningHandler = warningLogger{log.With("cluster", cfg.ClusterName)}
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kube cluster: %w", err)
	}
	// Only the dynamic client and plain GETs for discovery: the typed
	// clientset, its scheme and client-go's discovery link every API
	// group's types, which more than doubles what a peer weighs.
	disc, err := newAPIDiscovery(rc)
	if err != nil {
		return nil, fmt.Errorf("kube cluster: %w", err)
	}
	return newKubeCluster(cfg, dyn, disc)
}

// warningLogger logs the API server's warnings at debug level.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	w.log.Debug("API server warning", "code", code, "text", text)
}

func newKubeCluster(cfg KubeConfig, dyn dynamic.Interface, disc *apiDiscovery) (*KubeCluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	selector := ManagedByLabel + "=" + ManagedByValue
	return &KubeCluster{
		cfg:        cfg,
		log:        cfg.Logger.With("cluster", cfg.ClusterName),
		dyn:        dyn,
		disc:       disc,
		selector:   selector,
		changed:    make(chan struct{}, 1),
		informers:  map[schema.GroupVersionResource]*ownedInformer{},
		pending:    map[api.ObjectKey]pendingWrite{},
		applied:    map[api.ObjectKey]appliedMark{},
		namespaces: map[string]bool{},
	}, nil
}

// LoadRESTConfig reads the kubeconfig file, or, when kubeconfig is empty,
// the in-cluster configuration of the pod this runs in.
func LoadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no kubeconfig given and not running in a pod (%w); pass --kubeconfig", err)
	}
	return rc, nil
}

// Start starts the informers and finds the objects Shoal owns from an
// earlier run. It returns nil once every informer has synced, or ctx's
// error if ctx ends first; the informers run until ctx ends. While the API
// server cannot be reached it keeps retrying. List and Capacity fail with
// ErrUnavailable until Start has returned nil. It may be called once.
func (k *KubeCluster) Start(ctx context.Context) error {
	if !k.started.CompareAndSwap(false, true) {
		return errors.New("kube cluster: Start called twice")
	}
	k.mu.Lock()
	k.stop = ctx.Done()
	k.mu.Unlock()
	k.startNodesAndPods()
	for failures := 1; ; failures++ {
		err := k.findOwnedResources(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := backoff(time.Second, 30*time.Second, failures)
		k.log.Warn("finding the resources Shoal owns failed; retrying", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	k.mu.Lock()
	nodes, pods := k.nodes, k.pods
	k.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.HasSynced, pods.HasSynced) {
		return ctx.Err()
	}
	k.synced.Store(true)
	k.signal()
	k.log.Info("kube cluster synced")
	return nil
}

// findOwnedResources lists every served, listable resource with Shoal's
// label selector and starts an informer for each that holds an object.
func (k *KubeCluster) findOwnedResources(ctx context.Context) error {
	served, err := k.disc.resources(ctx)
	if err != nil {
		if !errors.Is(err, errGroupsUndiscovered) || len(served) == 0 {
			return fmt.Errorf("discover served resources: %w", err)
		}
		k.log.Warn("some API groups could not be discovered; objects Shoal owns in them are not looked for", "err", err)
	}
	selector := ManagedByLabel + "=" + ManagedByValue
	for _, sl := range served {
		if !sl.preferred {
			continue
		}
		l := sl.list
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") {
				continue
			}
			m := mapping{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced}
			found, err := k.dyn.Resource(m.gvr).List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
			switch {
			case err == nil:
			case transportError(err):
				return fmt.Errorf("list %s: %w", m.gvr, err) // retry it all
			case apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
				k.log.Debug("cannot look for owned objects", "resource", m.gvr.String(), "err", err)
				continue
			default:
				// A broken aggregated API must not hold up the rest.
				k.log.Warn("cannot look for owned objects", "resource", m.gvr.String(), "err", err)
				continue
			}
			if len(found.Items) == 0 {
				continue
			}
			if _, err := k.informerFor(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// ownedInformer watches the objects of one resource that carry Shoal's
// label, in every namespace. (dynamicinformer's factory would do the same
// but links every API group's typed informers into the binary.)
func (k *KubeCluster) ownedInformer(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	ri := k.dyn.Resource(gvr)
	return cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = k.selector
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = k.selector
			return ri.Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, k.cfg.Resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// informerFor returns the synced informer of m's owned objects, starting it
// if needed. It waits at most informerSyncTimeout for the first sync.
func (k *KubeCluster) informerFor(ctx context.Context, m mapping) (cache.SharedIndexInformer, error) {
	k.mu.Lock()
	if k.stop == nil {
		k.mu.Unlock()
		return nil, fmt.Errorf("kube cluster not started: %w", ErrUnavailable)
	}
	oi := k.informers[m.gvr]
	if oi == nil {
		oi = &ownedInformer{inf: k.ownedInformer(m.gvr)}
		gvr := m.gvr.String()
		_ = oi.inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			oi.lastErr.Store(&err)
			k.log.Debug("watch of owned objects failed", "resource", gvr, "err", err)
		})
		_, _ = oi.inf.AddEventHandler(k.signalHandler())
		k.informers[m.gvr] = oi
		go oi.inf.Run(k.stop)
	}
	k.mu.Unlock()
	if oi.inf.HasSynced() {
		return oi.inf, nil
	}
	deadline := time.Now().Add(informerSyncTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !oi.inf.HasSynced() {
		var last error
		if p := oi.lastErr.Load(); p != nil {
			last = *p
		}
		switch {
		case last != nil && (apierrors.IsForbidden(last) || apierrors.IsUnauthorized(last) || apierrors.IsNotFound(last)):
			// Waiting will not help; the informer keeps trying.
			return nil, fmt.Errorf("list %s: %w", m.gvr, last)
		case time.Now().After(deadline):
			why := "no answer"
			if last != nil {
				why = last.Error()
			}
			return nil, fmt.Errorf("objects of %s not listed within %s (%s): %w", m.gvr, informerSyncTimeout, why, ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	return oi.inf, nil
}

const informerSyncTimeout = 30 * time.Second

func (k *KubeCluster) signalHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.signal() },
		UpdateFunc: func(any, any) { k.signal() },
		DeleteFunc: func(any) { k.signal() },
	}
}

func (k *KubeCluster) signal() {
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// Changed implements Cluster: informer events of owned objects, nodes
// (readiness, schedulability, allocatable) and pods (placement, phase).
func (k *KubeCluster) Changed() <-chan struct{} { return k.changed }
