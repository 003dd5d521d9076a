package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// startNodesAndPods starts the node and pod informers (every node; every
// pod not yet Succeeded or Failed), keeping only the fields Health and
// Capacity read. k.stop is set.
func (k *KubeCluster) startNodesAndPods() {
	informer := func(lw *cache.ListWatch, obj runtime.Object, slim cache.TransformFunc) cache.SharedIndexInformer {
		inf := cache.NewSharedIndexInformer(lw, obj, k.cfg.Resync, cache.Indexers{})
		_ = inf.SetTransform(slim)
		return inf
	}
	nodes := informer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return k.dyn.Resource(nodesGVR).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return k.dyn.Resource(nodesGVR).Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, func(obj any) (any, error) {
		n, err := typed[corev1.Node](obj)
		if err != nil {
			return nil, err
		}
		return slimNode(n)
	})
	livePods := func(o *metav1.ListOptions) { o.FieldSelector = "status.phase!=Succeeded,status.phase!=Failed" }
	pods := informer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			livePods(&o)
			return k.dyn.Resource(podsGVR).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			livePods(&o)
			return k.dyn.Resource(podsGVR).Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, func(obj any) (any, error) {
		p, err := typed[corev1.Pod](obj)
		if err != nil {
			return nil, err
		}
		return slimPod(p)
	})
	_, _ = nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { k.signal() },
		UpdateFunc: func(o, n any) {
			// Heartbeats alone change nothing Shoal reads.
			if on, ok := o.(*corev1.Node); !ok || nodeChanged(on, n.(*corev1.Node)) {
				k.signal()
			}
		},
		DeleteFunc: func(any) { k.signal() },
	})
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { k.signal() },
		UpdateFunc: func(o, n any) {
			op, ok1 := o.(*corev1.Pod)
			np, ok2 := n.(*corev1.Pod)
			if !ok1 || !ok2 || op.Spec.NodeName != np.Spec.NodeName || op.Status.Phase != np.Status.Phase {
				k.signal()
			}
		},
		DeleteFunc: func(any) { k.signal() },
	})
	k.mu.Lock()
	k.nodes, k.pods = nodes, pods
	stop := k.stop
	k.mu.Unlock()
	go nodes.Run(stop)
	go pods.Run(stop)
}

