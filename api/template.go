package api

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Resources is an amount of schedulable resources.
type Resources struct {
	CPUMilli    int64 `json:"cpuMilli"`
	MemoryBytes int64 `json:"memoryBytes"`
	Pods        int64 `json:"pods"`
}

// Template is what Shoal reads from a resource template: its identity, its
// labels and, for workloads, how many replicas it wants and what each one
// requests.
type Template struct {
	Key    ObjectKey
	Labels map[string]string
	// HasReplicas is true for kinds whose replicas Shoal divides between
	// clusters (Deployment, StatefulSet, ReplicaSet, Job). Other kinds are
	// propagated whole to every selected cluster.
	HasReplicas bool
	// Replicas is spec.replicas (spec.parallelism for a Job), defaulted to 1.
	Replicas int32
	// PerReplica is what one replica requests: the sum of its containers'
	// requests (or the largest init container's, if larger); Pods is 1.
	PerReplica Resources
}

// ErrNotObject is returned for a manifest that is not a Kubernetes object.
var ErrNotObject = errors.New("not a Kubernetes object")

type templateMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Replicas    *int32 `json:"replicas"`
		Parallelism *int32 `json:"parallelism"`
		Template    struct {
			Spec struct {
				Containers     []container `json:"containers"`
				InitContainers []container `json:"initContainers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type container struct {
	Resources struct {
		Requests map[string]quantity `json:"requests"`
		Limits   map[string]quantity `json:"limits"`
	} `json:"resources"`
}

// ParseTemplate reads a template from its JSON manifest.
func ParseTemplate(manifest []byte) (*Template, error) {
	var m templateMeta
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if m.APIVersion == "" || m.Kind == "" {
		return nil, fmt.Errorf("%w: apiVersion and kind are required", ErrNotObject)
	}
	if m.Metadata.Name == "" {
		return nil, fmt.Errorf("%w: metadata.name is required", ErrNotObject)
	}
	t := &Template{
		Key:    ObjectKey{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name},
		Labels: m.Metadata.Labels,
	}
	var replicas *int32
	switch {
	case m.APIVersion == "apps/v1" && (m.Kind == "Deployment" || m.Kind == "StatefulSet" || m.Kind == "ReplicaSet"):
		t.HasReplicas, replicas = true, m.Spec.Replicas
	case m.APIVersion == "batch/v1" && m.Kind == "Job":
		t.HasReplicas, replicas = true, m.Spec.Parallelism
	}
	if !t.HasReplicas {
		return t, nil
	}
	t.Replicas = 1
	if replicas != nil {
		if *replicas < 0 {
			return nil, fmt.Errorf("%s: replicas must not be negative, got %d", t.Key.Display(), *replicas)
		}
		t.Replicas = *replicas
	}
	podSpec := m.Spec.Template.Spec
	sum, err := sumRequests(podSpec.Containers)
	if err != nil {
		return nil, fmt.Errorf("%s: containers: %w", t.Key.Display(), err)
	}
	for i, c := range podSpec.InitContainers {
		r, err := containerRequests(c)
		if err != nil {
			return nil, fmt.Errorf("%s: initContainers[%d]: %w", t.Key.Display(), i, err)
		}
		sum.CPUMilli = max(sum.CPUMilli, r.CPUMilli)
		sum.MemoryBytes = max(sum.MemoryBytes, r.MemoryBytes)
	}
	sum.Pods = 1
	t.PerReplica = sum
	return t, nil
}

func sumRequests(cs []container) (Resources, error) {
	var sum Resources
	for i, c := range cs {
		r, err := containerRequests(c)
		if err != nil {
			return Resources{}, fmt.Errorf("[%d]: %w", i, err)
		}
		sum.CPUMilli += r.CPUMilli
		sum.MemoryBytes += r.MemoryBytes
	}
	return sum, nil
}

// containerRequests reads a container's requests; as in Kubernetes, a limit
// without a request counts as the request.
func containerRequests(c container) (Resources, error) {
	var r Resources
	get := func(name string) (resource.Quantity, bool, error) {
		s, ok := c.Resources.Requests[name]
		if !ok {
			s, ok = c.Resources.Limits[name]
		}
		if !ok {
			return resource.Quantity{}, false, nil
		}
		q, err := resource.ParseQuantity(string(s))
		if err != nil {
			return q, false, fmt.Errorf("resources %s %q: %v", name, s, err)
		}
		return q, true, nil
	}
	if q, ok, err := get("cpu"); err != nil {
		return r, err
	} else if ok {
		r.CPUMilli = q.MilliValue()
	}
	if q, ok, err := get("memory"); err != nil {
		return r, err
	} else if ok {
		r.MemoryBytes = q.Value()
	}
	return r, nil
}

// quantity is a resource quantity as YAML writes it: "500m", "1Gi" or a bare
// number such as 2.
type quantity string

func (q *quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*q = quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("quantity must be a string or a number, got %s", b)
	}
	*q = quantity(n.String())
	return nil
}
