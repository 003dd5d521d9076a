package deploy_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayering enforces that deploy depends on nothing internal but api:
// region and deploy meet only in node.
func TestLayering(t *testing.T) {
	const module = "github.com/shoalmesh/shoal/"
	allowed := map[string]bool{
		module + "api":             true,
		module + "api/shoalpb":     true,
		module + "deploy":          true, // from external tests
		module + "deploy/kubetest": true, // from tests
	}
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !allowed[p] {
				t.Errorf("%s imports %s; deploy may import only api and api/shoalpb", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no Go files found")
	}
}
