package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoalmesh/shoal/api"
)

// Apply implements Cluster. It fails with ErrKindNotServed, to be retried,
// for a kind the cluster does not serve yet, and with ErrConflict for an
// object that is not Shoal's under ConflictAbort (see KubeCluster). An
// object Shoal's informer does not show as its own is read from the API
// server first to tell, except under ConflictOverwrite, where the apply
// adopts whatever is there.
func (k *KubeCluster) Apply(ctx context.Context, w Work) error {
	if err := applicable(w); err != nil {
		return err
	}
	m, err := k.mappingFor(w.Key, true)
	if err != nil {
		return err
	}
	obj, err := kubeObject(w, m.namespaced, k.cfg.ClusterName)
	if err != nil {
		return err
	}
	ns := obj.GetNamespace()
	if m.namespaced {
		if err := k.ensureNamespace(ctx, ns); err != nil {
			return fmt.Errorf("apply %s: %w", w.Key.Display(), err)
		}
	}
	cur, err := k.live(ctx, w.Key, m)
	if err != nil {
		return fmt.Errorf("apply %s: %w", w.Key.Display(), err)
	}
	ours := cur != nil && ownedBy(cur, w.Key)
	if !ours && w.ConflictResolution != ConflictOverwrite {
		// Objects that are not Shoal's are not in the informer: ask.
		cur, err = k.dyn.Resource(m.gvr).Namespace(ns).Get(ctx, w.Key.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			cur = nil
		case err != nil:
			return fmt.Errorf("apply %s: read the live object: %w", w.Key.Display(), unavailable(err))
		}
		if _, err := conflict(cur, w); err != nil {
			return err
		}
	}
	res, err := k.dyn.Resource(m.gvr).Namespace(ns).Apply(ctx, w.Key.Name, obj,
		metav1.ApplyOptions{FieldManager: k.cfg.FieldManager, Force: true})
	if err != nil {
		if apierrors.IsNotFound(err) && m.namespaced {
			k.mu.Lock()
			delete(k.namespaces, ns) // deleted since we looked
			k.mu.Unlock()
		}
		return fmt.Errorf("apply %s: %w", w.Key.Display(), unavailable(err))
	}
	if !ours && w.ConflictResolution == ConflictOverwrite && writtenByOthers(res, k.cfg.FieldManager) {
		k.log.Info("adopted an object that was not Shoal's (conflictResolution Overwrite)", "key", w.Key.String())
	}
	k.mu.Lock()
	k.pending[w.Key] = pendingWrite{rv: res.GetResourceVersion(), obj: res}
	k.applied[w.Key] = appliedMark{uid: string(res.GetUID()), fields: managedBy(res, k.cfg.FieldManager)}
	k.mu.Unlock()
	return nil
}

// writtenByOthers reports whether managers other than manager have written
// u: an object just created by manager's apply has no other entry in
// managedFields.
func writtenByOthers(u *unstructured.Unstructured, manager string) bool {
	for _, e := range u.GetManagedFields() {
		if e.Manager != manager {
			return true
		}
	}
	return false
}

// Delete implements Cluster. Only an object Shoal owns for key is deleted
// (in the background: its dependents go after it); deletion completes
// after Delete returns.
func (k *KubeCluster) Delete(ctx context.Context, key api.ObjectKey) error {
	m, cur, err := k.ownedObject(ctx, key)
	if err != nil || cur == nil {
		return err
	}
	if cur.GetDeletionTimestamp() != nil {
		return nil // on its way
	}
	uid := cur.GetUID()
	bg := metav1.DeletePropagationBackground
	err = k.dyn.Resource(m.gvr).Namespace(namespaceOf(key, m)).Delete(ctx, key.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", key.Display(), unavailable(err))
	}
	k.mu.Lock()
	delete(k.applied, key)
	k.mu.Unlock()
	return nil
}

