// Package kubetest starts real Kubernetes control planes on 127.0.0.1 for
// end-to-end tests. It is a test helper: only tests and the real-cluster
// scenarios of `shoal bench` import it.
//
// Start runs one etcd and, for each member cluster, a kube-apiserver that
// keeps its objects under its own etcd prefix (/<cluster name>), a
// kube-controller-manager, a kube-scheduler and kwok, which plays the
// kubelet of every Node so that pods become Running and Ready without
// containers. Start creates the Nodes with the stated capacity and returns
// once every API server answers /readyz and every Node is Ready and
// schedulable. Stop kills, by PID, every process Start started; a child also
// dies if the test process dies (Pdeathsig), so nothing outlives a run.
//
// The binaries come from the Go modules pinned in deploy/k8stools and are
// built by `make k8s-tools` into bin/k8s-<version>; `make test` passes that
// folder in SHOAL_K8S_BIN. Each process logs to its own file under
// Options.Dir, and every error names the log to read.
package kubetest
