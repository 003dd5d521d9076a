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

// RegionFiles holds the examples for a mesh of several regions
// (regions/global-web.yaml).
//
//go:embed regions/*.yaml
var RegionFiles embed.FS

// RegionDocuments returns the examples of regions/ as one multi-document
// YAML stream, as `shoal apply -f examples/regions/` would send them.
func RegionDocuments() ([]byte, error) { return documents(RegionFiles, "regions/*.yaml") }

// Documents returns every example as one multi-document YAML stream, in
// file-name order, as `shoal apply -f examples/` would send them.
func Documents() ([]byte, error) { return documents(Files, "*.yaml") }

func documents(files embed.FS, pattern string) ([]byte, error) {
	names, err := fs.Glob(files, pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		parts = append(parts, string(b))
	}
	return []byte(strings.Join(parts, "\n---\n")), nil
}
