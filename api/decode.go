package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Errors returned by the decoders. Each is wrapped with the details of what
// was wrong; test for them with errors.Is.
var (
	// ErrEmpty is returned for a stream that holds no object at all: only
	// whitespace, comments and document separators.
	ErrEmpty = errors.New("no objects in the input; give at least one Kubernetes object or policy")

	// ErrSyntax is returned for a document that is not well-formed YAML or
	// JSON.
	ErrSyntax = errors.New("malformed YAML or JSON")

	// ErrUnknownKind is returned for an apiVersion/kind of the Karmada policy
	// group (policy.karmada.io) that Shoal does not know.
	ErrUnknownKind = errors.New("unknown policy kind")

	// ErrNotSupported is returned for a Karmada policy kind that Shoal knows
	// but does not accept yet. Every kind of policy.karmada.io/v1alpha1 that
	// Shoal knows is accepted now; the error stays for kinds to come.
	ErrNotSupported = errors.New("not supported yet")

	// ErrInvalid is returned for a policy that breaks Karmada's schema or
	// rules. The error is a *PolicyError listing every problem found.
	ErrInvalid = errors.New("invalid policy")
)

// Document is one YAML document of an apply request.
type Document struct {
	// Index is the 0-based position in the stream, counting only
	// non-empty documents.
	Index int
	Key   ObjectKey
	// Manifest is the object as compact JSON; for policies, the defaulted
	// policy.
	Manifest []byte
	// Policy is non-nil for PropagationPolicy and ClusterPropagationPolicy.
	Policy *Policy
	// Override is non-nil for OverridePolicy and ClusterOverridePolicy.
	Override *OverridePolicy
	// Warnings are things the user should know but that do not stop the
	// apply, e.g. a Karmada field Shoal does not implement yet.
	Warnings []string
}

// DocumentError names the document of a stream that could not be decoded.
// Its message numbers documents from 1 (Index+1), as people count them.
type DocumentError struct {
	Index int       // 0-based, as Document.Index
	Key   ObjectKey // zero if the identity could not be read
	Err   error
}

func (e *DocumentError) Error() string {
	msg := e.Err.Error()
	if e.Key.Kind == "" || e.Key.Name == "" {
		return fmt.Sprintf("document %d: %s", e.Index+1, msg)
	}
	who := e.Key.Display()
	// Policy and template errors often start with the object's own name;
	// do not say it twice.
	msg = strings.TrimPrefix(msg, who+": ")
	return fmt.Sprintf("document %d (%s): %s", e.Index+1, who, msg)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// DecodeDocuments splits multi-document YAML (or a stream of JSON objects)
// and decodes every document. Empty documents (only whitespace, comments or
// `---`) are skipped; a stream with no object at all is ErrEmpty.
//
// Any Kubernetes object (apiVersion, kind and metadata.name set) is a
// resource template and is kept as written. Policies of policy.karmada.io/v1alpha1
// are decoded strictly, defaulted and validated: PropagationPolicy and
// ClusterPropagationPolicy as DecodePolicy does, OverridePolicy and
// ClusterOverridePolicy as DecodeOverridePolicy does.
//
// Every document's identity must pass ValidateKey (ErrInvalidKey).
//
// It stops at the first bad document and returns a *DocumentError naming it:
// `document 2 (Deployment default/web): …`, or `document 3: …` when the
// identity cannot be read. Messages number documents from 1, as people count
// them; DocumentError.Index is 0-based like Document.Index. On error no
// documents are returned; applying all or nothing is the caller's job.
func DecodeDocuments(data []byte) ([]Document, error) {
	raws, err := splitDocuments(data)
	var docs []Document
	for i, raw := range raws {
		doc, derr := decodeDocument(i, raw)
		if derr != nil {
			return nil, derr
		}
		docs = append(docs, doc)
	}
	if err != nil {
		// The stream broke after len(raws) good documents.
		return nil, &DocumentError{Index: len(raws), Err: err}
	}
	if len(docs) == 0 {
		return nil, ErrEmpty
	}
	return docs, nil
}

// splitDocuments returns every non-empty document of the stream as JSON.
// On a malformed document it returns the documents before it and the error.
func splitDocuments(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(trimmed)
	}
	var out [][]byte
	for _, doc := range splitYAML(data) {
		j, err := yamlToJSON(doc)
		if err != nil {
			return out, err
		}
		if isNull(j) {
			continue // only comments or whitespace
		}
		out = append(out, j)
	}
	return out, nil
}

