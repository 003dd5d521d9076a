package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// probeNamespace holds a Deployment of the bench's own, outside Shoal, that
// proves a member's controllers work again after its API server restarted.
const probeNamespace = "bench-probe"

// waitControllersLive scales a probe Deployment of the member's own to one
// replica and back to none, directly through client-go, and waits each time
// until its controllers have observed the change and the pod is Ready (or
// gone). After the API server was away, the member's controller manager,
// scheduler and kwok reconnect their watches with backoff; until they have,
// the member would take tens of seconds to act on a change — the next
// trial, in which it survives, would measure that instead of the failover.
func waitControllersLive(ctx context.Context, c *kubetest.Cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	deps := c.Client.AppsV1().Deployments(probeNamespace)
	for _, want := range []int32{1, 0} {
		d, err := deps.Get(ctx, "probe", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			d, err = deps.Create(ctx, probeDeployment(want), metav1.CreateOptions{})
		} else if err == nil {
			d.Spec.Replicas = &want
			d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("%s: probe deployment: %w", c.Name, err)
		}
		gen := d.Generation
		deadline := time.Now().Add(120 * time.Second)
		for {
			d, err = deps.Get(ctx, "probe", metav1.GetOptions{})
			if err == nil && d.Status.ObservedGeneration >= gen && d.Status.ReadyReplicas == want && d.Status.Replicas == want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: controllers did not act on a probe Deployment scaled to %d within 120 s (err %v)", c.Name, want, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func probeDeployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "bench-probe"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: probeNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
			},
		},
	}
}
