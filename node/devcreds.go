package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/transport"
)

// DevMesh is the mesh name of the credentials the dev modes make.
const DevMesh = "dev"

// DevCredentials are what the dev modes (shoal dev, shoal agent -dev,
// shoal demo) make for themselves so that they run secure by default, as
// a production mesh does: a mesh CA, a certificate per peer (for
// 127.0.0.1 and localhost), a bearer token for the CLI with every scope,
// and a gossip key per region. They live in one directory and are reused
// when it already holds them (shoal dev --dir reused across runs).
type DevCredentials struct {
	// Dir holds ca.crt, ca.key, REGION-CLUSTER.crt/.key, tokens, token and
	// gossip-REGION.key.
	Dir string
	// Token is the CLI's bearer token (read, write and admin).
	Token string

	mu sync.Mutex
	ca *transport.CA
}

// DevCredentialsIn makes (or loads) the dev credentials in dir.
func DevCredentialsIn(dir string) (*DevCredentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &DevCredentials{Dir: dir}
	var err error
	if _, serr := os.Stat(filepath.Join(dir, transport.CACertFile)); serr == nil {
		d.ca, err = transport.LoadCA(dir)
	} else {
		d.ca, err = transport.InitCA(dir, DevMesh, time.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("dev credentials: %w", err)
	}
	if d.Token, err = readOrMake(filepath.Join(dir, "token"), func() (string, error) { return randomHex(24) }); err != nil {
		return nil, fmt.Errorf("dev credentials: %w", err)
	}
	tokens := fmt.Sprintf("# The dev modes' CLI token, with every scope.\n%s read,write,admin\n", d.Token)
	if err := os.WriteFile(d.TokenFile(), []byte(tokens), 0o600); err != nil {
		return nil, fmt.Errorf("dev credentials: %w", err)
	}
	return d, nil
}

// CACert is the path of the mesh CA's certificate.
func (d *DevCredentials) CACert() string { return filepath.Join(d.Dir, transport.CACertFile) }

// TokenFile is the path of the peers' --http-token-file.
func (d *DevCredentials) TokenFile() string { return filepath.Join(d.Dir, "tokens") }

// Peer returns the certificate and key files of the peer of cluster in
// region, issuing them on first use.
func (d *DevCredentials) Peer(region, cluster string) (cert, key string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := region + "-" + cluster
	cert, key = filepath.Join(d.Dir, name+".crt"), filepath.Join(d.Dir, name+".key")
	if _, err := os.Stat(cert); err == nil {
		return cert, key, nil
	}
	certPEM, keyPEM, err := d.ca.Issue(transport.IssueRequest{
		Identity: transport.PeerIdentity(d.ca.Mesh, region, cluster),
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames: []string{"localhost"},
	}, time.Now())
	if err != nil {
		return "", "", fmt.Errorf("dev credentials: %w", err)
	}
	if err := transport.WritePair(d.Dir, name, certPEM, keyPEM); err != nil {
		return "", "", fmt.Errorf("dev credentials: %w", err)
	}
	return cert, key, nil
}

// GossipKey returns the base64 gossip key of region, made on first use.
func (d *DevCredentials) GossipKey(region string) (string, error) {
	return readOrMake(filepath.Join(d.Dir, "gossip-"+region+".key"), func() (string, error) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(k), nil
	})
}

// AgentArgs are the shoal agent flags that run the peer of cluster in
// region with these credentials.
func (d *DevCredentials) AgentArgs(region, cluster string) ([]string, error) {
	cfg := Config{Region: region, Cluster: cluster}
	if err := d.Configure(&cfg); err != nil {
		return nil, err
	}
	return []string{"--tls-ca", cfg.TLSCA, "--tls-cert", cfg.TLSCert, "--tls-key", cfg.TLSKey,
		"--http-token-file", cfg.HTTPTokenFile, "--gossip-key", base64.StdEncoding.EncodeToString(cfg.GossipKey)}, nil
}

// Configure gives the peer of cfg.Region and cfg.Cluster its certificate,
// the CA, the token file and the region's gossip key, so that it runs
// with TLS as production peers do.
func (d *DevCredentials) Configure(cfg *Config) error {
	cert, key, err := d.Peer(cfg.Region, cfg.Cluster)
	if err != nil {
		return err
	}
	gk, err := d.GossipKey(cfg.Region)
	if err != nil {
		return err
	}
	if cfg.GossipKey, err = base64.StdEncoding.DecodeString(gk); err != nil {
		return fmt.Errorf("dev credentials: gossip key of %s: %w", cfg.Region, err)
	}
	cfg.TLSCA, cfg.TLSCert, cfg.TLSKey, cfg.HTTPTokenFile = d.CACert(), cert, key, d.TokenFile()
	return nil
}

// ClientOptions reach a dev peer's HTTPS API.
func (d *DevCredentials) ClientOptions() client.Options {
	return client.Options{CACert: d.CACert(), Token: d.Token}
}

// Env is the shell lines that point the CLI at server with these
// credentials.
func (d *DevCredentials) Env(server string) string {
	return fmt.Sprintf("export SHOAL_SERVER=%s\nexport SHOAL_CACERT=%s\nexport SHOAL_TOKEN=%s\n",
		shellQuote(server), shellQuote(d.CACert()), d.Token)
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, " \t'\"$`\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// readOrMake returns the trimmed content of path, or writes make()'s
// result there (mode 0600) first.
func readOrMake(path string, make func() (string, error)) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(data)); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
