package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"

	"github.com/shoalmesh/shoal/api"
)

// KubeCluster's reads: List and Status from the informers, and the object
// as the API server holds it while an informer lags behind a write.

// List implements Cluster: the keys of the owned objects in the informers'
// caches, named by their TemplateAnnotation, sorted. It may still include an
// object released or deleted a moment ago; Status tells.
func (k *KubeCluster) List(ctx context.Context) ([]api.ObjectKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !k.synced.Load() {
		return nil, fmt.Errorf("kube cluster not synced yet: %w", ErrUnavailable)
	}
	k.mu.Lock()
	infs := make([]cache.SharedIndexInformer, 0, len(k.informers))
	for _, oi := range k.informers {
		infs = append(infs, oi.inf)
	}
	k.mu.Unlock()
	seen := map[api.ObjectKey]bool{}
	for _, inf := range infs {
		for _, o := range inf.GetStore().List() {
			if u, ok := o.(*unstructured.Unstructured); ok {
				seen[keyOf(u)] = true
			}
		}
	}
	keys := make([]api.ObjectKey, 0, len(seen))
	for key := range seen {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b api.ObjectKey) int { return strings.Compare(a.String(), b.String()) })
	return keys, nil
}

// Status implements Cluster; see health.go for how each kind is read.
func (k *KubeCluster) Status(ctx context.Context, key api.ObjectKey) (Status, error) {
	m, err := k.mappingFor(key, false)
	if errors.Is(err, ErrKindNotServed) {
		return Status{}, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	if err != nil {
		return Status{}, err
	}
	u, err := k.live(ctx, key, m)
	if err != nil {
		return Status{}, err
	}
	if u == nil || !ownedBy(u, key) {
		return Status{}, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	h := interpret(u)
	st := Status{Key: key, Replicas: h.Replicas, ReadyReplicas: h.Ready, Health: h.Health, Reason: h.Reason}
	st.AppliedGeneration, _ = strconv.ParseInt(u.GetAnnotations()[GenerationAnnotation], 10, 64)
	st.Drifted = k.drifted(key, u)
	return st, nil
}

// LiveStatus implements LiveStatuser.
func (k *KubeCluster) LiveStatus(ctx context.Context, key api.ObjectKey) (map[string]any, error) {
	m, err := k.mappingFor(key, false)
	if errors.Is(err, ErrKindNotServed) {
		return nil, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	u, err := k.live(ctx, key, m)
	if err != nil {
		return nil, err
	}
	if u == nil || !ownedBy(u, key) {
		return nil, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	st, _ := u.Object["status"].(map[string]any)
	return st, nil
}

// drifted reports whether u no longer holds what was last applied (see
// KubeCluster).
func (k *KubeCluster) drifted(key api.ObjectKey, u *unstructured.Unstructured) bool {
	k.mu.Lock()
	a, ok := k.applied[key]
	k.mu.Unlock()
	return !ok || a.uid != string(u.GetUID()) || a.fields != managedBy(u, k.cfg.FieldManager)
}

// mappingFor maps key's kind to its resource. With reset, a kind the
// cluster does not serve resets the discovery cache, so that a later call
// sees kinds added since (a CRD just established).
func (k *KubeCluster) mappingFor(key api.ObjectKey, reset bool) (mapping, error) {
	gv, err := schema.ParseGroupVersion(key.APIVersion)
	if err != nil {
		return mapping{}, fmt.Errorf("%s: %w", key.Display(), err)
	}
	m, err := k.disc.mapping(gv.WithKind(key.Kind))
	switch {
	case errors.Is(err, errNoMatch):
		if reset {
			k.disc.reset()
		}
		return mapping{}, fmt.Errorf("%s: %s %s (is its CustomResourceDefinition established?): %w", key.Display(), key.APIVersion, key.Kind, ErrKindNotServed)
	case err != nil:
		return mapping{}, fmt.Errorf("%s: discover its resource: %w", key.Display(), unavailable(err))
	}
	return m, nil
}

// namespaceOf is where key's object lives under m: its namespace
// ("default" if none) when namespaced, none otherwise.
func namespaceOf(key api.ObjectKey, m mapping) string {
	switch {
	case !m.namespaced:
		return ""
	case key.Namespace == "":
		return metav1.NamespaceDefault
	}
	return key.Namespace
}

// live returns key's object as Shoal's informer sees it (owned or not
// there), or, while the informer lags behind Shoal's last write of it, as
// that write's answer (the first time) or the API server (after) holds it.
// It returns nil for an absent object.
func (k *KubeCluster) live(ctx context.Context, key api.ObjectKey, m mapping) (*unstructured.Unstructured, error) {
	inf, err := k.informerFor(ctx, m)
	if err != nil {
		return nil, err
	}
	ns := namespaceOf(key, m)
	storeKey := key.Name
	if ns != "" {
		storeKey = ns + "/" + key.Name
	}
	o, exists, err := inf.GetStore().GetByKey(storeKey)
	if err != nil {
		return nil, err
	}
	cached, _ := o.(*unstructured.Unstructured)
	k.mu.Lock()
	p, pending := k.pending[key]
	if pending && exists && cached != nil && notOlder(cached.GetResourceVersion(), p.rv) {
		delete(k.pending, key)
		pending = false
	}
	answered := p.obj
	if pending && answered != nil {
		p.obj = nil
		k.pending[key] = p
	}
	k.mu.Unlock()
	switch {
	case pending && answered != nil:
		return answered, nil
	case !pending && (!exists || cached == nil):
		return nil, nil
	case !pending:
		return cached, nil
	}
	u, err := k.dyn.Resource(m.gvr).Namespace(ns).Get(ctx, key.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		u = nil
	case err != nil:
		return nil, fmt.Errorf("get %s: %w", key.Display(), unavailable(err))
	}
	if u == nil || u.GetLabels()[ManagedByLabel] != ManagedByValue {
		// Gone or released: out of the label-selected cache too.
		k.mu.Lock()
		if k.pending[key].rv == p.rv {
			delete(k.pending, key)
		}
		k.mu.Unlock()
	}
	return u, nil
}

// notOlder reports whether resource version a is at least b; versions
// that do not compare count as caught up.
func notOlder(a, b string) bool {
	c, err := resourceversion.CompareResourceVersion(a, b)
	return err != nil || c >= 0
}
