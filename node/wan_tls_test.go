package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// tlsRegionPeer starts a one-peer region with TLS from creds, on real QUIC
// links between regions.
func tlsRegionPeer(t *testing.T, creds *DevCredentials, name string, seeds ...string) *Peer {
	t.Helper()
	cfg := regionConfig(t, t.TempDir(), name, seeds)
	cfg.Insecure = false
	if err := creds.Configure(&cfg); err != nil {
		t.Fatal(err)
	}
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// tlsRegionPair makes a mesh CA and starts regions eu and us, one TLS
// peer each, and waits until they know each other over QUIC.
func tlsRegionPair(t *testing.T) (creds *DevCredentials, eu, us *Peer) {
	t.Helper()
	creds, err := DevCredentialsIn(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	eu = tlsRegionPeer(t, creds, "eu")
	us = tlsRegionPeer(t, creds, "us", eu.WANAddr())
	eventually(t, "eu and us know each other over QUIC", func() error {
		if !knownRegions(eu)["us"] || !knownRegions(us)["eu"] {
			return fmt.Errorf("eu knows %v, us knows %v", knownRegions(eu), knownRegions(us))
		}
		return nil
	})
	return creds, eu, us
}

func knownRegions(p *Peer) map[string]bool {
	out := map[string]bool{}
	p.FSM().Read(func(s *region.State) {
		for _, r := range s.Regions() {
			out[r.GetSummary().GetRegion()] = true
		}
	})
	return out
}

// TestWANLinksRefuseOtherCAsAndClaimsForOtherRegions: over real QUIC with
// mutual TLS, two regions of one mesh find each other; a peer whose
// certificate comes from another CA is refused in the handshake and never
// becomes a region of the mesh; a peer of the mesh that speaks for
// another region than its certificate names, or claims another region's
// cluster, is refused.
func TestWANLinksRefuseOtherCAsAndClaimsForOtherRegions(t *testing.T) {
	creds, eu, _ := tlsRegionPair(t)

	// Another mesh's CA: the handshake fails, eu never hears of it.
	other, err := DevCredentialsIn(filepath.Join(t.TempDir(), "other-tls"))
	if err != nil {
		t.Fatal(err)
	}
	intruder := tlsRegionPeer(t, other, "ap", eu.WANAddr())
	time.Sleep(3 * time.Second)
	if knownRegions(eu)["ap"] || len(knownRegions(intruder)) != 0 {
		t.Fatalf("a peer of another CA joined: eu knows %v, it knows %v", knownRegions(eu), knownRegions(intruder))
	}

	// A peer of the mesh (its certificate names region us) that claims to
	// speak for region ap, or for a cluster of ap, is refused.
	crt, key, err := creds.Peer("us", "us-9")
	if err != nil {
		t.Fatal(err)
	}
	mat, err := transport.LoadFiles(creds.CACert(), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	qc := transport.DefaultQUICConfig()
	qc.BindAddr, qc.TLS = "127.0.0.1:0", mat
	link, err := transport.NewQUICLink(qc)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, req := range map[string]*shoalpb.SyncRequest{
		"another region":           {Region: "ap"},
		"another region's cluster": {Region: "us", Summary: &shoalpb.RegionSummary{Region: "us", Clusters: []*shoalpb.ClusterRecord{{Name: "ap-1", Region: "ap"}}}},
	} {
		_, _, err := link.Call(ctx, eu.WANAddr(), &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Sync{Sync: req}}, transport.CallOptions{Region: "eu"})
		var le *transport.LinkErr
		if !errors.As(err, &le) || le.Code != shoalpb.LinkCode_LINK_CODE_REFUSED {
			t.Errorf("speaking for %s: %v, want REFUSED", name, err)
		}
	}
	if knownRegions(eu)["ap"] {
		t.Error("a refused claim made region ap known")
	}
	if st := eu.StatusView(); st.Mesh == nil || st.Mesh.Refused < 2 {
		t.Errorf("eu's status does not count the refused requests: %+v", st.Mesh)
	}
}
