package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/transport"
)

// testPKI writes a mesh CA in dir and issues certificates from it.
type testPKI struct {
	t   testing.TB
	dir string
	ca  *transport.CA
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := transport.InitCA(dir, "prod", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, dir: dir, ca: ca}
}

// issue writes NAME.crt and NAME.key for id and returns their paths.
func (k *testPKI) issue(name string, id transport.Identity) (crt, key string) {
	k.t.Helper()
	certPEM, keyPEM, err := k.ca.Issue(transport.IssueRequest{Identity: id, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
	if err != nil {
		k.t.Fatal(err)
	}
	if err := transport.WritePair(k.dir, name, certPEM, keyPEM); err != nil {
		k.t.Fatal(err)
	}
	return filepath.Join(k.dir, name+".crt"), filepath.Join(k.dir, name+".key")
}

func (k *testPKI) caFile() string { return filepath.Join(k.dir, transport.CACertFile) }

func TestTLSPeerAuthorizesCertificatesAndTokens(t *testing.T) {
	k := newTestPKI(t)
	crt, key := k.issue("eu-eu-1", transport.PeerIdentity("prod", "eu", "eu-1"))
	tokens := filepath.Join(k.dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# operators\n\ns3cret-one\ns3cret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMeshWith(t, func(c *Config) {
		c.TLSCA, c.TLSCert, c.TLSKey, c.HTTPTokenFile = k.caFile(), crt, key, tokens
	}, "eu-1")
	p := m.peers["eu-1"]
	if !strings.HasPrefix(p.URL(), "https://") {
		t.Fatalf("URL %s is not https", p.URL())
	}
	aliceCrt, aliceKey := k.issue("client-alice", transport.ClientIdentity("prod", "alice"))
	dial := func(o client.Options) *client.Client {
		t.Helper()
		c, err := client.NewWith(p.URL(), o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := dial(client.Options{CACert: k.caFile(), ClientCert: aliceCrt, ClientKey: aliceKey})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := alice.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}

	// Health stays open, for probes.
	anon := dial(client.Options{CACert: k.caFile()})
	if err := anon.Health(ctx); err != nil {
		t.Errorf("health without credentials: %v", err)
	}
	tests := []struct {
		name string
		c    *client.Client
		want int // 0: answered
	}{
		{"client certificate of the mesh", alice, 0},
		{"the peer's own certificate", dial(client.Options{CACert: k.caFile(), ClientCert: crt, ClientKey: key}), 0},
		{"listed token", dial(client.Options{CACert: k.caFile(), Token: "s3cret-two"}), 0},
		{"no credentials", anon, http.StatusUnauthorized},
		{"unknown token", dial(client.Options{CACert: k.caFile(), Token: "s3cret"}), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		_, err := tt.c.Status(ctx)
		var apiErr *client.APIError
		switch {
		case tt.want == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.want):
			t.Errorf("%s: %v, want status %d", tt.name, err, tt.want)
		case tt.want != 0 && !strings.Contains(apiErr.Message, "unauthorized"):
			t.Errorf("%s: message %q does not say why", tt.name, apiErr.Message)
		}
	}
	// Writes too.
	if _, err := anon.Apply(ctx, []byte(configMap("x"))); err == nil {
		t.Error("an anonymous apply was accepted")
	}

	// A client certificate of another CA fails the handshake.
	other := newTestPKI(t)
	mCrt, mKey := other.issue("client-mallory", transport.ClientIdentity("prod", "mallory"))
	_, err := dial(client.Options{CACert: k.caFile(), ClientCert: mCrt, ClientKey: mKey}).Status(ctx)
	var apiErr *client.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("client certificate of another CA: %v, want a failed handshake", err)
	}
	// Plain http to the TLS port gets nothing useful.
	if _, err := client.NewWith(strings.Replace(p.URL(), "https", "http", 1), client.Options{Token: "s3cret-one"}); err == nil {
		t.Error("a token would be sent over plain http")
	}
}

func TestTLSPeerRefusesToStartWithAWrongCertificate(t *testing.T) {
	k := newTestPKI(t)
	crt, key := k.issue("eu-eu-2", transport.PeerIdentity("prod", "eu", "eu-2"))
	other := newTestPKI(t)
	oCrt, oKey := other.issue("eu-eu-1", transport.PeerIdentity("prod", "eu", "eu-1"))
	okCrt, okKey := k.issue("eu-eu-1", transport.PeerIdentity("prod", "eu", "eu-1"))
	badTokens := filepath.Join(k.dir, "tokens")
	writeFile(t, badTokens, "s3cret root\n")
	tests := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"another cluster's certificate": {func(c *Config) { c.TLSCA, c.TLSCert, c.TLSKey = k.caFile(), crt, key }, "shoal ca issue --region eu --cluster eu-1"},
		"another CA":                    {func(c *Config) { c.TLSCA, c.TLSCert, c.TLSKey = k.caFile(), oCrt, oKey }, "does not chain"},
		"not all three":                 {func(c *Config) { c.TLSCA, c.TLSCert = k.caFile(), crt }, "all three"},
		"token without TLS":             {func(c *Config) { c.HTTPTokenFile = "tokens" }, "needs TLS"},
		"client scopes without TLS":     {func(c *Config) { c.HTTPClientScopesFile = "clients" }, "--http-client-scopes needs TLS"},
		"TLS without a gossip key": {func(c *Config) {
			c.TLSCA, c.TLSCert, c.TLSKey, c.GossipKey = k.caFile(), okCrt, okKey, nil
		}, "needs a gossip key"},
		"neither TLS nor --insecure": {func(c *Config) { c.Insecure = false }, "refusing to start without TLS and a gossip key"},
		"a gossip key but no TLS":    {func(c *Config) { c.Insecure = false }, "--insecure"},
		"a token with an unknown scope": {func(c *Config) {
			c.TLSCA, c.TLSCert, c.TLSKey, c.HTTPTokenFile = k.caFile(), okCrt, okKey, badTokens
		}, `unknown scope "root"`},
	}
	for name, tt := range tests {
		cfg := peerConfig(t, t.TempDir(), "eu-1", 1, nil, nil)
		tt.mod(&cfg)
		p, err := Start(cfg)
		if err == nil {
			_ = p.Shutdown()
			t.Errorf("%s: the peer started", name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, tt.want)
		}
	}
}
