package api

import (
	"encoding/json"
	"fmt"
	"strings"
)

// clusterScoped lists the built-in kinds that have no namespace, by group.
// Shoal has no discovery of the member clusters when a template is applied,
// so it knows these by name, as kubectl's fallback does.
var clusterScoped = map[string]map[string]bool{
	"":                             {"Namespace": true, "Node": true, "PersistentVolume": true, "ComponentStatus": true},
	"rbac.authorization.k8s.io":    {"ClusterRole": true, "ClusterRoleBinding": true},
	"apiextensions.k8s.io":         {"CustomResourceDefinition": true},
	"storage.k8s.io":               {"StorageClass": true, "CSIDriver": true, "CSINode": true, "VolumeAttachment": true},
	"scheduling.k8s.io":            {"PriorityClass": true},
	"admissionregistration.k8s.io": {"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true},
	"apiregistration.k8s.io":       {"APIService": true},
	"node.k8s.io":                  {"RuntimeClass": true},
	"networking.k8s.io":            {"IngressClass": true},
	"certificates.k8s.io":          {"CertificateSigningRequest": true},
	"flowcontrol.apiserver.k8s.io": {"FlowSchema": true, "PriorityLevelConfiguration": true},
	PolicyGroup:                    {KindClusterPropagationPolicy: true, KindClusterOverridePolicy: true},
}

// IsClusterScoped reports whether a kind is known to have no namespace.
// Custom resources are taken as namespaced unless they are
// cluster-scoped kinds of the groups above; give a custom cluster-scoped
// object no namespace and it stays without one only if its kind is known.
func IsClusterScoped(apiVersion, kind string) bool {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		g = ""
	}
	return clusterScoped[g][kind]
}

// setNamespace sets metadata.namespace of a JSON object.
func setNamespace(j []byte, ns string) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	meta["namespace"] = ns
	return json.Marshal(obj)
}
