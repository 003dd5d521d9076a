package transport

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		uri  string
		want Identity
		ok   bool
	}{
		{"shoal://prod/eu/eu-1", PeerIdentity("prod", "eu", "eu-1"), true},
		{"shoal://prod/client/alice", ClientIdentity("prod", "alice"), true},
		{"shoal://prod/eu", Identity{}, false},
		{"shoal://prod/eu/eu-1/x", Identity{}, false},
		{"https://prod/eu/eu-1", Identity{}, false},
		{"shoal://prod:1/eu/eu-1", Identity{}, false},
		{"shoal://Prod/eu/eu-1", Identity{}, false},
		{"shoal://prod/eu/eu-1?x=1", Identity{}, false},
		{"shoal:///eu/eu-1", Identity{}, false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseIdentity(u)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseIdentity(%s) = %+v, %v; want %+v ok=%v", tt.uri, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.URI().String() != tt.uri {
			t.Errorf("URI() = %s, want %s", got.URI(), tt.uri)
		}
	}
}

// material issues a certificate for id from ca and loads it.
func material(t *testing.T, ca *CA, caPEM []byte, id Identity) *Material {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(IssueRequest{Identity: id, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadPEM(caPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTestCA(t *testing.T, mesh string) (*CA, []byte) {
	t.Helper()
	ca, caPEM, _, err := NewCA(mesh, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca, caPEM
}

// handshake runs a TLS handshake between a dialer and a server over a pipe
// and returns the server's and the client's errors.
func handshake(client, server *tls.Config) (serverErr, clientErr error) {
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		srv := tls.Server(s, server)
		err := srv.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refusal on its first read.
			_, err = srv.Write([]byte{1})
		}
		s.Close()
		done <- err
	}()
	cl := tls.Client(c, client)
	err := cl.Handshake()
	if err == nil {
		var b [1]byte
		_, err = cl.Read(b[:])
	}
	c.Close()
	return <-done, err
}

func TestPeerTLSConfigRefusesOtherCAAndRegion(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	eu1 := material(t, ca, caPEM, PeerIdentity("prod", "eu", "eu-1"))
	eu2 := material(t, ca, caPEM, PeerIdentity("prod", "eu", "eu-2"))
	us1 := material(t, ca, caPEM, PeerIdentity("prod", "us", "us-1"))
	alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
	other, otherPEM := newTestCA(t, "prod")
	rogue := material(t, other, otherPEM, PeerIdentity("prod", "eu", "eu-3"))

	if s, c := handshake(eu2.PeerTLSConfig(), eu1.PeerTLSConfig()); s != nil || c != nil {
		t.Fatalf("same region: server %v, client %v", s, c)
	}
	for name, dialer := range map[string]*Material{"other CA": rogue, "other region": us1, "client certificate": alice} {
		cfg := dialer.PeerTLSConfig()
		if dialer == alice {
			cfg.Certificates = []tls.Certificate{alice.Cert}
		}
		s, c := handshake(cfg, eu1.PeerTLSConfig())
		if s == nil || c == nil {
			t.Errorf("%s dialing: server %v, client %v; want both to fail", name, s, c)
		}
	}
	// And the other way round: dialing a server of another CA or region.
	for name, server := range map[string]*Material{"other CA": rogue, "other region": us1} {
		_, c := handshake(eu1.PeerTLSConfig(), server.PeerTLSConfig())
		var verr *tls.CertificateVerificationError
		if !errors.As(c, &verr) {
			t.Errorf("dialing a server of %s: client error %v, want a CertificateVerificationError", name, c)
		}
	}
}

func TestMaterialChecks(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	m := material(t, ca, caPEM, PeerIdentity("prod", "eu", "eu-1"))
	if err := m.CheckPeer("eu", "eu-1"); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckPeer("eu", "eu-2"); !errors.Is(err, ErrIdentity) {
		t.Errorf("CheckPeer of another cluster: %v", err)
	}
	if err := material(t, ca, caPEM, ClientIdentity("prod", "bob")).CheckPeer("client", "bob"); err == nil {
		t.Error("a client certificate passes as a peer's")
	}
	other, otherPEM := newTestCA(t, "prod")
	certPEM, keyPEM, _ := other.Issue(IssueRequest{Identity: PeerIdentity("prod", "eu", "eu-1")}, time.Now())
	if _, err := LoadPEM(caPEM, certPEM, keyPEM); err == nil {
		t.Error("a certificate of another CA loads")
	}
	if _, err := LoadPEM(otherPEM, certPEM, keyPEM); err != nil {
		t.Errorf("with its own CA: %v", err)
	}
	if _, _, err := ca.Issue(IssueRequest{Identity: PeerIdentity("test", "eu", "eu-1")}, time.Now()); err == nil {
		t.Error("issued for another mesh")
	}
	if _, _, err := ca.Issue(IssueRequest{Identity: PeerIdentity("prod", "client", "x")}, time.Now()); err == nil {
		t.Error("issued a peer of region \"client\"")
	}
}

func TestInitCAFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := InitCA(dir, "prod", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(dir, "prod", time.Now()); err == nil {
		t.Fatal("InitCA overwrote a CA")
	}
	ca, err := LoadCA(dir)
	if err != nil || ca.Mesh != "prod" {
		t.Fatalf("LoadCA: %v %+v", err, ca)
	}
	if got := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); got < CAValidity {
		t.Errorf("CA valid for %v", got)
	}
	certPEM, keyPEM, err := ca.Issue(IssueRequest{Identity: PeerIdentity("prod", "eu", "eu-1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePair(dir, "eu-eu-1", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if err := WritePair(dir, "eu-eu-1", certPEM, keyPEM); err == nil {
		t.Error("WritePair overwrote a pair")
	}
	for _, f := range []string{"ca.key", "eu-eu-1.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, st.Mode().Perm())
		}
	}
	if _, err := LoadFiles(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "eu-eu-1.crt"), filepath.Join(dir, "eu-eu-1.key")); err != nil {
		t.Error(err)
	}
}

func TestWANTLSConfigAcceptsEveryRegionOfTheMesh(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	eu1 := material(t, ca, caPEM, PeerIdentity("prod", "eu", "eu-1"))
	us1 := material(t, ca, caPEM, PeerIdentity("prod", "us", "us-1"))
	alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
	other, otherPEM := newTestCA(t, "prod")
	rogue := material(t, other, otherPEM, PeerIdentity("prod", "eu", "eu-3"))
	test, testPEM := newTestCA(t, "test")
	stranger := material(t, test, testPEM, PeerIdentity("test", "eu", "eu-1"))

	if s, c := handshake(us1.WANTLSConfig(), eu1.WANTLSConfig()); s != nil || c != nil {
		t.Fatalf("another region of the mesh: server %v, client %v", s, c)
	}
	for name, dialer := range map[string]*Material{"other CA": rogue, "other mesh": stranger, "client certificate": alice} {
		cfg := dialer.WANTLSConfig()
		cfg.Certificates = []tls.Certificate{dialer.Cert}
		if s, c := handshake(cfg, eu1.WANTLSConfig()); s == nil || c == nil {
			t.Errorf("%s dialing: server %v, client %v; want both to fail", name, s, c)
		}
	}
	for name, server := range map[string]*Material{"other CA": rogue, "other mesh": stranger} {
		_, c := handshake(eu1.WANTLSConfig(), server.WANTLSConfig())
		var verr *tls.CertificateVerificationError
		if !errors.As(c, &verr) {
			t.Errorf("dialing a server of %s: client error %v, want a CertificateVerificationError", name, c)
		}
	}
	// PeerTLSConfig still refuses the other region.
	if s, c := handshake(us1.PeerTLSConfig(), eu1.PeerTLSConfig()); s == nil || c == nil {
		t.Errorf("PeerTLSConfig across regions: server %v, client %v; want both to fail", s, c)
	}
	if got := eu1.WANTLSConfig().NextProtos; len(got) != 1 || got[0] != WANProtocol {
		t.Errorf("NextProtos %v", got)
	}
}
