package deploy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// workloadHealth is what interpret reads from a live object.
type workloadHealth struct {
	Replicas int32  // desired: spec.replicas (spec.parallelism for a Job, desiredNumberScheduled for a DaemonSet)
	Ready    int32  // ready replicas (for a complete Job, all of them)
	Health   string // HealthHealthy, HealthProgressing or HealthUnhealthy
	Reason   string // why, when not Healthy (or what a finished Job did)
}

// interpret reads the health of a live object by its kind: Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job, Service, PersistentVolumeClaim;
// any other kind from its status.conditions (Ready, else Available), and
// Healthy when it has neither: it exists, which is all it promises.
func interpret(u *unstructured.Unstructured) workloadHealth {
	group, _, _ := strings.Cut(u.GetAPIVersion(), "/")
	if !strings.Contains(u.GetAPIVersion(), "/") {
		group = ""
	}
	switch group + "/" + u.GetKind() {
	case "apps/Deployment":
		return deploymentHealth(u)
	case "apps/StatefulSet":
		return statefulSetHealth(u)
	case "apps/DaemonSet":
		return daemonSetHealth(u)
	case "apps/ReplicaSet":
		return replicaSetHealth(u)
	case "batch/Job":
		return jobHealth(u)
	case "/Service":
		return serviceHealth(u)
	case "/PersistentVolumeClaim":
		return pvcHealth(u)
	}
	return conditionsHealth(u)
}

func deploymentHealth(u *unstructured.Unstructured) workloadHealth {
	want := specInt(u, 1, "spec", "replicas")
	h := workloadHealth{Replicas: want, Ready: specInt(u, 0, "status", "readyReplicas")}
	updated := specInt(u, 0, "status", "updatedReplicas")
	available := specInt(u, 0, "status", "availableReplicas")
	total := specInt(u, 0, "status", "replicas")
	if c, ok := conditionOf(u, "ReplicaFailure"); ok && c.status == "True" {
		return h.unhealthy("ReplicaFailure: %s", c.String())
	}
	if c, ok := conditionOf(u, "Progressing"); ok && c.reason == "ProgressDeadlineExceeded" {
		return h.unhealthy("progress deadline exceeded: %s", c.String())
	}
	switch {
	case !observed(u):
		return h.progressing("waiting for the controller to observe generation %d", u.GetGeneration())
	case updated < want:
		return h.progressing("%d/%d replicas updated", updated, want)
	case total > updated:
		return h.progressing("%d old replicas pending termination", total-updated)
	case available < want:
		return h.progressing("%d/%d replicas available", available, want)
	}
	return h.healthy()
}

func statefulSetHealth(u *unstructured.Unstructured) workloadHealth {
	want := specInt(u, 1, "spec", "replicas")
	h := workloadHealth{Replicas: want, Ready: specInt(u, 0, "status", "readyReplicas")}
	updated := specInt(u, 0, "status", "updatedReplicas")
	available := specInt(u, h.Ready, "status", "availableReplicas")
	rolling := str(u, "spec", "updateStrategy", "type") != "OnDelete" &&
		specInt(u, 0, "spec", "updateStrategy", "rollingUpdate", "partition") == 0
	current, update := str(u, "status", "currentRevision"), str(u, "status", "updateRevision")
	switch {
	case !observed(u):
		return h.progressing("waiting for the controller to observe generation %d", u.GetGeneration())
	case rolling && update != "" && current != update:
		return h.progressing("%d/%d replicas updated", updated, want)
	case h.Ready < want:
		return h.progressing("%d/%d replicas ready", h.Ready, want)
	case available < want:
		return h.progressing("%d/%d replicas available", available, want)
	}
	return h.healthy()
}

func daemonSetHealth(u *unstructured.Unstructured) workloadHealth {
	desired := specInt(u, 0, "status", "desiredNumberScheduled")
	h := workloadHealth{Replicas: desired, Ready: specInt(u, 0, "status", "numberReady")}
	updated := specInt(u, 0, "status", "updatedNumberScheduled")
	available := specInt(u, 0, "status", "numberAvailable")
	switch {
	case !observed(u):
		return h.progressing("waiting for the controller to observe generation %d", u.GetGeneration())
	case str(u, "spec", "updateStrategy", "type") != "OnDelete" && updated < desired:
		return h.progressing("%d/%d pods updated", updated, desired)
	case available < desired:
		return h.progressing("%d/%d pods available", available, desired)
	}
	return h.healthy()
}

func replicaSetHealth(u *unstructured.Unstructured) workloadHealth {
	want := specInt(u, 1, "spec", "replicas")
	h := workloadHealth{Replicas: want, Ready: specInt(u, 0, "status", "readyReplicas")}
	available := specInt(u, 0, "status", "availableReplicas")
	if c, ok := conditionOf(u, "ReplicaFailure"); ok && c.status == "True" {
		return h.unhealthy("ReplicaFailure: %s", c.String())
	}
	switch {
	case !observed(u):
		return h.progressing("waiting for the controller to observe generation %d", u.GetGeneration())
	case h.Ready < want:
		return h.progressing("%d/%d replicas ready", h.Ready, want)
	case available < want:
		return h.progressing("%d/%d replicas available", available, want)
	}
	return h.healthy()
}