// Health implements Cluster: NotReady when the API server does not answer
// /readyz (the error is nil: the answer is the health) or no node is
// Ready; Ready otherwise, with how many nodes are.
func (k *KubeCluster) Health(ctx context.Context) (shoalpb.Health, string, error) {
	if err := ctx.Err(); err != nil {
		return shoalpb.Health_HEALTH_UNKNOWN, "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	readyz := k.disc.readyz(rctx)
	cancel()
	if readyz != nil {
		h, reason := clusterHealth(readyz, nil)
		return h, reason, nil
	}
	nodes, err := k.nodeList(ctx)
	if err != nil {
		return shoalpb.Health_HEALTH_NOT_READY, "API server unreachable: " + err.Error(), nil
	}
	h, reason := clusterHealth(nil, nodes)
	return h, reason, nil
}

// nodeList returns the nodes from the informer, or from the API server
// until it has synced.
func (k *KubeCluster) nodeList(ctx context.Context) ([]*corev1.Node, error) {
	k.mu.Lock()
	inf := k.nodes
	k.mu.Unlock()
	if inf != nil && inf.HasSynced() {
		return nodesOf(inf.GetStore().List()), nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := k.dyn.Resource(nodesGVR).List(lctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Node, 0, len(l.Items))
	for i := range l.Items {
		n, err := typed[corev1.Node](&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, n.(*corev1.Node))
	}
	return out, nil
}

// The core resources a peer reads through the dynamic client. (The typed
// core client would link the typed clientset's scheme: every API group's
// types.)
var (
	nodesGVR      = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// typed converts an object read through the dynamic client into T (a
// pointer to a new T); other objects (a deletion tombstone) pass through.
func typed[T any](obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("convert %s: %w", u.GetKind(), err)
	}
	return out, nil
}

// clusterHealth judges a cluster from its /readyz answer and its nodes.
func clusterHealth(readyz error, nodes []*corev1.Node) (shoalpb.Health, string) {
	if readyz != nil {
		var se apierrors.APIStatus
		if errors.As(readyz, &se) {
			return shoalpb.Health_HEALTH_NOT_READY, "API server not ready: " + readyz.Error()
		}
		return shoalpb.Health_HEALTH_NOT_READY, "API server unreachable: " + readyz.Error()
	}
	ready := 0
	for _, n := range nodes {
		if nodeReady(n) {
			ready++
		}
	}
	if ready == 0 {
		return shoalpb.Health_HEALTH_NOT_READY, fmt.Sprintf("no Ready nodes (0/%d)", len(nodes))
	}
	return shoalpb.Health_HEALTH_READY, fmt.Sprintf("%d/%d nodes Ready", ready, len(nodes))
}

// Capacity implements Cluster, from the informers: the allocatable of the
// Ready nodes that take new pods (not cordoned, no NoSchedule or NoExecute
// taint) minus the requests of the pods on them that have not finished.
func (k *KubeCluster) Capacity(ctx context.Context) (*shoalpb.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nodes, pods, err := k.nodesAndPods()
	if err != nil {
		return nil, err
	}
	c, _ := capacityOf(nodes, pods)
	return c, nil
}

// EstimateReplicas returns how many more replicas requesting per each
// (per.Pods is taken as 1) the cluster can place now, node by node, as
// Karmada's scheduler estimator does.
func (k *KubeCluster) EstimateReplicas(ctx context.Context, per api.Resources) (int32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nodes, pods, err := k.nodesAndPods()
	if err != nil {
		return 0, err
	}
	_, free := capacityOf(nodes, pods)
	return estimateReplicas(free, per), nil
}

func (k *KubeCluster) nodesAndPods() ([]*corev1.Node, []*corev1.Pod, error) {
	k.mu.Lock()
	ni, pi := k.nodes, k.pods
	k.mu.Unlock()
	if !k.synced.Load() || ni == nil || pi == nil {
		return nil, nil, fmt.Errorf("kube cluster not synced yet: %w", ErrUnavailable)
	}
	objs := pi.GetStore().List()
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	return nodesOf(ni.GetStore().List()), pods, nil
}

func nodesOf(objs []any) []*corev1.Node {
	nodes := make([]*corev1.Node, 0, len(objs))
	for _, o := range objs {
		if n, ok := o.(*corev1.Node); ok {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// capacityOf sums the capacity of the nodes that take new pods, and
// returns what is free on each of them.
func capacityOf(nodes []*corev1.Node, pods []*corev1.Pod) (*shoalpb.Capacity, []api.Resources) {
	c := &shoalpb.Capacity{Allocatable: &shoalpb.Resources{}, Available: &shoalpb.Resources{}, MaxNode: &shoalpb.Resources{}}
	used := map[string]api.Resources{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		r, u := podRequests(p), used[p.Spec.NodeName]
		u.CPUMilli, u.MemoryBytes, u.Pods = u.CPUMilli+r.CPUMilli, u.MemoryBytes+r.MemoryBytes, u.Pods+r.Pods
		used[p.Spec.NodeName] = u
	}
	var free []api.Resources
	for _, n := range nodes {
		if !nodeReady(n) || !nodeSchedulable(n) {
			continue
		}
		a := allocatable(n)
		u := used[n.Name]
		f := api.Resources{CPUMilli: max(a.CPUMilli-u.CPUMilli, 0), MemoryBytes: max(a.MemoryBytes-u.MemoryBytes, 0), Pods: max(a.Pods-u.Pods, 0)}
		free = append(free, f)
		c.Nodes++
		c.Allocatable.CpuMilli += a.CPUMilli
		c.Allocatable.MemoryBytes += a.MemoryBytes
		c.Allocatable.Pods += a.Pods
		c.Available.CpuMilli += f.CPUMilli
		c.Available.MemoryBytes += f.MemoryBytes
		c.Available.Pods += f.Pods
		c.MaxNode.CpuMilli = max(c.MaxNode.CpuMilli, a.CPUMilli)
		c.MaxNode.MemoryBytes = max(c.MaxNode.MemoryBytes, a.MemoryBytes)
		c.MaxNode.Pods = max(c.MaxNode.Pods, a.Pods)
	}
	return c, free
}

// estimateReplicas is how many replicas requesting per fit on the nodes
// with free resources free, each replica on one node.
func estimateReplicas(free []api.Resources, per api.Resources) int32 {
	per.Pods = 1
	var total int64
	for _, f := range free {
		n := f.Pods / per.Pods
		if per.CPUMilli > 0 {
			n = min(n, f.CPUMilli/per.CPUMilli)
		}
		if per.MemoryBytes > 0 {
			n = min(n, f.MemoryBytes/per.MemoryBytes)
		}
		total += n
	}
	return int32(min(total, math.MaxInt32))
}

func allocatable(n *corev1.Node) api.Resources {
	a := n.Status.Allocatable
	return api.Resources{CPUMilli: a.Cpu().MilliValue(), MemoryBytes: a.Memory().Value(), Pods: a.Pods().Value()}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeSchedulable reports whether n takes new pods that tolerate nothing.
func nodeSchedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	return true
}

// podRequests is what a pod holds on its node, as the scheduler counts it:
// the pod-level requests if set, else the larger of its containers' sum
// (with sidecar init containers) and its largest init container (with the
// sidecars started before it), plus the pod overhead; and one pod.
func podRequests(p *corev1.Pod) api.Resources {
	req := func(rl corev1.ResourceList) api.Resources {
		return api.Resources{CPUMilli: rl.Cpu().MilliValue(), MemoryBytes: rl.Memory().Value()}
	}
	add := func(a, b api.Resources) api.Resources {
		return api.Resources{CPUMilli: a.CPUMilli + b.CPUMilli, MemoryBytes: a.MemoryBytes + b.MemoryBytes}
	}
	maxOf := func(a, b api.Resources) api.Resources {
		return api.Resources{CPUMilli: max(a.CPUMilli, b.CPUMilli), MemoryBytes: max(a.MemoryBytes, b.MemoryBytes)}
	}
	var total api.Resources
	if p.Spec.Resources != nil && len(p.Spec.Resources.Requests) > 0 {
		total = req(p.Spec.Resources.Requests)
	} else {
		var sum, sidecars, init api.Resources
		for _, c := range p.Spec.Containers {
			sum = add(sum, req(c.Resources.Requests))
		}
		for _, c := range p.Spec.InitContainers {
			r := req(c.Resources.Requests)
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				sum, sidecars = add(sum, r), add(sidecars, r)
				init = maxOf(init, sidecars)
				continue
			}
			init = maxOf(init, add(r, sidecars))
		}
		total = maxOf(sum, init)
	}
	total = add(total, req(p.Spec.Overhead))
	total.Pods = 1
	return total
}

// nodeChanged reports whether anything Capacity or Health reads differs.
func nodeChanged(a, b *corev1.Node) bool {
	return nodeReady(a) != nodeReady(b) || nodeSchedulable(a) != nodeSchedulable(b) ||
		!equality.Semantic.DeepEqual(a.Status.Allocatable, b.Status.Allocatable)
}

// slimNode keeps what Health and Capacity read of a node.
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion}}
	out.Spec.Unschedulable, out.Spec.Taints = n.Spec.Unschedulable, n.Spec.Taints
	out.Status.Allocatable = n.Status.Allocatable
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out, nil
}

// slimPod keeps what Capacity reads of a pod.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion}}
	out.Spec.NodeName, out.Spec.Overhead, out.Spec.Resources = p.Spec.NodeName, p.Spec.Overhead, p.Spec.Resources
	out.Status.Phase = p.Status.Phase
	for _, c := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Resources: corev1.ResourceRequirements{Requests: c.Resources.Requests}})
	}
	for _, c := range p.Spec.InitContainers {
		out.Spec.InitContainers = append(out.Spec.InitContainers, corev1.Container{Name: c.Name, RestartPolicy: c.RestartPolicy, Resources: corev1.ResourceRequirements{Requests: c.Resources.Requests}})
	}
	return out, nil
}
