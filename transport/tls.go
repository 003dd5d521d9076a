package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Material is a certificate and key with the mesh CA that issued it,
// checked when loaded.
type Material struct {
	// Mesh is the mesh named by the CA.
	Mesh string
	// Identity is who the certificate speaks for.
	Identity Identity
	// Pool holds the mesh CA only: the one root every other side's
	// certificate must chain to.
	Pool *x509.CertPool
	// Cert is the certificate (Leaf set) and key to present.
	Cert tls.Certificate
}

// LoadFiles reads a CA certificate, a certificate and its key (PEM files)
// and checks them as LoadPEM does.
func LoadFiles(caFile, certFile, keyFile string) (*Material, error) {
	var data [3][]byte
	for i, f := range []string{caFile, certFile, keyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	m, err := LoadPEM(data[0], data[1], data[2])
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	return m, nil
}

// LoadPEM checks that cert and key belong together, that cert chains to
// the CA (and is valid now), and that it names an identity of the CA's
// mesh.
func LoadPEM(caPEM, certPEM, keyPEM []byte) (*Material, error) {
	ca, err := ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("CA certificate %q is not a CA", ca.Subject.CommonName)
	}
	mesh, err := meshOfCA(ca)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	m := &Material{Mesh: mesh, Pool: pool, Cert: pair}
	if err := m.verifyChain(chainOf(pair), x509.ExtKeyUsageAny); err != nil {
		return nil, err
	}
	m.Identity, err = IdentityOf(pair.Leaf)
	if err != nil {
		return nil, err
	}
	if m.Identity.Mesh != mesh {
		return nil, fmt.Errorf("%w: certificate names mesh %q, the CA mesh %q", ErrIdentity, m.Identity.Mesh, mesh)
	}
	return m, nil
}

// CheckPeer checks that the certificate is the peer certificate of cluster
// in region, as a peer must present.
func (m *Material) CheckPeer(region, cluster string) error {
	want := PeerIdentity(m.Mesh, region, cluster)
	if m.Identity != want {
		return fmt.Errorf("%w: the certificate is for %s, this peer is %s: issue one with shoal ca issue --region %s --cluster %s",
			ErrIdentity, m.Identity, want, region, cluster)
	}
	return m.verifyChain(chainOf(m.Cert), x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// PeerTLSConfig is the tls.Config of a peer's Raft port, for both sides of
// a connection: TLS 1.3, each side presents its peer certificate, and each
// accepts the other only if its chain leads to the mesh CA, it is a peer
// certificate (server and client authentication) and it names a peer of
// the same mesh and the same region as this one. Host names are not
// checked: Raft dials addresses, and the URI is what names a peer.
func (m *Material) PeerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.Cert},
		RootCAs:      m.Pool,
		ClientCAs:    m.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// The dialing side has no host name to check; VerifyConnection
		// verifies the chain and the identity on both sides instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return m.verifyPeer(cs.PeerCertificates, true)
		},
	}
}

// WANProtocol is the ALPN protocol of the links between regions.
const WANProtocol = "shoal-wan/1"

// WANTLSConfig is the tls.Config of a peer's end of the links between
// regions (QUICLink), for both sides of a connection. It is PeerTLSConfig
// with two differences: the other side may be a peer of any region of the
// mesh, since these links join regions, and the ALPN protocol is
// WANProtocol. A CLI client certificate, a certificate of another CA or
// another mesh is refused as there. The check also runs on a resumed
// session, against the certificates the session ticket carries.
func (m *Material) WANTLSConfig() *tls.Config {
	c := m.PeerTLSConfig()
	c.NextProtos = []string{WANProtocol}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		return m.verifyPeer(cs.PeerCertificates, false)
	}
	return c
}

// ServerTLSConfig is the tls.Config of a peer's HTTPS API: the peer
// certificate, and a client certificate verified against the mesh CA if
// one is given (a certificate of another CA fails the handshake). Whether
// a request may go on is up to the handler (MeshIdentity, or a token).
func (m *Material) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{m.Cert},
		ClientCAs:    m.Pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
}

// MeshIdentity returns the identity of a connection's verified client
// certificate if it is one of the mesh (a peer or a client); ok is false
// without a verified certificate or for another mesh.
func (m *Material) MeshIdentity(cs *tls.ConnectionState) (id Identity, ok bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	id, err := IdentityOf(cs.VerifiedChains[0][0])
	if err != nil || id.Mesh != m.Mesh {
		return Identity{}, false
	}
	return id, true
}

// verifyPeer is the check of PeerTLSConfig (sameRegion) and WANTLSConfig.
// Its errors are *tls.CertificateVerificationError wrapping ErrIdentity or
// the chain's error, so that a transport can tell a refused certificate
// from a broken connection.
func (m *Material) verifyPeer(certs []*x509.Certificate, sameRegion bool) error {
	refuse := func(err error) error {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	if len(certs) == 0 {
		return refuse(errors.New("no certificate presented"))
	}
	if err := m.verifyChain(certs, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		return refuse(err)
	}
	id, err := IdentityOf(certs[0])
	if err != nil {
		return refuse(err)
	}
	switch {
	case !id.IsPeer():
		return refuse(fmt.Errorf("%w: %s is not a peer", ErrIdentity, id))
	case id.Mesh != m.Mesh:
		return refuse(fmt.Errorf("%w: %s is of another mesh than %q", ErrIdentity, id, m.Mesh))
	case sameRegion && id.Region != m.Identity.Region:
		return refuse(fmt.Errorf("%w: %s is of another region than %q", ErrIdentity, id, m.Identity.Region))
	}
	return nil
}

// verifyChain verifies that certs (leaf first, then intermediates) chain to
// the mesh CA now, and that the leaf is good for every one of usages.
func (m *Material) verifyChain(certs []*x509.Certificate, usages ...x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, u := range usages {
		opts := x509.VerifyOptions{Roots: m.Pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u}}
		if _, err := certs[0].Verify(opts); err != nil {
			return fmt.Errorf("certificate %q does not chain to the CA of mesh %q: %w", certs[0].Subject.CommonName, m.Mesh, err)
		}
	}
	return nil
}

// chainOf returns a key pair's certificates, parsed, leaf first.
func chainOf(pair tls.Certificate) []*x509.Certificate {
	out := []*x509.Certificate{pair.Leaf}
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			out = append(out, c)
		}
	}
	return out
}
