package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	kjson "sigs.k8s.io/json"
)

// The messages of strict decoding, for PolicyError: a field Karmada does not
// have, a field given twice, a value of the wrong type.

// strictErrorPath gives the field path of an unknown or duplicate field.
func strictErrorPath(err error) string {
	var fe kjson.FieldError
	if errors.As(err, &fe) {
		return fe.FieldPath()
	}
	return ""
}

func strictErrorMessage(err error, kind string) string {
	if strings.HasPrefix(err.Error(), "duplicate field") {
		return "field given twice; keep one"
	}
	return fmt.Sprintf("unknown field: Karmada's %s %s has no such field; check its spelling, case and indentation", PolicyAPIVersion, kind)
}

// typeErrorPath gives the path of a field whose value has the wrong type.
func typeErrorPath(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

func typeErrorMessage(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Type == nil {
		return err.Error()
	}
	var want string
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "a whole number"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice, reflect.Array:
		want = "a list"
	case reflect.Struct, reflect.Map:
		want = "a mapping"
	default:
		want = te.Type.String()
	}
	return fmt.Sprintf("must be %s, got %s", want, te.Value)
}

// droppedNamespace is the note for a cluster-scoped policy written with a
// namespace: the Kubernetes API server drops the namespace of a
// cluster-scoped object, so Karmada never sees it, and neither does Shoal.
// ref names the policy.
func droppedNamespace(ref, namespace string) string {
	return fmt.Sprintf("%s: metadata.namespace %q ignored: the policy is cluster-scoped, and the Kubernetes API server drops the namespace of a cluster-scoped object", ref, namespace)
}