// splitYAML cuts a YAML stream at its document markers: lines that are
// "---" alone or followed by a space or tab. What follows the marker on its
// line belongs to the next document, as in YAML ("--- # c", "--- {a: 1}").
// A line such as "---foo" is not a marker; the YAML parser judges it.
func splitYAML(data []byte) [][]byte {
	var (
		docs [][]byte
		cur  []byte
	)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		if rest, ok := docMarker(line); ok {
			docs = append(docs, cur)
			cur = append([]byte(nil), rest...)
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func docMarker(line []byte) (rest []byte, ok bool) {
	if !bytes.HasPrefix(line, []byte("---")) {
		return nil, false
	}
	rest = line[3:]
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '\r' && rest[0] != '\n' {
		return nil, false
	}
	return rest, true
}

// splitJSON splits a stream of JSON values, as kubectl accepts it.
func splitJSON(data []byte) ([][]byte, error) {
	var out [][]byte
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%w: JSON: %v", ErrSyntax, err)
		}
		if isNull(raw) {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return out, fmt.Errorf("%w: JSON: %v", ErrSyntax, err)
		}
		out = append(out, buf.Bytes())
	}
}

// yamlToJSON converts one YAML document to compact JSON. Duplicate keys are
// an error, as they are for kubectl. The YAML parser is third-party code fed
// with untrusted input: a panic in it becomes an error.
func yamlToJSON(doc []byte) (j []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			j, err = nil, fmt.Errorf("%w: the YAML parser failed on this document (%v)", ErrSyntax, r)
		}
	}()
	j, err = yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, cleanYAMLError(err))
	}
	return j, nil
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	return strings.Join(strings.Fields(msg), " ")
}

func isNull(j []byte) bool {
	t := bytes.TrimSpace(j)
	return len(t) == 0 || string(t) == "null"
}

// objectMeta is the identity every Kubernetes object carries.
type objectMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// readIdentity reads apiVersion, kind, name and namespace of a JSON object.
func readIdentity(j []byte) (ObjectKey, error) {
	if t := bytes.TrimSpace(j); len(t) == 0 || t[0] != '{' {
		return ObjectKey{}, fmt.Errorf("%w: a document must be a mapping with apiVersion, kind and metadata, got %s", ErrNotObject, describeJSON(t))
	}
	var m objectMeta
	if err := json.Unmarshal(j, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return ObjectKey{}, fmt.Errorf("%w: %s must be a string, got %s", ErrNotObject, te.Field, te.Value)
		}
		return ObjectKey{}, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	return ObjectKey{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name}, nil
}

func describeJSON(t []byte) string {
	switch {
	case len(t) == 0:
		return "nothing"
	case t[0] == '[':
		return "a list"
	case t[0] == '"':
		return "a string"
	default:
		return "a scalar"
	}
}

func requireIdentity(k ObjectKey) error {
	switch {
	case k.APIVersion == "" && k.Kind == "":
		return fmt.Errorf("%w: apiVersion and kind are required", ErrNotObject)
	case k.APIVersion == "":
		return fmt.Errorf("%w: apiVersion is required", ErrNotObject)
	case k.Kind == "":
		return fmt.Errorf("%w: kind is required", ErrNotObject)
	case k.Name == "":
		return fmt.Errorf("%w: metadata.name is required", ErrNotObject)
	}
	return nil
}

func decodeDocument(index int, j []byte) (Document, error) {
	key, err := readIdentity(j)
	if err != nil {
		return Document{}, &DocumentError{Index: index, Err: err}
	}
	if err := requireIdentity(key); err != nil {
		// Show what could be read: the kind helps find the document.
		if key.Kind != "" && key.Name == "" {
			err = fmt.Errorf("%s: %w", key.Kind, err)
		}
		return Document{}, &DocumentError{Index: index, Err: err}
	}
	if group(key.APIVersion) != PolicyGroup {
		if key.Namespace == "" && !IsClusterScoped(key.APIVersion, key.Kind) {
			// As kubectl does: a namespaced object without a namespace
			// goes to "default".
			key.Namespace = DefaultNamespace
			if j, err = setNamespace(j, DefaultNamespace); err != nil {
				return Document{}, &DocumentError{Index: index, Key: key, Err: err}
			}
		}
		if err := ValidateKey(key); err != nil {
			// No Key: a key that breaks the rules does not name the
			// object well ("v1alpha1/PropagationPolicy default/web").
			return Document{}, &DocumentError{Index: index, Err: err}
		}
		if _, err := ParseTemplate(j); err != nil {
			return Document{}, &DocumentError{Index: index, Key: key, Err: err}
		}
		return Document{Index: index, Key: key, Manifest: j}, nil
	}
	doc, err := decodePolicyDocument(index, key, j)
	if err != nil {
		return Document{}, err
	}
	// A policy that decoded has a valid name and namespace already, by
	// Karmada's rules; this keeps the region state's keys safe whatever
	// those rules become.
	if err := ValidateKey(doc.Key); err != nil {
		return Document{}, &DocumentError{Index: index, Err: err}
	}
	return doc, nil
}

