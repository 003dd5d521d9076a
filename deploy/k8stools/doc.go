//go:build tools

// Package k8stools pins the Kubernetes control-plane commands and etcd that
// the end-to-end tests run. It is never compiled: the Makefile builds each
// command from this module (make k8s-tools), and the blank imports keep go mod
// tidy from dropping their requirements.
package k8stools
