package deploy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// imageRef is a container image reference cut as Karmada's imageparser cuts
// it: [registry/]repository[:tag][@digest]. The registry is the first
// path component when it looks like a host (has a "." or a ":", or is
// "localhost"), as Docker decides.
type imageRef struct {
	registry   string // e.g. registry.k8s.io or fictional.registry.example:10443
	repository string // e.g. kube-apiserver or library/nginx
	tag        string // e.g. v1.19.1
	digest     string // e.g. sha256:50d8…
}

// The grammar of distribution's reference package (regexp.go), which
// Karmada's imageparser uses.
var (
	tagRe       = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRe    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}$`)
	pathCompRe  = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainRe    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	maxNameSize = 255
)

// parseImage cuts an image reference, or says why it is not one.
func parseImage(s string) (imageRef, error) {
	var r imageRef
	if s == "" {
		return r, fmt.Errorf("empty image reference")
	}
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.digest = name[:i], name[i+1:]
		if !digestRe.MatchString(r.digest) {
			return r, fmt.Errorf("image %q: invalid digest %q", s, r.digest)
		}
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, r.tag = name[:i], name[i+1:]
		if !tagRe.MatchString(r.tag) {
			return r, fmt.Errorf("image %q: invalid tag %q", s, r.tag)
		}
	}
	if len(name) > maxNameSize {
		return r, fmt.Errorf("image %q: the name is longer than %d characters", s, maxNameSize)
	}
	r.repository = name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if host := name[:i]; strings.ContainsAny(host, ".:") || host == "localhost" {
			r.registry, r.repository = host, name[i+1:]
			if !domainRe.MatchString(r.registry) {
				return r, fmt.Errorf("image %q: invalid registry %q", s, r.registry)
			}
		}
	}
	if r.repository == "" {
		return r, fmt.Errorf("image %q: no repository", s)
	}
	for _, c := range strings.Split(r.repository, "/") {
		if !pathCompRe.MatchString(c) {
			return r, fmt.Errorf("image %q: invalid repository %q (lower-case letters, digits and separators . _ __ - only)", s, r.repository)
		}
	}
	return r, nil
}

func (r imageRef) String() string {
	s := r.repository
	if r.registry != "" {
		s = r.registry + "/" + s
	}
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// setTagOrDigest sets the tag or the digest, whichever v is, and clears the
// other, as Karmada's SetTagOrDigest does.
func (r *imageRef) setTagOrDigest(v string) error {
	switch {
	case tagRe.MatchString(v):
		r.tag, r.digest = v, ""
	case digestRe.MatchString(v):
		r.tag, r.digest = "", v
	default:
		return fmt.Errorf("%q is neither a tag nor a digest", v)
	}
	return nil
}

// overrideImage applies an image overrider to one image, with Karmada's
// semantics (overrideImage in pkg/util/overridemanager/imageoverride.go):
// add appends the value to the component (a registry suffix, a repository
// suffix, a tag suffix), replace sets it, remove clears it; a tag or digest
// replaces the tag or digest. The result must be an image reference.
func overrideImage(cur string, im *api.ImageOverrider) (string, error) {
	r, err := parseImage(cur)
	if err != nil {
		return "", err
	}
	switch im.Operator {
	case api.OverriderOpAdd, api.OverriderOpReplace, api.OverriderOpRemove:
	default:
		return "", fmt.Errorf("unknown operator %q; use add, remove or replace", im.Operator)
	}
	switch im.Component {
	case api.ImageComponentRegistry:
		r.registry = edit(r.registry, im)
	case api.ImageComponentRepository:
		r.repository = edit(r.repository, im)
	case api.ImageComponentTag:
		switch im.Operator {
		case api.OverriderOpRemove:
			// Karmada removes the tag if there is one, else the digest.
			if r.tag != "" {
				r.tag = ""
			} else {
				r.digest = ""
			}
		case api.OverriderOpAdd:
			cur := r.tag
			if cur == "" {
				cur = r.digest
			}
			err = r.setTagOrDigest(cur + im.Value)
		default:
			err = r.setTagOrDigest(im.Value)
		}
		if err != nil {
			return "", fmt.Errorf("image %q: Tag %s: %w", cur, im.Operator, err)
		}
	default:
		return "", fmt.Errorf("unknown component %q; use Registry, Repository or Tag", im.Component)
	}
	out := r.String()
	if _, err := parseImage(out); err != nil {
		return "", fmt.Errorf("image %q: %s %s %q gives %q, which is not an image reference", cur, im.Component, im.Operator, im.Value, out)
	}
	return out, nil
}

func edit(cur string, im *api.ImageOverrider) string {
	switch im.Operator {
	case api.OverriderOpAdd:
		return cur + im.Value
	case api.OverriderOpReplace:
		return im.Value
	}
	return ""
}
