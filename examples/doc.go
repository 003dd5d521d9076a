// Package examples embeds the example applications in examples/*.yaml so
// that `shoal demo` runs them with nothing else on disk. The YAML files are
// ordinary Kubernetes objects and Karmada PropagationPolicies: apply them to
// any Shoal region with `shoal apply -f examples/`.
package examples

import "embed"

// Files holds web.yaml and log-agent.yaml.
//
//go:embed *.yaml
var Files embed.FS
