package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// File names in a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Validity defaults.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 365 * 24 * time.Hour
)

// clockSkew backdates NotBefore so that a peer whose clock is a little
// behind accepts a fresh certificate.
const clockSkew = 5 * time.Minute

// CA is the mesh's certificate authority with its signing key.
type CA struct {
	Mesh string
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a CA for mesh: an ECDSA P-256 key and a self-signed
// certificate valid for CAValidity that names the mesh as shoal://MESH.
// It returns the CA and its certificate and key in PEM.
func NewCA(mesh string, now time.Time) (ca *CA, certPEM, keyPEM []byte, err error) {
	if err := CheckName("mesh", mesh); err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "shoal mesh " + mesh + " CA", Organization: []string{"shoal"}},
		URIs:                  []*url.URL{{Scheme: Scheme, Host: mesh}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return &CA{Mesh: mesh, Cert: cert, Key: key}, encodeCert(der), keyPEM, nil
}

// IssueRequest says what certificate to issue.
type IssueRequest struct {
	Identity Identity
	// IPs and DNSNames are the addresses the holder is reached at (peers;
	// clients usually have none).
	IPs      []net.IP
	DNSNames []string
	// Validity; 0 means CertValidity. It is cut to the CA's expiry.
	Validity time.Duration
}

// Issue signs a new ECDSA P-256 key for req.Identity, which must be of the
// CA's mesh. A peer's certificate is good for server and client
// authentication, a client's for client authentication only. It returns
// the certificate and key in PEM.
func (ca *CA) Issue(req IssueRequest, now time.Time) (certPEM, keyPEM []byte, err error) {
	id := req.Identity
	if err := id.Validate(); err != nil {
		return nil, nil, err
	}
	if id.Mesh != ca.Mesh {
		return nil, nil, fmt.Errorf("identity %s is not of the CA's mesh %q", id, ca.Mesh)
	}
	validity := req.Validity
	if validity == 0 {
		validity = CertValidity
	}
	if validity < 0 {
		return nil, nil, fmt.Errorf("validity %v must be positive", validity)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	cn := "shoal peer " + id.Region + "/" + id.Cluster
	if !id.IsPeer() {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		cn = "shoal client " + id.Client
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"shoal"}, OrganizationalUnit: []string{id.Mesh}},
		URIs:         []*url.URL{id.URI()},
		IPAddresses:  req.IPs,
		DNSNames:     req.DNSNames,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// InitCA creates a new CA for mesh in dir (ca.crt, and ca.key readable by
// the owner only). It refuses to overwrite an existing CA.
func InitCA(dir, mesh string, now time.Time) (*CA, error) {
	ca, certPEM, keyPEM, err := NewCA(mesh, now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("%s already exists: a mesh has one CA; remove it first to start a new mesh", filepath.Join(dir, f))
		}
	}
	if err := WritePair(dir, "ca", certPEM, keyPEM); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads the CA (certificate and key) from dir.
func LoadCA(dir string) (*CA, error) {
	cert, err := ReadCertFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	mesh, err := meshOfCA(cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", filepath.Join(dir, CAKeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", filepath.Join(dir, CAKeyFile))
	}
	return &CA{Mesh: mesh, Cert: cert, Key: signer}, nil
}

// WritePair writes NAME.crt (mode 0644) and NAME.key (mode 0600) in dir;
// it refuses to overwrite either.
func WritePair(dir, name string, certPEM, keyPEM []byte) error {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for _, f := range []string{crt, key} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s already exists; remove it first to issue a new one", f)
		}
	}
	if err := writeNew(key, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(crt, certPEM, 0o644); err != nil {
		_ = os.Remove(key)
		return err
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// ReadCertFile reads the first certificate of a PEM file.
func ReadCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// ParseCertPEM parses the first certificate of PEM data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}
