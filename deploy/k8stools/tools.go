//go:build tools

// Package k8stools pins the Kubernetes control-plane commands and etcd that
// the end-to-end tests run. It is never compiled: the Makefile builds each
// command from this module (make k8s-tools), and the blank imports keep go mod
// tidy from dropping their requirements.
package k8stools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