// Release implements Cluster: it removes Shoal's labels and annotations
// from the object, which stays as it is. The field manager's entry in
// managedFields stays too: it records who set the fields.
func (k *KubeCluster) Release(ctx context.Context, key api.ObjectKey) error {
	m, cur, err := k.ownedObject(ctx, key)
	if err != nil || cur == nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": cur.GetResourceVersion(), // fail rather than race another writer
		"labels":          map[string]any{ManagedByLabel: nil, ClusterLabel: nil},
		"annotations":     map[string]any{TemplateAnnotation: nil, GenerationAnnotation: nil},
	}})
	if err != nil {
		return err
	}
	res, err := k.dyn.Resource(m.gvr).Namespace(namespaceOf(key, m)).Patch(ctx, key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: k.cfg.FieldManager})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("release %s: %w", key.Display(), unavailable(err))
	}
	k.mu.Lock()
	k.pending[key] = pendingWrite{rv: res.GetResourceVersion(), obj: res}
	delete(k.applied, key)
	k.mu.Unlock()
	k.log.Info("released object: left in the cluster, no longer managed", "key", key.String())
	return nil
}

// ownedObject returns key's object if Shoal owns it; a kind the cluster does
// not serve has no objects.
func (k *KubeCluster) ownedObject(ctx context.Context, key api.ObjectKey) (mapping, *unstructured.Unstructured, error) {
	m, err := k.mappingFor(key, false)
	if errors.Is(err, ErrKindNotServed) {
		return m, nil, nil
	}
	if err != nil {
		return m, nil, err
	}
	cur, err := k.live(ctx, key, m)
	if err != nil || cur == nil || !ownedBy(cur, key) {
		return m, nil, err
	}
	return m, cur, nil
}

// conflict decides whether w may be applied over cur, the live object of
// its name (nil if there is none): yes if cur is absent or Shoal's for
// w.Key; if it is someone else's, only under ConflictOverwrite (adopt is
// then true), else the error wraps ErrConflict. Shoal's for w.Key means
// labelled managed-by Shoal without naming another template, or naming
// w.Key (a hand-removed label), or, for a Namespace, created by KubeCluster
// for an object that needed it.
func conflict(cur *unstructured.Unstructured, w Work) (adopt bool, err error) {
	if cur == nil || ownedBy(cur, w.Key) || cur.GetAnnotations()[TemplateAnnotation] == w.Key.String() {
		return false, nil
	}
	if w.Key.APIVersion == "v1" && w.Key.Kind == "Namespace" && cur.GetLabels()[CreatedNamespaceLabel] == "true" {
		return false, nil
	}
	if w.ConflictResolution == ConflictOverwrite {
		return true, nil
	}
	if other := cur.GetAnnotations()[TemplateAnnotation]; other != "" && cur.GetLabels()[ManagedByLabel] == ManagedByValue {
		return false, fmt.Errorf("%s %w: Shoal manages it for template %s", w.Key.Display(), ErrConflict, other)
	}
	return false, fmt.Errorf("%s %w (set conflictResolution: Overwrite in its propagation policy to adopt it)", w.Key.Display(), ErrConflict)
}

// kubeObject renders w as the object to apply: the manifest with this
// cluster's replicas (spec.parallelism for a Job), Shoal's labels and
// annotations, the namespace the mapping calls for, and none of the fields
// the API server owns (status, uid, resourceVersion, managedFields, …).
func kubeObject(w Work, namespaced bool, clusterName string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(w.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", w.Key.Display(), api.ErrNotObject, err)
	}
	if u.GetAPIVersion() != w.Key.APIVersion || u.GetKind() != w.Key.Kind || u.GetName() != w.Key.Name {
		return nil, fmt.Errorf("%s: manifest names %s %s %s instead", w.Key.Display(), u.GetAPIVersion(), u.GetKind(), u.GetName())
	}
	if w.Replicas < 0 {
		return nil, fmt.Errorf("%s: replicas must not be negative, got %d", w.Key.Display(), w.Replicas)
	}
	if namespaced {
		ns := namespaceOf(w.Key, mapping{namespaced: true})
		if have := u.GetNamespace(); have != "" && have != ns {
			return nil, fmt.Errorf("%s: manifest is in namespace %s instead", w.Key.Display(), have)
		}
		u.SetNamespace(ns)
	} else {
		u.SetNamespace("")
	}
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
		"deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences", "finalizers"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	delete(u.Object, "status")
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ManagedByLabel] = ManagedByValue
	if clusterName != "" {
		labels[ClusterLabel] = clusterName
	}
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[TemplateAnnotation] = w.Key.String()
	ann[GenerationAnnotation] = strconv.FormatInt(w.Generation, 10)
	u.SetAnnotations(ann)
	if w.HasReplicas {
		if err := unstructured.SetNestedField(u.Object, int64(w.Replicas), "spec", replicasField(w.Key)); err != nil {
			return nil, fmt.Errorf("%s: set replicas: %w", w.Key.Display(), err)
		}
	}
	return u, nil
}