func jobHealth(u *unstructured.Unstructured) workloadHealth {
	want := specInt(u, 1, "spec", "parallelism")
	h := workloadHealth{Replicas: want, Ready: specInt(u, 0, "status", "ready")}
	active := specInt(u, 0, "status", "active")
	succeeded := specInt(u, 0, "status", "succeeded")
	failed := specInt(u, 0, "status", "failed")
	for _, t := range []string{"Failed", "FailureTarget"} {
		if c, ok := conditionOf(u, t); ok && c.status == "True" {
			return h.unhealthy("job failed: %s", c.String())
		}
	}
	if c, ok := conditionOf(u, "Complete"); ok && c.status == "True" {
		h.Ready = want
		h = h.healthy()
		h.Reason = fmt.Sprintf("complete: %d succeeded", succeeded)
		return h
	}
	if c, ok := conditionOf(u, "Suspended"); ok && c.status == "True" {
		return h.progressing("suspended")
	}
	progress := fmt.Sprintf("%d active, %d succeeded, %d failed", active, succeeded, failed)
	if h.Ready < want {
		return h.progressing("%d/%d pods ready; %s", h.Ready, want, progress)
	}
	h = h.healthy()
	h.Reason = "running: " + progress
	return h
}

func serviceHealth(u *unstructured.Unstructured) workloadHealth {
	h := workloadHealth{}
	if str(u, "spec", "type") != "LoadBalancer" {
		return h.healthy()
	}
	ingress, _, _ := unstructured.NestedSlice(u.Object, "status", "loadBalancer", "ingress")
	if len(ingress) == 0 {
		return h.progressing("waiting for a load balancer address")
	}
	return h.healthy()
}

func pvcHealth(u *unstructured.Unstructured) workloadHealth {
	h := workloadHealth{}
	switch phase := str(u, "status", "phase"); phase {
	case "Bound":
		return h.healthy()
	case "Lost":
		return h.unhealthy("claim Lost: its volume is gone")
	case "":
		return h.progressing("claim Pending: waiting for a volume")
	default:
		return h.progressing("claim %s: waiting for a volume", phase)
	}
}

func conditionsHealth(u *unstructured.Unstructured) workloadHealth {
	h := workloadHealth{}
	if og, ok, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); ok && og < u.GetGeneration() {
		return h.progressing("waiting for the controller to observe generation %d", u.GetGeneration())
	}
	for _, t := range []string{"Ready", "Available"} {
		c, ok := conditionOf(u, t)
		if !ok {
			continue
		}
		switch c.status {
		case "True":
			return h.healthy()
		case "False":
			return h.unhealthy(t+"=False: %s", c.String())
		default:
			return h.progressing("%s=%s: %s", t, c.status, c.String())
		}
	}
	return h.healthy()
}

func (h workloadHealth) healthy() workloadHealth {
	h.Health, h.Reason = HealthHealthy, ""
	return h
}

func (h workloadHealth) progressing(format string, args ...any) workloadHealth {
	h.Health, h.Reason = HealthProgressing, fmt.Sprintf(format, args...)
	return h
}

func (h workloadHealth) unhealthy(format string, args ...any) workloadHealth {
	h.Health, h.Reason = HealthUnhealthy, fmt.Sprintf(format, args...)
	return h
}

// condition is one entry of status.conditions.
type condition struct{ status, reason, message string }

// String gives "reason: message", or whichever of them is set.
func (c condition) String() string {
	switch {
	case c.reason != "" && c.message != "":
		return c.reason + ": " + c.message
	case c.reason != "":
		return c.reason
	}
	return c.message
}

// conditionOf returns u's status condition of type t.
func conditionOf(u *unstructured.Unstructured, t string) (condition, bool) {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok || m["type"] != t {
			continue
		}
		s := func(f string) string { v, _ := m[f].(string); return v }
		return condition{status: s("status"), reason: s("reason"), message: s("message")}, true
	}
	return condition{}, false
}

// observed reports whether the controller has seen u's current generation.
func observed(u *unstructured.Unstructured) bool {
	og, ok, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return !ok || og >= u.GetGeneration()
}

// specInt reads an integer field, def when absent.
func specInt(u *unstructured.Unstructured, def int32, fields ...string) int32 {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, fields...)
	if !ok {
		return def
	}
	switch n := v.(type) {
	case int64:
		return int32(n)
	case int32:
		return n
	case int:
		return int32(n)
	case float64:
		return int32(n)
	}
	return def
}

func str(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}
