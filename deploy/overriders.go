package deploy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
)

// overriderError is an overrider that failed: where names it within its
// rule ("plaintext[1]", "fieldOverrider[0].yaml[2]").
type overriderError struct {
	where string
	err   error
}

func failed(kind string, i int, err error) *overriderError {
	return &overriderError{where: kind + "[" + strconv.Itoa(i) + "]", err: err}
}

// applyOverriders applies one rule's overriders to doc in Karmada's order
// (applyPolicyOverriders in pkg/util/overridemanager/overridemanager.go).
func applyOverriders(doc []byte, ov *api.Overriders) ([]byte, *overriderError) {
	var err error
	for i := range ov.ImageOverrider {
		if doc, err = applyImage(doc, &ov.ImageOverrider[i]); err != nil {
			return nil, failed("imageOverrider", i, err)
		}
	}
	for i := range ov.CommandOverrider {
		if doc, err = applyCommandArgs(doc, "command", &ov.CommandOverrider[i]); err != nil {
			return nil, failed("commandOverrider", i, err)
		}
	}
	for i := range ov.ArgsOverrider {
		if doc, err = applyCommandArgs(doc, "args", &ov.ArgsOverrider[i]); err != nil {
			return nil, failed("argsOverrider", i, err)
		}
	}
	for i := range ov.LabelsOverrider {
		if doc, err = applyLabelsAnnotations(doc, "labels", &ov.LabelsOverrider[i]); err != nil {
			return nil, failed("labelsOverrider", i, err)
		}
	}
	for i := range ov.AnnotationsOverrider {
		if doc, err = applyLabelsAnnotations(doc, "annotations", &ov.AnnotationsOverrider[i]); err != nil {
			return nil, failed("annotationsOverrider", i, err)
		}
	}
	for i := range ov.FieldOverrider {
		var ferr *overriderError
		if doc, ferr = applyField(doc, &ov.FieldOverrider[i]); ferr != nil {
			ferr.where = "fieldOverrider[" + strconv.Itoa(i) + "]" + ferr.where
			return nil, ferr
		}
	}
	for i, p := range ov.Plaintext {
		op := patchOp{Op: string(p.Operator), Path: p.Path, Value: json.RawMessage(p.Value)}
		if doc, err = applyOp(doc, op, "path"); err != nil {
			return nil, failed("plaintext", i, err)
		}
	}
	return doc, nil
}

// podSpecPath is where the pod spec of a workload kind is: the kinds whose
// images, commands and args Karmada finds by itself (imageoverride.go and
// commandargsoverride.go, which switch on the kind alone), plus CronJob.
func podSpecPath(kind string) (string, bool) {
	switch kind {
	case "Pod":
		return "/spec", true
	case "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job":
		return "/spec/template/spec", true
	case "CronJob":
		return "/spec/jobTemplate/spec/template/spec", true
	}
	return "", false
}

// containers returns the pointer to the workload's containers and the
// containers, or nothing for other kinds or a workload without containers.
func containers(tree any) (string, []any, error) {
	obj, _ := tree.(map[string]any)
	kind, _ := obj["kind"].(string)
	prefix, ok := podSpecPath(kind)
	if !ok {
		return "", nil, nil
	}
	path := prefix + "/containers"
	v, werr, err := lookup(tree, path, "path")
	if err != nil {
		return "", nil, err
	}
	if werr != nil {
		if werr.missing {
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("%s", werr.text("path", path))
	}
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("path %s: is %s, not a list", path, describe(v))
	}
	return path, list, nil
}

