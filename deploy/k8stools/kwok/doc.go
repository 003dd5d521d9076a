//go:build tools

// Package kwok pins the kwok command, which fakes kubelets for the
// end-to-end tests. It has its own module because kwok v0.8.0 wants newer
// grpc and OpenTelemetry than k8s.io/kubernetes v1.36.3 pins: sharing one
// module would build kube-apiserver against versions upstream never tested.
package kwok
