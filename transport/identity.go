package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Scheme is the URI scheme of mesh identities.
const Scheme = "shoal"

// ClientRegion is the path segment that marks a CLI identity
// (shoal://MESH/client/NAME); no region may be called so.
const ClientRegion = "client"

// ErrIdentity is returned when a certificate does not name a mesh identity
// of the expected kind (peer or client), mesh or region.
var ErrIdentity = errors.New("pki: certificate identity refused")

var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// CheckName checks that s is a DNS label (lower-case letters, digits and
// '-', at most 63), as mesh, region, cluster and client names must be.
func CheckName(what, s string) error {
	if len(s) > 63 || !labelRE.MatchString(s) {
		return fmt.Errorf("%s %q must be a DNS label (lower-case letters, digits and '-', at most 63)", what, s)
	}
	return nil
}

// Identity is who a certificate speaks for: a peer (Region and Cluster
// set) or a CLI client (Client set), always in one Mesh.
type Identity struct {
	Mesh    string
	Region  string
	Cluster string
	Client  string
}

// PeerIdentity is the identity of the peer of cluster in region.
func PeerIdentity(mesh, region, cluster string) Identity {
	return Identity{Mesh: mesh, Region: region, Cluster: cluster}
}

// ClientIdentity is the identity of a CLI user.
func ClientIdentity(mesh, name string) Identity {
	return Identity{Mesh: mesh, Client: name}
}

// IsPeer reports whether the identity is a peer's.
func (id Identity) IsPeer() bool { return id.Client == "" }

// URI is the identity as it appears in a certificate.
func (id Identity) URI() *url.URL {
	if id.IsPeer() {
		return &url.URL{Scheme: Scheme, Host: id.Mesh, Path: "/" + id.Region + "/" + id.Cluster}
	}
	return &url.URL{Scheme: Scheme, Host: id.Mesh, Path: "/" + ClientRegion + "/" + id.Client}
}

func (id Identity) String() string { return id.URI().String() }

// Validate checks every name of the identity.
func (id Identity) Validate() error {
	errs := []error{CheckName("mesh", id.Mesh)}
	if id.IsPeer() {
		errs = append(errs, CheckName("region", id.Region), CheckName("cluster", id.Cluster))
		if id.Region == ClientRegion {
			errs = append(errs, fmt.Errorf("region %q is reserved for CLI certificates", ClientRegion))
		}
	} else {
		errs = append(errs, CheckName("client", id.Client))
		if id.Region != "" || id.Cluster != "" {
			errs = append(errs, errors.New("a client identity has no region or cluster"))
		}
	}
	return errors.Join(errs...)
}

// ParseIdentity parses shoal://MESH/REGION/CLUSTER or
// shoal://MESH/client/NAME.
func ParseIdentity(u *url.URL) (Identity, error) {
	if u.Scheme != Scheme || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return Identity{}, fmt.Errorf("%w: %q is not a shoal://MESH/REGION/CLUSTER URI", ErrIdentity, u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 {
		return Identity{}, fmt.Errorf("%w: %q is not a shoal://MESH/REGION/CLUSTER URI", ErrIdentity, u)
	}
	id := PeerIdentity(u.Host, parts[0], parts[1])
	if parts[0] == ClientRegion {
		id = ClientIdentity(u.Host, parts[1])
	}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%w: %q: %v", ErrIdentity, u, err)
	}
	return id, nil
}

// IdentityOf returns the identity a certificate carries: its one shoal://
// URI. It does not verify the certificate.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == Scheme {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return Identity{}, fmt.Errorf("%w: certificate %q has %d shoal:// URIs, want exactly one", ErrIdentity, cert.Subject.CommonName, len(found))
	}
	return ParseIdentity(found[0])
}

// meshOfCA returns the mesh named by a CA certificate's shoal://MESH URI.
func meshOfCA(ca *x509.Certificate) (string, error) {
	for _, u := range ca.URIs {
		if u.Scheme == Scheme && (u.Path == "" || u.Path == "/") {
			if err := CheckName("mesh", u.Host); err != nil {
				return "", fmt.Errorf("%w: CA certificate: %v", ErrIdentity, err)
			}
			return u.Host, nil
		}
	}
	return "", fmt.Errorf("%w: CA certificate %q names no mesh (no shoal://MESH URI); create it with shoal ca init", ErrIdentity, ca.Subject.CommonName)
}
