package main

import (
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoBenchmarksInTheMainBinary keeps the benchmarks in cmd/shoal-bench:
// no file here is built only for them, and shoal, whatever the build tags,
// links neither their harness of real control planes nor client-go's
// typed clientset, which the peer must not carry.
func TestNoBenchmarksInTheMainBinary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	for _, path := range files {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range f.Comments {
			for _, c := range g.List {
				expr, err := constraint.Parse(c.Text)
				if err == nil && strings.Contains(expr.String(), "bench") {
					t.Errorf("%s is built with %q; benchmark code belongs in cmd/shoal-bench", path, c.Text)
				}
			}
		}
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-tags", "bench", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		if d == "github.com/shoalmesh/shoal/deploy/kubetest" || d == "k8s.io/client-go/kubernetes" {
			t.Errorf("shoal links %s", d)
		}
	}
	if len(deps) < 2 || deps[len(deps)-1] != "github.com/shoalmesh/shoal/cmd/shoal" {
		t.Fatalf("go list -deps gave no dependency list: %q", out)
	}
}

func TestBenchSaysWhereTheBenchmarksAre(t *testing.T) {
	code, _, errOut := shoal("bench", "--only", "scheduler")
	if code != 1 || !strings.Contains(errOut, "make bench") {
		t.Fatalf("shoal bench: exit %d, %q; want 1 and a pointer to make bench", code, errOut)
	}
}
