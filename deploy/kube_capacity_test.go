package deploy

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

func rl(cpu, mem string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func testNode(name string, ready bool, cpu, mem, pods string, mod ...func(*corev1.Node)) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	alloc := rl(cpu, mem)
	alloc[corev1.ResourcePods] = resource.MustParse(pods)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Allocatable: alloc,
		Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
	}}
	for _, m := range mod {
		m(n)
	}
	return n
}

func testPod(node string, phase corev1.PodPhase, requests ...corev1.ResourceList) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	for _, r := range requests {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Resources: corev1.ResourceRequirements{Requests: r}})
	}
	return p
}

func TestPodRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want api.Resources
	}{
		{"containers sum", testPod("n", corev1.PodRunning, rl("100m", "64Mi"), rl("200m", "")),
			api.Resources{CPUMilli: 300, MemoryBytes: 64 << 20, Pods: 1}},
		{"nothing requested", testPod("n", corev1.PodRunning), api.Resources{Pods: 1}},
		{"larger init container", func() *corev1.Pod {
			p := testPod("n", corev1.PodPending, rl("100m", "64Mi"))
			p.Spec.InitContainers = []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: rl("1", "")}}}
			return p
		}(), api.Resources{CPUMilli: 1000, MemoryBytes: 64 << 20, Pods: 1}},
		{"sidecar adds and precedes init", func() *corev1.Pod {
			p := testPod("n", corev1.PodRunning, rl("100m", ""))
			p.Spec.InitContainers = []corev1.Container{
				{RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: rl("50m", "")}},
				{Resources: corev1.ResourceRequirements{Requests: rl("200m", "")}},
			}
			return p
		}(), api.Resources{CPUMilli: 250, Pods: 1}},
		{"overhead", func() *corev1.Pod {
			p := testPod("n", corev1.PodRunning, rl("100m", ""))
			p.Spec.Overhead = rl("10m", "1Mi")
			return p
		}(), api.Resources{CPUMilli: 110, MemoryBytes: 1 << 20, Pods: 1}},
		{"pod-level requests", func() *corev1.Pod {
			p := testPod("n", corev1.PodRunning, rl("100m", ""))
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: rl("2", "1Gi")}
			return p
		}(), api.Resources{CPUMilli: 2000, MemoryBytes: 1 << 30, Pods: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podRequests(tc.pod); got != tc.want {
				t.Fatalf("podRequests = %+v, want %+v", got, tc.want)
			}
			slim, _ := slimPod(tc.pod)
			if got := podRequests(slim.(*corev1.Pod)); got != tc.want {
				t.Fatalf("podRequests of the slimmed pod = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCapacityOf(t *testing.T) {
	nodes := []*corev1.Node{
		testNode("a", true, "4", "8Gi", "110"),
		testNode("b", true, "2", "4Gi", "10"),
		testNode("down", false, "64", "64Gi", "110"),
		testNode("cordoned", true, "64", "64Gi", "110", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
		testNode("tainted", true, "64", "64Gi", "110", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}}
		}),
		testNode("soft-tainted", true, "1", "1Gi", "5", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}}
		}),
	}
	pods := []*corev1.Pod{
		testPod("a", corev1.PodRunning, rl("1", "1Gi")),
		testPod("a", corev1.PodPending, rl("500m", "")),
		testPod("a", corev1.PodSucceeded, rl("3", "6Gi")), // finished: holds nothing
		testPod("b", corev1.PodRunning, rl("3", "")),      // overcommitted: free floors at 0
		testPod("", corev1.PodPending, rl("8", "")),       // unscheduled
		testPod("down", corev1.PodRunning, rl("1", "")),   // on a node that is not counted
	}
	c, free := capacityOf(nodes, pods)
	want := &shoalpb.Capacity{
		Nodes:       3,
		Allocatable: &shoalpb.Resources{CpuMilli: 7000, MemoryBytes: 13 << 30, Pods: 125},
		Available:   &shoalpb.Resources{CpuMilli: 2500 + 0 + 1000, MemoryBytes: 7<<30 + 4<<30 + 1<<30, Pods: 108 + 9 + 5},
		MaxNode:     &shoalpb.Resources{CpuMilli: 4000, MemoryBytes: 8 << 30, Pods: 110},
	}
	if c.String() != want.String() {
		t.Fatalf("capacity\n got %v\nwant %v", c, want)
	}
	// Per node: a has 2.5 CPU, b none, soft-tainted 1 CPU.
	for _, tc := range []struct {
		per  api.Resources
		want int32
	}{
		{api.Resources{CPUMilli: 500}, 5 + 0 + 2},
		{api.Resources{CPUMilli: 1000, MemoryBytes: 1 << 30}, 2 + 0 + 1},
		{api.Resources{MemoryBytes: 4 << 30}, 1 + 1 + 0},
		{api.Resources{}, 108 + 9 + 5}, // only pods count
		{api.Resources{CPUMilli: 5000}, 0},
	} {
		if got := estimateReplicas(free, tc.per); got != tc.want {
			t.Errorf("estimateReplicas(%+v) = %d, want %d", tc.per, got, tc.want)
		}
	}
}

func TestClusterHealth(t *testing.T) {
	ready, down := testNode("a", true, "1", "1Gi", "10"), testNode("b", false, "1", "1Gi", "10")
	for _, tc := range []struct {
		name   string
		readyz error
		nodes  []*corev1.Node
		health shoalpb.Health
		reason string
	}{
		{"ready", nil, []*corev1.Node{ready, down}, shoalpb.Health_HEALTH_READY, "1/2 nodes Ready"},
		{"no ready nodes", nil, []*corev1.Node{down}, shoalpb.Health_HEALTH_NOT_READY, "no Ready nodes (0/1)"},
		{"no nodes", nil, nil, shoalpb.Health_HEALTH_NOT_READY, "no Ready nodes (0/0)"},
		{"unreachable", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), []*corev1.Node{ready},
			shoalpb.Health_HEALTH_NOT_READY, "API server unreachable: dial tcp"},
		{"not ready", apierrors.NewInternalError(errors.New("etcd failed")), []*corev1.Node{ready},
			shoalpb.Health_HEALTH_NOT_READY, "API server not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, reason := clusterHealth(tc.readyz, tc.nodes)
			if h != tc.health || !strings.HasPrefix(reason, tc.reason) {
				t.Fatalf("clusterHealth = %v %q, want %v %q…", h, reason, tc.health, tc.reason)
			}
		})
	}
}

func TestNodeChangedIgnoresHeartbeats(t *testing.T) {
	a := testNode("a", true, "1", "1Gi", "10")
	b := a.DeepCopy()
	b.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
	b.ResourceVersion = "42"
	if nodeChanged(a, b) {
		t.Fatal("a heartbeat counts as a change")
	}
	b.Spec.Unschedulable = true
	if !nodeChanged(a, b) {
		t.Fatal("cordoning is not a change")
	}
}

func TestUnavailable(t *testing.T) {
	if err := unavailable(apierrors.NewServiceUnavailable("down")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("503 not unavailable: %v", err)
	}
	if err := unavailable(apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("no"))); errors.Is(err, ErrUnavailable) {
		t.Fatalf("403 counted as unavailable: %v", err)
	}
}
