package examples

import (
	"io/fs"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// TestExamplesDecode: every example file decodes, its policies validate,
// and nothing in it draws a warning (a field Shoal would ignore).
func TestExamplesDecode(t *testing.T) {
	for _, files := range []struct {
		fs      fs.FS
		pattern string
	}{{Files, "*.yaml"}, {RegionFiles, "regions/*.yaml"}} {
		names, err := fs.Glob(files.fs, files.pattern)
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: %v %v", files.pattern, names, err)
		}
		for _, name := range names {
			data, err := fs.ReadFile(files.fs, name)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := api.DecodeDocuments(data)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			for _, d := range docs {
				for _, w := range d.Warnings {
					t.Errorf("%s: %s: warning %q", name, d.Key.Display(), w)
				}
			}
		}
	}
}

// TestDocumentsAreTheFirstAct: Documents leaves bursting.yaml to Bursting.
func TestDocumentsAreTheFirstAct(t *testing.T) {
	data, err := Documents()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := api.DecodeDocuments(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if d.Key.Name == "bursting" {
			t.Errorf("Documents has %s", d.Key.Display())
		}
	}
	b, err := Bursting()
	if err != nil {
		t.Fatal(err)
	}
	if docs, err := api.DecodeDocuments(b); err != nil || len(docs) != 2 || docs[1].Policy == nil ||
		len(docs[1].Policy.Spec.Placement.ClusterAffinities[0].OverflowAffinities) != 1 {
		t.Errorf("bursting.yaml: %v %v", docs, err)
	}
}
