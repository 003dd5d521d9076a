package node

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/region"
)

// meshPeerOf describes an in-process peer as a MeshPeer.
func meshPeerOf(p *Peer) MeshPeer {
	c := p.Config()
	return MeshPeer{Region: c.Region, Cluster: c.Cluster, HTTP: p.URL(), WAN: p.WANAddr(), Raft: p.Raft().Addr()}
}

// checkForgeResults fails the test unless there are want results, every
// forged attempt was refused and every control accepted, and controls
// number wantControls.
func checkForgeResults(t *testing.T, rs []ForgeResult, want, wantControls int) {
	t.Helper()
	controls := 0
	for _, r := range rs {
		t.Logf("%s: forged %v, refused %v, accepted %v, %s", r.Attempt, r.Forged, r.Refused, r.Accepted, r.Err)
		if !r.OK() {
			t.Errorf("%s: forged %v but refused %v, accepted %v: %s", r.Attempt, r.Forged, r.Refused, r.Accepted, r.Err)
		}
		if !r.Forged {
			controls++
		}
	}
	if len(rs) != want || controls != wantControls {
		t.Errorf("%d attempts (%d controls), want %d (%d)", len(rs), controls, want, wantControls)
	}
}

// TestProbeForgedIdentityBetweenRegions runs the probe over real QUIC with
// mutual TLS: a peer of us that claims another region, or lists eu's
// cluster as its own, is refused by eu; its truthful heartbeat is
// accepted, so the refusals are eu's checks and not a link that fails.
// Nothing the forged requests carried took effect.
func TestProbeForgedIdentityBetweenRegions(t *testing.T) {
	creds, eu, us := tlsRegionPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := ProbeForgedIdentity(ctx, creds, ForgeIdentity{Region: "us", Cluster: us.Config().Cluster}, meshPeerOf(eu))
	if err != nil {
		t.Fatal(err)
	}
	checkForgeResults(t, rs, 3, 1)
	probe := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "shoal-forged-probe"}
	eu.FSM().Read(func(s *region.State) {
		if s.Object(probe) != nil {
			t.Error("the forged object was merged")
		}
		for _, c := range s.Region("us").GetSummary().GetClusters() {
			if c.GetRegion() != "us" {
				t.Errorf("us's summary holds cluster %s of region %s", c.GetName(), c.GetRegion())
			}
		}
	})
	for r := range knownRegions(eu) {
		if strings.HasPrefix(r, "forged") {
			t.Errorf("eu knows the forged region %s", r)
		}
	}
}

// TestProbeForgedIdentityInARegion runs the probe inside a region of two
// TLS peers, aimed at the follower with the leader's certificate: the
// follower refuses a sync that claims another region; the leader (found
// through the follower's API) refuses a forwarded cluster report for the
// follower's cluster, and accepts a read-index request on the same path.
func TestProbeForgedIdentityInARegion(t *testing.T) {
	creds, err := DevCredentialsIn(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	m := newMeshWith(t, func(c *Config) {
		c.Insecure = false
		if err := creds.Configure(c); err != nil {
			t.Fatal(err)
		}
	}, "eu-1", "eu-2")
	var leader, follower string
	eventually(t, "a leader", func() error {
		if leader = m.leader(); leader == "" {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	follower = "eu-1"
	if leader == "eu-1" {
		follower = "eu-2"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := ProbeForgedIdentity(ctx, creds, ForgeIdentity{Region: "eu", Cluster: leader}, meshPeerOf(m.peers[follower]))
	if err != nil {
		t.Fatal(err)
	}
	checkForgeResults(t, rs, 3, 1)
	for _, r := range rs {
		if strings.Contains(r.Attempt, "forwarded") && !strings.HasSuffix(r.Attempt, m.peers[leader].Raft().Addr()) {
			t.Errorf("%s: not sent to the leader at %s", r.Attempt, m.peers[leader].Raft().Addr())
		}
	}
	if _, err := ProbeForgedIdentity(ctx, nil, ForgeIdentity{Region: "eu", Cluster: leader}, meshPeerOf(m.peers[follower])); err == nil {
		t.Error("a probe without credentials ran")
	}
}
