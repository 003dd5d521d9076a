package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/node"
)

func TestCAAndATLSPeer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := shoal(args...)
		if code != 0 {
			t.Fatalf("shoal %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	mustRun("ca", "init", "--dir", dir, "--mesh", "prod")
	if code, _, errOut := shoal("ca", "init", "--dir", dir, "--mesh", "prod"); code != 1 {
		t.Fatalf("a second ca init: exit %d, want 1: %s", code, errOut)
	} else {
		wantIn(t, "second ca init", errOut, "already exists")
	}
	out := mustRun("ca", "issue", "--dir", dir, "--region", "eu", "--cluster", "eu-1", "--ip", "127.0.0.1")
	wantIn(t, "issue output", out, "shoal://prod/eu/eu-1")
	mustRun("ca", "issue", "--dir", dir, "--client", "alice")
	for args, want := range map[string][]string{
		"no identity":   {"ca", "issue", "--dir", dir},
		"client region": {"ca", "issue", "--dir", dir, "--region", "client", "--cluster", "x"},
		"bad ip":        {"ca", "issue", "--dir", dir, "--region", "eu", "--cluster", "eu-2", "--ip", "nowhere"},
	} {
		if code, _, _ := shoal(want...); code != 2 {
			t.Errorf("%s: exit %d, want 2", args, code)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "eu-eu-1.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("peer key: %v, mode %v", err, st.Mode().Perm())
	}

	cfg := node.DefaultConfig()
	cfg.Region, cfg.Cluster = "eu", "eu-1"
	cfg.DataDir = filepath.Join(t.TempDir(), "eu-1")
	cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = 0, 0, 0, 0
	cfg.Gossip = gossip.ProfileLocal
	cfg.BootstrapExpect = 1
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.TLSCA = filepath.Join(dir, "ca.crt")
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "eu-eu-1.crt"), filepath.Join(dir, "eu-eu-1.key")
	cfg.GossipKey = []byte("0123456789abcdef")
	p, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	alice := client.Options{CACert: cfg.TLSCA, ClientCert: filepath.Join(dir, "client-alice.crt"), ClientKey: filepath.Join(dir, "client-alice.key")}
	c, err := client.NewWith(p.URL(), alice)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}

	out = mustRun("--server", p.URL(), "--ca-cert", alice.CACert, "--client-cert", alice.ClientCert, "--client-key", alice.ClientKey, "status")
	wantIn(t, "status over TLS", out, "eu-1")

	code, _, errOut := shoal("--server", p.URL(), "--ca-cert", alice.CACert, "status")
	if code != 1 {
		t.Fatalf("status without a client certificate: exit %d, want 1: %s", code, errOut)
	}
	wantIn(t, "status without a client certificate", errOut, "unauthorized")

	// The environment works as the flags do.
	t.Setenv("SHOAL_CACERT", alice.CACert)
	t.Setenv("SHOAL_CLIENT_CERT", alice.ClientCert)
	t.Setenv("SHOAL_CLIENT_KEY", alice.ClientKey)
	mustRun("--server", p.URL(), "get", "clusters")
}
