package deploy

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// obj builds an unstructured object from JSON, as an informer holds it.
func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatalf("bad test object %s: %v", s, err)
	}
	// encoding/json gives float64; the API machinery gives int64.
	u.Object = intify(u.Object).(map[string]any)
	return u
}

func intify(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = intify(e)
		}
	case []any:
		for i, e := range x {
			x[i] = intify(e)
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

func TestInterpret(t *testing.T) {
	for _, tc := range []struct {
		name           string
		obj            string
		health         string
		replicas       int32
		ready          int32
		reasonContains string
	}{
		{"deployment ready", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},
			"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3}}`,
			HealthHealthy, 3, 3, ""},
		{"deployment not observed", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":3},
			"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3}}`,
			HealthProgressing, 3, 3, "observe generation 3"},
		{"deployment rolling", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},
			"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":4,"updatedReplicas":1,"readyReplicas":3,"availableReplicas":3}}`,
			HealthProgressing, 3, 3, "1/3 replicas updated"},
		{"deployment old replicas", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},
			"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":4,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3}}`,
			HealthProgressing, 3, 3, "1 old replicas"},
		{"deployment unavailable", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},
			"spec":{"replicas":2},"status":{"observedGeneration":1,"replicas":2,"updatedReplicas":2,"readyReplicas":1,"availableReplicas":1}}`,
			HealthProgressing, 2, 1, "1/2 replicas available"},
		{"deployment deadline", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":2},
			"status":{"observedGeneration":1,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet web-1 has timed out progressing."}]}}`,
			HealthUnhealthy, 2, 0, "progress deadline exceeded: ProgressDeadlineExceeded: ReplicaSet web-1 has timed out"},
		{"deployment quota", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":2},
			"status":{"conditions":[{"type":"ReplicaFailure","status":"True","reason":"FailedCreate","message":"exceeded quota"}]}}`,
			HealthUnhealthy, 2, 0, "FailedCreate: exceeded quota"},
		{"deployment default replicas", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{}}`,
			HealthProgressing, 1, 0, "0/1 replicas updated"},
		{"statefulset ready", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":1},"spec":{"replicas":2},
			"status":{"observedGeneration":1,"readyReplicas":2,"availableReplicas":2,"updatedReplicas":2,"currentRevision":"r1","updateRevision":"r1"}}`,
			HealthHealthy, 2, 2, ""},
		{"statefulset rolling", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":2},
			"status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":1,"currentRevision":"r1","updateRevision":"r2"}}`,
			HealthProgressing, 2, 2, "1/2 replicas updated"},
		{"statefulset partitioned", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":2},
			"spec":{"replicas":2,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}},
			"status":{"observedGeneration":2,"readyReplicas":2,"availableReplicas":2,"updatedReplicas":1,"currentRevision":"r1","updateRevision":"r2"}}`,
			HealthHealthy, 2, 2, ""},
		{"statefulset not ready", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":1},"spec":{"replicas":3},
			"status":{"observedGeneration":1,"readyReplicas":1}}`,
			HealthProgressing, 3, 1, "1/3 replicas ready"},
		{"daemonset ready", `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
			"status":{"observedGeneration":1,"desiredNumberScheduled":4,"numberReady":4,"updatedNumberScheduled":4,"numberAvailable":4}}`,
			HealthHealthy, 4, 4, ""},
		{"daemonset updating", `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
			"status":{"observedGeneration":1,"desiredNumberScheduled":4,"numberReady":4,"updatedNumberScheduled":2,"numberAvailable":4}}`,
			HealthProgressing, 4, 4, "2/4 pods updated"},
		{"daemonset unavailable", `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
			"status":{"observedGeneration":1,"desiredNumberScheduled":4,"numberReady":3,"updatedNumberScheduled":4,"numberAvailable":3}}`,
			HealthProgressing, 4, 3, "3/4 pods available"},
		{"replicaset ready", `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"generation":1},"spec":{"replicas":2},
			"status":{"observedGeneration":1,"readyReplicas":2,"availableReplicas":2}}`,
			HealthHealthy, 2, 2, ""},
		{"replicaset failure", `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"generation":1},"spec":{"replicas":2},
			"status":{"conditions":[{"type":"ReplicaFailure","status":"True","reason":"FailedCreate"}]}}`,
			HealthUnhealthy, 2, 0, "FailedCreate"},
		{"job running", `{"apiVersion":"batch/v1","kind":"Job","spec":{"parallelism":2},"status":{"active":2,"ready":2,"succeeded":1}}`,
			HealthHealthy, 2, 2, "running: 2 active, 1 succeeded"},
		{"job starting", `{"apiVersion":"batch/v1","kind":"Job","spec":{"parallelism":2},"status":{"active":2,"ready":0}}`,
			HealthProgressing, 2, 0, "0/2 pods ready"},
		{"job complete", `{"apiVersion":"batch/v1","kind":"Job","spec":{"parallelism":2},"status":{"succeeded":4,
			"conditions":[{"type":"Complete","status":"True"}]}}`,
			HealthHealthy, 2, 2, "complete: 4 succeeded"},
		{"job failed", `{"apiVersion":"batch/v1","kind":"Job","spec":{"parallelism":1},"status":{"failed":7,
			"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}`,
			HealthUnhealthy, 1, 0, "job failed: BackoffLimitExceeded"},
		{"job suspended", `{"apiVersion":"batch/v1","kind":"Job","spec":{"parallelism":1},"status":{
			"conditions":[{"type":"Suspended","status":"True"}]}}`,
			HealthProgressing, 1, 0, "suspended"},
		{"service cluster ip", `{"apiVersion":"v1","kind":"Service","spec":{"type":"ClusterIP"}}`, HealthHealthy, 0, 0, ""},
		{"service lb pending", `{"apiVersion":"v1","kind":"Service","spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{}}}`,
			HealthProgressing, 0, 0, "load balancer address"},
		{"service lb assigned", `{"apiVersion":"v1","kind":"Service","spec":{"type":"LoadBalancer"},
			"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"}]}}}`, HealthHealthy, 0, 0, ""},
		{"pvc bound", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Bound"}}`, HealthHealthy, 0, 0, ""},
		{"pvc pending", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Pending"}}`, HealthProgressing, 0, 0, "claim Pending"},
		{"pvc lost", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Lost"}}`, HealthUnhealthy, 0, 0, "claim Lost"},
		{"configmap", `{"apiVersion":"v1","kind":"ConfigMap","data":{"k":"v"}}`, HealthHealthy, 0, 0, ""},
		{"custom ready", `{"apiVersion":"example.com/v1","kind":"Widget","status":{"conditions":[{"type":"Ready","status":"True"}]}}`,
			HealthHealthy, 0, 0, ""},
		{"custom not ready", `{"apiVersion":"example.com/v1","kind":"Widget","status":{"conditions":[
			{"type":"Ready","status":"False","reason":"NoBackend","message":"no backend answers"}]}}`,
			HealthUnhealthy, 0, 0, "Ready=False: NoBackend: no backend answers"},
		{"custom available unknown", `{"apiVersion":"example.com/v1","kind":"Widget","status":{"conditions":[
			{"type":"Available","status":"Unknown","reason":"Probing"}]}}`,
			HealthProgressing, 0, 0, "Available=Unknown: Probing"},
		{"custom stale", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"generation":5},"status":{"observedGeneration":4,
			"conditions":[{"type":"Ready","status":"True"}]}}`,
			HealthProgressing, 0, 0, "observe generation 5"},
		{"custom without status", `{"apiVersion":"example.com/v1","kind":"Widget","spec":{}}`, HealthHealthy, 0, 0, ""},
		{"core kind named like apps", `{"apiVersion":"v1","kind":"Deployment"}`, HealthHealthy, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := interpret(obj(t, tc.obj))
			if h.Health != tc.health || h.Replicas != tc.replicas || h.Ready != tc.ready || !strings.Contains(h.Reason, tc.reasonContains) {
				t.Fatalf("interpret = %+v, want health %s, replicas %d, ready %d, reason containing %q",
					h, tc.health, tc.replicas, tc.ready, tc.reasonContains)
			}
			if tc.health == HealthHealthy && tc.reasonContains == "" && h.Reason != "" {
				t.Fatalf("healthy with reason %q", h.Reason)
			}
		})
	}
}
