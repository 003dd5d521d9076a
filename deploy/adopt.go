package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/api"
)

// ObjectReader is a Cluster that can read any object it holds, Shoal's or
// not: shoal promote adopts an object that already runs in a member
// cluster. ReadObject returns the live object and whether Shoal manages it
// (ManagedByLabel); ErrNotFound when there is none.
type ObjectReader interface {
	ReadObject(ctx context.Context, key api.ObjectKey) (obj map[string]any, managed bool, err error)
}

// ReadObject implements ObjectReader with a GET from the API server (the
// informers see only Shoal's objects).
func (k *KubeCluster) ReadObject(ctx context.Context, key api.ObjectKey) (map[string]any, bool, error) {
	m, err := k.mappingFor(key, true)
	if errors.Is(err, ErrKindNotServed) {
		return nil, false, fmt.Errorf("%s: %w (the cluster does not serve %s)", key.Display(), ErrNotFound, key.APIVersion)
	}
	if err != nil {
		return nil, false, err
	}
	ri := k.dyn.Resource(m.gvr)
	var u interface {
		GetLabels() map[string]string
		UnstructuredContent() map[string]any
	}
	if ns := namespaceOf(key, m); ns != "" {
		u, err = ri.Namespace(ns).Get(ctx, key.Name, metav1.GetOptions{})
	} else {
		u, err = ri.Get(ctx, key.Name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	if err != nil {
		return nil, false, err
	}
	return u.UnstructuredContent(), u.GetLabels()[ManagedByLabel] == ManagedByValue, nil
}

// Create puts an object into the simulated cluster that Shoal does not
// manage, as if someone had applied it there by hand (an application to
// promote). Its replicas start as any others do. It is refused if the
// cluster holds key already.
func (s *SimCluster) Create(manifest []byte) error {
	t, err := api.ParseTemplate(manifest)
	if err != nil {
		return err
	}
	w := Work{Key: t.Key, Manifest: manifest, HasReplicas: t.HasReplicas, Replicas: t.Replicas}
	s.mu.Lock()
	if s.objects[t.Key] != nil {
		s.mu.Unlock()
		return fmt.Errorf("create %s: already exists", t.Key.Display())
	}
	s.mu.Unlock()
	if err := s.put(w, manifest, true); err != nil {
		return fmt.Errorf("create %s: %w", t.Key.Display(), err)
	}
	return nil
}

// ReadObject implements ObjectReader.
func (s *SimCluster) ReadObject(ctx context.Context, key api.ObjectKey) (map[string]any, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil {
		return nil, false, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	var obj map[string]any
	if err := json.Unmarshal(o.rec.Manifest, &obj); err != nil {
		return nil, false, err
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	meta["uid"] = o.rec.UID
	meta["creationTimestamp"] = o.rec.Created.UTC().Format("2006-01-02T15:04:05Z")
	return obj, !o.rec.Foreign, nil
}

// samePodTemplate reports whether two manifests have the same
// spec.template (or, for kinds without one, the same spec but replicas):
// adopting an object whose pods would not change restarts none.
func samePodTemplate(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	spec := func(m map[string]any) any {
		s, _ := m["spec"].(map[string]any)
		if t, ok := s["template"]; ok {
			return t
		}
		c := map[string]any{}
		for k, v := range s {
			if k != "replicas" && k != "parallelism" {
				c[k] = v
			}
		}
		return c
	}
	return reflect.DeepEqual(spec(x), spec(y))
}