// applyImage applies an image overrider: to the one field the predicate
// names, or else to every container image of a workload.
func applyImage(doc []byte, im *api.ImageOverrider) ([]byte, error) {
	tree, err := decodeTree(doc)
	if err != nil {
		return nil, err
	}
	var paths []string
	if im.Predicate != nil {
		paths = []string{im.Predicate.Path}
	} else {
		base, list, err := containers(tree)
		if err != nil {
			return nil, err
		}
		for i := range list {
			paths = append(paths, base+"/"+strconv.Itoa(i)+"/image")
		}
	}
	for _, p := range paths {
		v, werr, err := lookup(tree, p, "path")
		if err != nil {
			return nil, err
		}
		if werr != nil {
			return nil, fmt.Errorf("%s", werr.text("path", p))
		}
		cur, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("path %s: is %s, not a string", p, describe(v))
		}
		img, err := overrideImage(cur, im)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if doc, err = applyOp(doc, patchOp{Op: "replace", Path: p, Value: stringValue(img)}, "path"); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// applyCommandArgs applies a command or args overrider (field is "command"
// or "args") to every container of the given name, as Karmada's
// buildCommandArgsPatchesWithPath does: add appends the values (creating the
// list if needed), remove deletes every item equal to one of them.
func applyCommandArgs(doc []byte, field string, c *api.CommandArgsOverrider) ([]byte, error) {
	if c.Operator != api.OverriderOpAdd && c.Operator != api.OverriderOpRemove {
		return nil, fmt.Errorf("unknown operator %q; use add or remove", c.Operator)
	}
	tree, err := decodeTree(doc)
	if err != nil {
		return nil, err
	}
	base, list, err := containers(tree)
	if err != nil {
		return nil, err
	}
	for i, item := range list {
		ctr, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("path %s/%d: is %s, not an object", base, i, describe(item))
		}
		if name, _ := ctr["name"].(string); name != c.ContainerName {
			continue
		}
		path := base + "/" + strconv.Itoa(i) + "/" + field
		cur, present := ctr[field]
		if !present || cur == nil {
			if c.Operator == api.OverriderOpRemove || len(c.Value) == 0 {
				continue
			}
			v, _ := json.Marshal(c.Value)
			if doc, err = applyOp(doc, patchOp{Op: "add", Path: path, Value: v}, "path"); err != nil {
				return nil, err
			}
			continue
		}
		items, ok := cur.([]any)
		if !ok {
			return nil, fmt.Errorf("path %s: is %s, not a list", path, describe(cur))
		}
		next := make([]string, 0, len(items)+len(c.Value))
		for j, it := range items {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("path %s/%d: is %s, not a string", path, j, describe(it))
			}
			next = append(next, s)
		}
		if c.Operator == api.OverriderOpAdd {
			next = append(next, c.Value...)
		} else {
			drop := make(map[string]bool, len(c.Value))
			for _, v := range c.Value {
				drop[v] = true
			}
			kept := next[:0]
			for _, s := range next {
				if !drop[s] {
					kept = append(kept, s)
				}
			}
			next = kept
		}
		v, _ := json.Marshal(next)
		if doc, err = applyOp(doc, patchOp{Op: "replace", Path: path, Value: v}, "path"); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// applyLabelsAnnotations applies a labels or annotations overrider (field
// is "labels" or "annotations") to metadata, as Karmada's
// buildLabelAnnotationOverriderPatches does: add sets every key (creating
// the map if needed), replace sets the keys already present, remove deletes
// the keys present; keys that are absent are left alone.
func applyLabelsAnnotations(doc []byte, field string, l *api.LabelAnnotationOverrider) ([]byte, error) {
	switch l.Operator {
	case api.OverriderOpAdd, api.OverriderOpRemove, api.OverriderOpReplace:
	default:
		return nil, fmt.Errorf("unknown operator %q; use add, remove or replace", l.Operator)
	}
	if len(l.Value) == 0 {
		return doc, nil
	}
	tree, err := decodeTree(doc)
	if err != nil {
		return nil, err
	}
	obj, _ := tree.(map[string]any)
	var ops []patchOp
	meta, present := obj["metadata"]
	if !present || meta == nil {
		if l.Operator != api.OverriderOpAdd {
			return doc, nil
		}
		ops = append(ops, patchOp{Op: "add", Path: "/metadata", Value: json.RawMessage("{}")})
		meta = map[string]any{}
	}
	m, ok := meta.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("path /metadata: is %s, not an object", describe(meta))
	}
	base := "/metadata/" + field
	cur, present := m[field]
	if !present || cur == nil {
		if l.Operator != api.OverriderOpAdd {
			return doc, nil
		}
		ops = append(ops, patchOp{Op: "add", Path: base, Value: json.RawMessage("{}")})
		cur = map[string]any{}
	}
	existing, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("path %s: is %s, not an object", base, describe(cur))
	}
	keys := make([]string, 0, len(l.Value))
	for k := range l.Value {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_, has := existing[k]
		op := patchOp{Op: string(l.Operator), Path: base + joinPointer([]string{k})}
		switch l.Operator {
		case api.OverriderOpAdd:
			op.Value = stringValue(l.Value[k])
		case api.OverriderOpReplace:
			if !has {
				continue
			}
			op.Value = stringValue(l.Value[k])
		case api.OverriderOpRemove:
			if !has {
				continue
			}
		}
		ops = append(ops, op)
	}
	for _, op := range ops {
		if doc, err = applyOp(doc, op, "path"); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// applyField applies a field overrider, as Karmada's applyFieldOverriders
// does: the string at fieldPath is decoded as YAML (if yaml is set) or JSON,
// patched operation by operation, encoded again and put back; with neither
// json nor yaml the field is emptied, as Karmada empties it. A YAML
// document comes back with its keys sorted and without its comments, as in
// Karmada. The error's where is relative to the overrider (".yaml[1]").
func applyField(doc []byte, f *api.FieldOverrider) ([]byte, *overriderError) {
	fail := func(where string, err error) *overriderError { return &overriderError{where: where, err: err} }
	tree, err := decodeTree(doc)
	if err != nil {
		return nil, fail("", err)
	}
	toks, err := splitPointer(f.FieldPath)
	if err != nil {
		return nil, fail("", fmt.Errorf("fieldPath: %w", err))
	}
	if len(toks) == 0 {
		return nil, fail("", fmt.Errorf("fieldPath is required"))
	}
	v, werr := walk(tree, toks)
	if werr != nil {
		return nil, fail("", fmt.Errorf("%s", werr.text("fieldPath", f.FieldPath)))
	}
	s, ok := v.(string)
	if !ok {
		return nil, fail("", fmt.Errorf("fieldPath %s: is %s, not a string holding JSON or YAML", f.FieldPath, describe(v)))
	}

	if len(f.JSON) == 0 && len(f.YAML) == 0 {
		// Only in the deprecated spec.overriders, which Karmada's webhook
		// does not check: Karmada then writes the field back empty.
		out, err := applyOp(doc, patchOp{Op: "replace", Path: f.FieldPath, Value: stringValue("")}, "fieldPath")
		if err != nil {
			return nil, fail("", err)
		}
		return out, nil
	}
	var sub []byte
	isYAML := len(f.YAML) > 0
	var ops []patchOp
	var kind string
	if isYAML {
		kind = "yaml"
		if sub, err = yamlToJSON([]byte(s)); err != nil {
			return nil, fail("", fmt.Errorf("fieldPath %s: the field does not hold YAML: %v", f.FieldPath, err))
		}
		for _, o := range f.YAML {
			ops = append(ops, patchOp{Op: string(o.Operator), Path: o.SubPath, Value: json.RawMessage(o.Value)})
		}
	} else {
		kind = "json"
		if sub = []byte(s); !json.Valid(sub) {
			return nil, fail("", fmt.Errorf("fieldPath %s: the field does not hold JSON", f.FieldPath))
		}
		for _, o := range f.JSON {
			ops = append(ops, patchOp{Op: string(o.Operator), Path: o.SubPath, Value: json.RawMessage(o.Value)})
		}
	}
	for i, op := range ops {
		if sub, err = applyOp(sub, op, "subPath"); err != nil {
			return nil, fail("."+kind+"["+strconv.Itoa(i)+"]", err)
		}
	}
	if isYAML {
		if sub, err = yaml.JSONToYAML(sub); err != nil {
			return nil, fail("", fmt.Errorf("fieldPath %s: encoding YAML: %v", f.FieldPath, err))
		}
	}
	out, err := applyOp(doc, patchOp{Op: "replace", Path: f.FieldPath, Value: stringValue(string(sub))}, "fieldPath")
	if err != nil {
		return nil, fail("", err)
	}
	return out, nil
}

// yamlToJSON converts a YAML document to JSON; the parser is third-party
// code fed with the user's data: a panic becomes an error.
func yamlToJSON(y []byte) (j []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			j, err = nil, fmt.Errorf("the YAML parser failed (%v)", r)
		}
	}()
	return yaml.YAMLToJSON(y)
}
