// Package examples embeds the example applications in examples/*.yaml so
// that `shoal demo` runs them with nothing else on disk. The YAML files are
// ordinary Kubernetes objects and Karmada PropagationPolicies: apply them to
// any Shoal region with `shoal apply -f examples/`.
package examples

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// Files holds web.yaml and log-agent.yaml.
//
//go:embed *.yaml
var Files embed.FS

// Documents returns every example as one multi-document YAML stream, in
// file-name order, as `shoal apply -f examples/` would send them.
func Documents() ([]byte, error) {
	names, err := fs.Glob(Files, "*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		b, err := Files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		parts = append(parts, string(b))
	}
	return []byte(strings.Join(parts, "\n---\n")), nil
}
