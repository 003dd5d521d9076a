package kubetest

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeNames returns the names of the cluster's kwok Nodes.
func (c *Cluster) nodeNames() []string {
	names := make([]string, c.cp.opts.NodesPerCluster)
	for i := range names {
		names[i] = fmt.Sprintf("%s-node%d", c.Name, i+1)
	}
	return names
}

// createNodes creates the cluster's Nodes with the stated capacity. kwok
// manages every Node (--manage-all-nodes) and marks it Ready; its
// node-initialize stage keeps the capacity and addresses set here.
func (c *Cluster) createNodes(ctx context.Context) error {
	o := c.cp.opts
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(o.NodeCPU),
		corev1.ResourceMemory: resource.MustParse(o.NodeMemory),
		corev1.ResourcePods:   resource.MustParse(o.NodePods),
	}
	for i, name := range c.nodeNames() {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			},
			Status: corev1.NodeStatus{
				Capacity:    res.DeepCopy(),
				Allocatable: res.DeepCopy(),
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.255.%d.%d", c.index, i+1)},
					{Type: corev1.NodeHostName, Address: name},
				},
			},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: create node %s: %w", c.Name, name, err)
		}
	}
	return nil
}

// notReadyTaints are the taints a Node carries until it is seen Ready.
var notReadyTaints = []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable}

// waitNodes waits until every Node is Ready and without a not-ready taint.
// Admission taints a new Node not-ready; the node-lifecycle controller
// removes that a few seconds after kwok marks it Ready, and so does this,
// so that Start need not wait for the controller's next pass.
func (c *Cluster) waitNodes(ctx context.Context) error {
	return c.waitNodesUntainted(ctx, true)
}

// waitNodesUntainted waits until every Node is Ready and carries no
// not-ready or unreachable taint; with untaint it removes those taints
// itself from a Ready Node instead of waiting for the controller.
func (c *Cluster) waitNodesUntainted(ctx context.Context, untaint bool) error {
	return waitFor(ctx, nil, c.Name+": Nodes Ready and untainted", func(ctx context.Context) (bool, error) {
		for _, name := range c.nodeNames() {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !nodeReady(node) {
				return false, fmt.Errorf("node %s is not Ready yet", name)
			}
			kept := slices.DeleteFunc(slices.Clone(node.Spec.Taints), func(t corev1.Taint) bool {
				return slices.Contains(notReadyTaints, t.Key)
			})
			if len(kept) == len(node.Spec.Taints) {
				continue
			}
			if !untaint {
				return false, fmt.Errorf("node %s still carries a not-ready taint", name)
			}
			node.Spec.Taints = kept
			// A conflict with the controller is retried on the next poll.
			if _, err := c.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				return false, fmt.Errorf("untaint node %s: %w", name, err)
			}
		}
		return true, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitNodesReady waits until every Node is Ready and carries no not-ready
// or unreachable taint, leaving the taints to the node-lifecycle
// controller. After the API server was away, that controller may have
// tainted Nodes whose kwok heartbeats could not arrive, and pods cannot be
// scheduled on them until it sees them again: a test or benchmark that
// stops and starts API servers waits for this before it measures again.
func (c *Cluster) WaitNodesReady(ctx context.Context) error {
	return c.waitNodesUntainted(ctx, false)
}
