package deploy

import (
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// TestParseImage uses the cases of Karmada's imageparser tests: every
// reference cuts into its parts and prints back unchanged, except that of a
// tag and a digest only the tag is kept, as Karmada's parser keeps it.
func TestParseImage(t *testing.T) {
	const digest = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c"
	tests := []struct {
		in   string
		want imageRef
	}{
		{"pause", imageRef{repository: "pause"}},
		{"subpath/imagename:v1.0.0", imageRef{repository: "subpath/imagename", tag: "v1.0.0"}},
		{"fictional.registry.example/imagename:v1.0.0", imageRef{registry: "fictional.registry.example", repository: "imagename", tag: "v1.0.0"}},
		{"fictional.registry.example:10443/subpath/imagename:v1.0.0", imageRef{registry: "fictional.registry.example:10443", repository: "subpath/imagename", tag: "v1.0.0"}},
		{"fictional.registry.example:10443/subpath/imagename@" + digest, imageRef{registry: "fictional.registry.example:10443", repository: "subpath/imagename", digest: digest}},
		{"10.10.10.10:10443/subpath/imagename", imageRef{registry: "10.10.10.10:10443", repository: "subpath/imagename"}},
		{"localhost/a", imageRef{registry: "localhost", repository: "a"}},
	}
	for _, tt := range tests {
		got, err := parseImage(tt.in)
		if err != nil {
			t.Errorf("parseImage(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want || got.String() != tt.in {
			t.Errorf("parseImage(%q) = %+v (%q), want %+v", tt.in, got, got.String(), tt.want)
		}
	}
	if got, err := parseImage("nginx:1.25@" + digest); err != nil || got != (imageRef{repository: "nginx", tag: "1.25"}) || got.String() != "nginx:1.25" {
		t.Errorf("a tag and a digest: %+v (%q), %v; want the tag alone", got, got.String(), err)
	}
	for _, bad := range []string{"", "Nginx", "nginx:", "nginx@sha256:12", ":v1", "a//b", "host:port/x", "a:b:c"} {
		if r, err := parseImage(bad); err == nil {
			t.Errorf("parseImage(%q) = %+v, want an error", bad, r)
		}
	}
}

// TestOverrideImage follows Karmada's imageoverride tests: add appends to the
// component, replace sets it, remove clears it; a tag replaces a digest and
// the other way round.
func TestOverrideImage(t *testing.T) {
	const digest = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c"
	im := func(c api.ImageComponent, op api.OverriderOperator, v string) *api.ImageOverrider {
		return &api.ImageOverrider{Component: c, Operator: op, Value: v}
	}
	tests := []struct {
		image string
		o     *api.ImageOverrider
		want  string
	}{
		{"myapp:1.0.0", im(api.ImageComponentRegistry, api.OverriderOpAdd, "test-repo"), "test-repo/myapp:1.0.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentRegistry, api.OverriderOpAdd, ".cn"), "registry.k8s.io.cn/kube-apiserver:v1.19.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentRegistry, api.OverriderOpReplace, "fictional.registry.us"), "fictional.registry.us/kube-apiserver:v1.19.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentRegistry, api.OverriderOpRemove, ""), "kube-apiserver:v1.19.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentRepository, api.OverriderOpAdd, "-test"), "registry.k8s.io/kube-apiserver-test:v1.19.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentRepository, api.OverriderOpReplace, "kube-controller-manager"), "registry.k8s.io/kube-controller-manager:v1.19.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentTag, api.OverriderOpAdd, "-test"), "registry.k8s.io/kube-apiserver:v1.19.0-test"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentTag, api.OverriderOpReplace, "v1.20.0"), "registry.k8s.io/kube-apiserver:v1.20.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentTag, api.OverriderOpReplace, digest), "registry.k8s.io/kube-apiserver@" + digest},
		{"registry.k8s.io/kube-apiserver@" + digest, im(api.ImageComponentTag, api.OverriderOpReplace, "v1.20.0"), "registry.k8s.io/kube-apiserver:v1.20.0"},
		{"registry.k8s.io/kube-apiserver:v1.19.0", im(api.ImageComponentTag, api.OverriderOpRemove, ""), "registry.k8s.io/kube-apiserver"},
		{"registry.k8s.io/kube-apiserver@" + digest, im(api.ImageComponentTag, api.OverriderOpRemove, ""), "registry.k8s.io/kube-apiserver"},
		// Karmada's parser keeps the tag of a reference with both: the
		// digest pin is lost by any override.
		{"nginx:1.25@" + digest, im(api.ImageComponentRegistry, api.OverriderOpReplace, "mirror.example"), "mirror.example/nginx:1.25"},
		{"nginx:1.25@" + digest, im(api.ImageComponentTag, api.OverriderOpRemove, ""), "nginx"},
	}
	for _, tt := range tests {
		got, err := overrideImage(tt.image, tt.o)
		if err != nil || got != tt.want {
			t.Errorf("%q with %s %s %q = %q, %v; want %q", tt.image, tt.o.Component, tt.o.Operator, tt.o.Value, got, err, tt.want)
		}
	}
}
