package client_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/shoalmesh/shoal/"

// TestImportsOnlyAPIAndStandardLibrary enforces the package's contract: a
// program that only talks to peers must not link the peer.
func TestImportsOnlyAPIAndStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != module+"api" && !standard(p) {
				t.Errorf("%s imports %s; the client may import only %sapi and the standard library", path, p, module)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files found")
	}
}

// standard reports whether an import path is of the standard library: its
// first element has no dot (as the go command tells them apart).
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// TestDoesNotLinkThePeer checks what the client links, through package api
// too: none of Shoal's peer packages, nor Raft, memberlist or client-go.
func TestDoesNotLinkThePeer(t *testing.T) {
	goTool, err := exec.LookPath(filepath.Join(build.Default.GOROOT, "bin", "go"))
	if err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to list the dependencies with")
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", module+"api/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		module + "node", module + "region", module + "consensus", module + "gossip", module + "deploy", module + "transport",
		"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "k8s.io/client-go",
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("the client links %s", d)
			}
		}
	}
	if len(deps) < 2 || deps[len(deps)-1] != module+"api/client" {
		t.Fatalf("go list -deps gave no dependency list: %q", out)
	}
}
