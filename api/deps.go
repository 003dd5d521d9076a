package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Dependencies of a workload (a policy's propagateDeps): the ConfigMaps,
// Secrets, PersistentVolumeClaims and ServiceAccounts its pod template
// names, as Karmada's dependencies distributor finds them — volumes
// (configMap, secret, persistentVolumeClaim, the configMaps and secrets of
// projected volumes), every container's (init and ephemeral too) env
// valueFrom and envFrom, imagePullSecrets, and serviceAccountName unless
// it is "default" — for the kinds whose pod template it reads: Pod,
// Deployment, StatefulSet, ReplicaSet, DaemonSet, Job and CronJob. Other
// kinds have none.

type depRef struct {
	Name string `json:"name"`
}

type depContainer struct {
	Env []struct {
		ValueFrom *struct {
			ConfigMapKeyRef *depRef `json:"configMapKeyRef"`
			SecretKeyRef    *depRef `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	EnvFrom []struct {
		ConfigMapRef *depRef `json:"configMapRef"`
		SecretRef    *depRef `json:"secretRef"`
	} `json:"envFrom"`
}

type depProjection struct {
	ConfigMap *depRef `json:"configMap"`
	Secret    *depRef `json:"secret"`
}

type depPodSpec struct {
	ServiceAccountName  string         `json:"serviceAccountName"`
	ImagePullSecrets    []depRef       `json:"imagePullSecrets"`
	Containers          []depContainer `json:"containers"`
	InitContainers      []depContainer `json:"initContainers"`
	EphemeralContainers []depContainer `json:"ephemeralContainers"`
	Volumes             []struct {
		ConfigMap *depRef `json:"configMap"`
		Secret    *struct {
			SecretName string `json:"secretName"`
		} `json:"secret"`
		PersistentVolumeClaim *struct {
			ClaimName string `json:"claimName"`
		} `json:"persistentVolumeClaim"`
		Projected *struct {
			Sources []depProjection `json:"sources"`
		} `json:"projected"`
	} `json:"volumes"`
}

type depTemplate struct {
	Spec depPodSpec `json:"spec"`
}

type depManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		depPodSpec
		Template    depTemplate `json:"template"`
		JobTemplate struct {
			Spec struct {
				Template depTemplate `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// Dependency kinds.
var (
	kindConfigMap      = ObjectKey{APIVersion: "v1", Kind: "ConfigMap"}
	kindSecret         = ObjectKey{APIVersion: "v1", Kind: "Secret"}
	kindPVC            = ObjectKey{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
	kindServiceAccount = ObjectKey{APIVersion: "v1", Kind: "ServiceAccount"}
)

// Dependencies returns the objects a workload's pod template names, in
// its namespace, sorted and without duplicates; none for a kind without a
// pod template.
func Dependencies(manifest []byte) ([]ObjectKey, error) {
	var m depManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	var spec depPodSpec
	switch {
	case m.APIVersion == "v1" && m.Kind == "Pod":
		spec = m.Spec.depPodSpec
	case m.APIVersion == "apps/v1" && slices.Contains([]string{"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"}, m.Kind),
		m.APIVersion == "batch/v1" && m.Kind == "Job":
		spec = m.Spec.Template.Spec
	case m.APIVersion == "batch/v1" && m.Kind == "CronJob":
		spec = m.Spec.JobTemplate.Spec.Template.Spec
	default:
		return nil, nil
	}
	ns := m.Metadata.Namespace
	seen := map[ObjectKey]bool{}
	add := func(kind ObjectKey, name string) {
		if name == "" {
			return
		}
		k := kind
		k.Namespace, k.Name = ns, name
		seen[k] = true
	}
	if spec.ServiceAccountName != "default" {
		add(kindServiceAccount, spec.ServiceAccountName)
	}
	for _, s := range spec.ImagePullSecrets {
		add(kindSecret, s.Name)
	}
	for _, cs := range [][]depContainer{spec.Containers, spec.InitContainers, spec.EphemeralContainers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if vf := e.ValueFrom; vf != nil {
					if vf.ConfigMapKeyRef != nil {
						add(kindConfigMap, vf.ConfigMapKeyRef.Name)
					}
					if vf.SecretKeyRef != nil {
						add(kindSecret, vf.SecretKeyRef.Name)
					}
				}
			}
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					add(kindConfigMap, e.ConfigMapRef.Name)
				}
				if e.SecretRef != nil {
					add(kindSecret, e.SecretRef.Name)
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			add(kindConfigMap, v.ConfigMap.Name)
		}
		if v.Secret != nil {
			add(kindSecret, v.Secret.SecretName)
		}
		if v.PersistentVolumeClaim != nil {
			add(kindPVC, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					add(kindConfigMap, s.ConfigMap.Name)
				}
				if s.Secret != nil {
					add(kindSecret, s.Secret.Name)
				}
			}
		}
	}
	out := make([]ObjectKey, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b ObjectKey) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}
