package deploy

import (
	// The digest algorithms reference.Parse accepts are those linked in,
	// as in Karmada's imageparser.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"

	"github.com/shoalmesh/shoal/api"
)

// imageRef is a container image reference cut as Karmada's imageparser
// (pkg/util/imageparser) cuts it: [registry/]repository[:tag|@digest]. It
// holds a tag or a digest, never both: of a reference with both, the digest
// is dropped, so any override of such an image loses its digest pin, as in
// Karmada. The registry is the first path component when it looks like a
// host (has a "." or a ":", or is "localhost").
type imageRef struct {
	registry   string // e.g. registry.k8s.io or fictional.registry.example:10443
	repository string // e.g. kube-apiserver or library/nginx
	tag        string // e.g. v1.19.1
	digest     string // e.g. sha256:50d8…
}

// The anchored tag and digest grammars of distribution's reference package.
var (
	anchoredTag    = regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`)
	anchoredDigest = regexp.MustCompile(`^` + reference.DigestRegexp.String() + `$`)
)

// parseImage cuts an image reference, or says why it is not one.
func parseImage(s string) (imageRef, error) {
	ref, err := reference.Parse(s)
	if err != nil {
		return imageRef{}, fmt.Errorf("image %q: %v", s, err)
	}
	var r imageRef
	if named, ok := ref.(reference.Named); ok {
		r.registry, r.repository = splitRegistry(named.Name())
	}
	if tagged, ok := ref.(reference.Tagged); ok {
		r.tag = tagged.Tag()
	} else if digested, ok := ref.(reference.Digested); ok {
		r.digest = digested.Digest().String()
	}
	return r, nil
}

// splitRegistry cuts a reference name at its first "/" when what comes
// before looks like a host.
func splitRegistry(name string) (registry, repository string) {
	host, rest, found := strings.Cut(name, "/")
	if !found || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		return "", name
	}
	return host, rest
}

// String prints the reference as Karmada does, whatever its parts hold:
// the result of an override is not checked (a removed repository gives
// "registry.example/:v1").
func (r imageRef) String() string {
	s := r.repository
	if r.registry != "" {
		s = r.registry + "/" + s
	}
	switch {
	case r.tag != "":
		s += ":" + r.tag
	case r.digest != "":
		s += "@" + r.digest
	}
	return s
}

// setTagOrDigest sets the tag or the digest, whichever v is, and clears the
// other; a v that is neither changes nothing (Karmada's SetTagOrDigest).
func (r *imageRef) setTagOrDigest(v string) {
	switch {
	case anchoredTag.MatchString(v):
		r.tag, r.digest = v, ""
	case anchoredDigest.MatchString(v):
		r.tag, r.digest = "", v
	}
}

// overrideImage applies an image overrider to one image, with Karmada's
// semantics (overrideImage in pkg/util/overridemanager/imageoverride.go):
// add appends the value to the component (a registry suffix, a repository
// suffix, a tag suffix), replace sets it, remove clears it; for the Tag
// component the value may be a tag or a digest and replaces either. Only an
// image that does not parse is an error; what the override makes of it is
// written as it comes, as Karmada writes it.
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
			// The tag if there is one, else the digest.
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
			r.setTagOrDigest(cur + im.Value)
		default:
			r.setTagOrDigest(im.Value)
		}
	default:
		return "", fmt.Errorf("unknown component %q; use Registry, Repository or Tag", im.Component)
	}
	return r.String(), nil
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