// decodePolicyDocument decodes a document of the Karmada policy group.
func decodePolicyDocument(index int, key ObjectKey, j []byte) (Document, error) {
	if key.APIVersion == PolicyAPIVersion && (key.Kind == KindOverridePolicy || key.Kind == KindClusterOverridePolicy) {
		return decodeOverrideDocument(index, key, j)
	}
	if err := checkPolicyKind(key); err != nil {
		return Document{}, &DocumentError{Index: index, Key: key, Err: err}
	}
	p, obj, warnings, err := decodePolicyJSON(j)
	if p != nil {
		key.Namespace = p.Namespace // the defaulted namespace
	}
	if err != nil {
		return Document{}, &DocumentError{Index: index, Key: key, Err: err}
	}
	manifest, err := json.Marshal(obj)
	if err != nil {
		return Document{}, &DocumentError{Index: index, Key: key, Err: fmt.Errorf("encoding the defaulted policy: %w", err)}
	}
	return Document{Index: index, Key: key, Manifest: manifest, Policy: p, Warnings: warnings}, nil
}

// group gives the API group of an apiVersion: "" for the core group "v1".
func group(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// checkPolicyKind accepts the propagation policies of policy.karmada.io/v1alpha1.
func checkPolicyKind(k ObjectKey) error {
	if k.APIVersion == PolicyAPIVersion {
		switch k.Kind {
		case KindPropagationPolicy, KindClusterPropagationPolicy:
			return nil
		case KindOverridePolicy, KindClusterOverridePolicy:
			// Only a caller of DecodePolicy gets here; DecodeDocuments
			// takes override policies to DecodeOverridePolicy's path.
			return fmt.Errorf("%w: %s is not a propagation policy; decode it with DecodeOverridePolicy", ErrUnknownKind, k.Kind)
		}
	}
	return unknownPolicyKind(k)
}

func unknownPolicyKind(k ObjectKey) error {
	return fmt.Errorf("%w: apiVersion %q kind %q; Shoal accepts %s PropagationPolicy, ClusterPropagationPolicy, OverridePolicy and ClusterOverridePolicy",
		ErrUnknownKind, k.APIVersion, k.Kind, PolicyAPIVersion)
}

// Policy is a decoded, defaulted, validated propagation policy.
type Policy struct {
	Kind      string // KindPropagationPolicy or KindClusterPropagationPolicy
	Namespace string // empty for cluster-scoped
	Name      string
	Spec      PropagationSpec
	// Guard is the policy's partition guard (AnnotationPartitionGuard):
	// PartitionGuardMajority, PartitionGuardStrict, or empty for none.
	Guard string
}

// AnnotationPartitionGuard on a propagation policy sets how the workloads
// it selects behave when regions are cut from each other. Without it they
// keep running on every side (more replicas, never fewer). With either
// value a workload must not run twice: a region starts replicas only once
// the others have stopped theirs.
const AnnotationPartitionGuard = "shoal.io/partition-guard"

const (
	// PartitionGuardMajority: a region that does not hear a majority of
	// the mesh's regions stops the workload, and the side with a
	// majority takes over a silent region's share. A region whose peers
	// are all dead while its clusters run cannot stop its copy: it runs
	// twice until that region is back.
	PartitionGuardMajority = "majority"
	// PartitionGuardStrict: no region takes the workload over from a
	// region that went silent while running it (dead or cut off: the
	// others cannot tell) until that region is back or forgotten; the
	// silent region keeps running it. Never twice, whatever fails; the
	// operator decides when a silent region is gone (shoal region forget),
	// as with a StatefulSet's pods on an unreachable node.
	PartitionGuardStrict = "strict"
)

// Ref names the policy as people read it: "PropagationPolicy default/web-pp"
// or "ClusterPropagationPolicy all".
func (p *Policy) Ref() string {
	return p.Key().Display()
}

// Key gives the policy's object key.
func (p *Policy) Key() ObjectKey {
	return ObjectKey{APIVersion: PolicyAPIVersion, Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}
}

// IsCluster reports whether the policy is a ClusterPropagationPolicy.
func (p *Policy) IsCluster() bool { return p.Kind == KindClusterPropagationPolicy }

// DefaultNamespace is the namespace of a PropagationPolicy written without
// one, as kubectl would apply it.
const DefaultNamespace = "default"

// DecodePolicy decodes one PropagationPolicy or ClusterPropagationPolicy
// from YAML or JSON. Decoding is strict (a field Karmada does not have is an
// error naming its path); the policy is then defaulted and validated as
// Karmada does. It returns the warnings for Karmada fields that Shoal does
// not implement yet. An invalid policy gives a *PolicyError listing every
// problem; errors.Is(err, ErrInvalid) holds for it.
func DecodePolicy(manifest []byte) (*Policy, []string, error) {
	raw, err := singleDocument(manifest, "policy")
	if err != nil {
		return nil, nil, err
	}
	p, _, warnings, err := decodePolicyJSON(raw)
	if err != nil {
		return nil, nil, err
	}
	return p, warnings, nil
}

// decodePolicyJSON decodes a policy from JSON. It returns the policy, the
// defaulted Karmada object (for the stored manifest) and the warnings. On an
// invalid policy it still returns the policy's identity in p, for naming it.
func decodePolicyJSON(j []byte) (p *Policy, obj any, warnings []string, err error) {
	key, err := readIdentity(j)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := requireIdentity(key); err != nil {
		return nil, nil, nil, err
	}
	if err := checkPolicyKind(key); err != nil {
		return nil, nil, nil, err
	}

	var (
		meta *metav1.ObjectMeta
		spec *PropagationSpec
	)
	var strictErrs []error
	if key.Kind == KindPropagationPolicy {
		pp := &PropagationPolicy{}
		strictErrs, err = kjson.UnmarshalStrict(j, pp)
		obj, spec, meta = pp, &pp.Spec, &pp.ObjectMeta
	} else {
		cpp := &ClusterPropagationPolicy{}
		strictErrs, err = kjson.UnmarshalStrict(j, cpp)
		obj, spec, meta = cpp, &cpp.Spec, &cpp.ObjectMeta
	}

	p = &Policy{Kind: key.Kind, Namespace: key.Namespace, Name: key.Name}
	var notes []string
	switch {
	case p.Kind == KindPropagationPolicy && p.Namespace == "":
		p.Namespace = DefaultNamespace
		meta.Namespace = DefaultNamespace
	case p.Kind == KindClusterPropagationPolicy && p.Namespace != "":
		ns := p.Namespace
		p.Namespace, meta.Namespace = "", ""
		notes = append(notes, droppedNamespace(p.Ref(), ns))
	}
	perr := &PolicyError{Ref: p.Ref()}
	if err != nil {
		perr.add(typeErrorPath(err), "%s", typeErrorMessage(err))
		return p, nil, nil, perr
	}
	for _, se := range strictErrs {
		perr.add(strictErrorPath(se), "%s", strictErrorMessage(se, key.Kind))
	}
	checkRequired(j, propagationRequired, perr)

	for _, n := range setDefaults(p.Kind, p.Namespace, spec) {
		notes = append(notes, p.Ref()+": "+n)
	}
	p.Spec = *spec
	if g, ok := meta.Annotations[AnnotationPartitionGuard]; ok {
		if g != PartitionGuardMajority && g != PartitionGuardStrict {
			perr.add("metadata.annotations["+AnnotationPartitionGuard+"]", "unknown value %q; use %q, %q or leave it out", g, PartitionGuardMajority, PartitionGuardStrict)
		}
		p.Guard = g
	}
	validatePolicy(p, perr)
	if len(perr.Problems) > 0 {
		return p, nil, nil, perr
	}
	return p, obj, policyWarnings(p, notes), nil
}

// singleDocument returns the one document of manifest, as JSON; what names
// the expected object in the error for zero or several documents.
func singleDocument(manifest []byte, what string) ([]byte, error) {
	raws, err := splitDocuments(manifest)
	if err != nil {
		return nil, err
	}
	switch len(raws) {
	case 0:
		return nil, ErrEmpty
	case 1:
		return raws[0], nil
	default:
		return nil, fmt.Errorf("%w: expected one %s, got %d documents", ErrInvalid, what, len(raws))
	}
}
