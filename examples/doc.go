// Package examples embeds the example applications in examples/*.yaml so
// that `shoal demo` runs them with nothing else on disk. The YAML files are
// ordinary Kubernetes objects and Karmada PropagationPolicies: apply them to
// any Shoal region with `shoal apply -f examples/`.
package examples

import (
	"embed"
	"io/fs"
	"slices"
	"sort"
	"strings"
)

// Files holds web.yaml, log-agent.yaml and bursting.yaml.
//
//go:embed *.yaml
var Files embed.FS

// firstAct are the examples the first act of shoal demo applies at once;
// bursting.yaml has a step of its own (Bursting).
var firstAct = []string{"log-agent.yaml", "web.yaml"}

// RegionFiles holds the examples for a mesh of several regions
// (regions/global-web.yaml).
//
//go:embed regions/*.yaml
var RegionFiles embed.FS

// RegionDocuments returns the examples of regions/ as one multi-document
// YAML stream, as `shoal apply -f examples/regions/` would send them.
func RegionDocuments() ([]byte, error) {
	names, err := fs.Glob(RegionFiles, "regions/*.yaml")
	if err != nil {
		return nil, err
	}
	return documents(RegionFiles, names)
}

// Documents returns web.yaml and log-agent.yaml as one multi-document YAML
// stream, in file-name order. They run on any cluster; bursting.yaml,
// which wants an on-premises cluster and cloud ones, is left to Bursting.
func Documents() ([]byte, error) { return documents(Files, firstAct) }

// Bursting returns bursting.yaml: the Deployment bursting and its policy.
func Bursting() ([]byte, error) { return Files.ReadFile("bursting.yaml") }

func documents(files embed.FS, names []string) ([]byte, error) {
	names = slices.Clone(names)
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