// replicasField is the spec field that holds key's replica count.
func replicasField(key api.ObjectKey) string {
	if key.APIVersion == "batch/v1" && key.Kind == "Job" {
		return "parallelism"
	}
	return "replicas"
}

// ensureNamespace creates namespace ns, labelled CreatedNamespaceLabel, if
// it does not exist. Namespaces are looked up once, one at a time, so that
// workers applying into a new namespace together do not all ask; a
// namespace being deleted is an error until it is gone.
func (k *KubeCluster) ensureNamespace(ctx context.Context, ns string) error {
	known := func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.namespaces[ns]
	}
	if known() {
		return nil
	}
	k.nsMu.Lock()
	defer k.nsMu.Unlock()
	if known() { // looked up by another worker meanwhile
		return nil
	}
	cur, err := k.dyn.Resource(namespacesGVR).Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		created := &unstructured.Unstructured{}
		created.SetAPIVersion("v1")
		created.SetKind("Namespace")
		created.SetName(ns)
		created.SetLabels(map[string]string{CreatedNamespaceLabel: "true"})
		_, err = k.dyn.Resource(namespacesGVR).Create(ctx, created, metav1.CreateOptions{FieldManager: k.cfg.FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, unavailable(err))
		}
		k.log.Info("created namespace", "namespace", ns)
	case err != nil:
		return fmt.Errorf("read namespace %s: %w", ns, unavailable(err))
	case cur.GetDeletionTimestamp() != nil:
		return fmt.Errorf("namespace %s is being deleted; waiting until it is gone to create it again", ns)
	}
	k.mu.Lock()
	k.namespaces[ns] = true
	k.mu.Unlock()
	return nil
}

// unavailable wraps err with ErrUnavailable when it says the API server
// could not be reached or could not answer; other errors come back as
// they are.
func unavailable(err error) error {
	if transportError(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// transportError reports whether err is a failure to reach the API server
// rather than an answer from it.
func transportError(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// ownedBy reports whether u is Shoal's object for key: labelled as managed
// by Shoal and, if it names its template, naming key.
func ownedBy(u *unstructured.Unstructured, key api.ObjectKey) bool {
	if u.GetLabels()[ManagedByLabel] != ManagedByValue {
		return false
	}
	t, ok := u.GetAnnotations()[TemplateAnnotation]
	return !ok || t == key.String()
}

// managedBy returns the fields manager owns in u through apply, as the API
// server encodes them.
func managedBy(u *unstructured.Unstructured, manager string) string {
	for _, e := range u.GetManagedFields() {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" && e.FieldsV1 != nil {
			return string(e.FieldsV1.Raw)
		}
	}
	return ""
}

// keyOf is the template key an owned object was applied for: its
// TemplateAnnotation, or else its own identity.
func keyOf(u *unstructured.Unstructured) api.ObjectKey {
	if key, ok := parseKey(u.GetAnnotations()[TemplateAnnotation]); ok {
		return key
	}
	return api.ObjectKey{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// parseKey reads api.ObjectKey.String(): apiVersion/kind/namespace/name,
// where apiVersion is "v1" or "group/version".
func parseKey(s string) (api.ObjectKey, bool) {
	p := strings.Split(s, "/")
	var key api.ObjectKey
	switch len(p) {
	case 4:
		key = api.ObjectKey{APIVersion: p[0], Kind: p[1], Namespace: p[2], Name: p[3]}
	case 5:
		key = api.ObjectKey{APIVersion: p[0] + "/" + p[1], Kind: p[2], Namespace: p[3], Name: p[4]}
	default:
		return api.ObjectKey{}, false
	}
	if key.APIVersion == "" || strings.HasPrefix(key.APIVersion, "/") || strings.HasSuffix(key.APIVersion, "/") || key.Kind == "" || key.Name == "" {
		return api.ObjectKey{}, false
	}
	return key, true
}
