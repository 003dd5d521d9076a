package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shoalmesh/shoal/api"
)

// render turns w into the manifest the cluster should hold: the template with
// this cluster's replica share, the managed-by label and the generation
// annotation. It also checks that the manifest names w.Key, and returns the
// parsed template for its per-replica requests.
func render(w Work) ([]byte, *api.Template, error) {
	t, err := api.ParseTemplate(w.Manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	if t.Key != w.Key {
		return nil, nil, fmt.Errorf("%s: manifest names %s instead", w.Key.Display(), t.Key.Display())
	}
	if w.Replicas < 0 {
		return nil, nil, fmt.Errorf("%s: replicas must not be negative, got %d", w.Key.Display(), w.Replicas)
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(w.Manifest))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&obj); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	meta := child(obj, "metadata")
	child(meta, "labels")[ManagedByLabel] = ManagedByValue
	child(meta, "annotations")[GenerationAnnotation] = strconv.FormatInt(w.Generation, 10)
	if w.HasReplicas {
		field := "replicas"
		if w.Key.APIVersion == "batch/v1" && w.Key.Kind == "Job" {
			field = "parallelism"
		}
		child(obj, "spec")[field] = w.Replicas
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.Key.Display(), err)
	}
	return out, t, nil
}

// child returns m[name] as an object, creating it (or replacing a non-object)
// as needed.
func child(m map[string]any, name string) map[string]any {
	c, ok := m[name].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[name] = c
	}
	return c
}
