package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/region"
)

func TestConfigZonesAreChecked(t *testing.T) {
	base := peerConfig(t, t.TempDir(), "eu-1", 1, nil, nil)
	for _, ok := range [][]string{nil, {"eu-west-1a"}, {"eu-west-1a", "eu-west-1b", "eu-west-1c"}} {
		cfg := base
		cfg.Zones = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("zones %q refused: %v", ok, err)
		}
	}
	for _, tt := range []struct {
		zones []string
		want  string
	}{
		{[]string{""}, "zone: empty name"},
		{[]string{"eu-1a", ""}, "zone: empty name"},
		{[]string{"eu 1a"}, `zone "eu 1a": not a Kubernetes label value`},
		{[]string{"eu-1a", "eu-1b", "eu-1a"}, `zone "eu-1a" given twice`},
	} {
		cfg := base
		cfg.Zones = tt.zones
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("zones %q: %v, want %q", tt.zones, err, tt.want)
		}
	}
}

// TestClusterInSeveralZones: a peer given several zones reports all of
// them — in its cluster record, its gossip metadata and GET /v1/clusters —
// and its first zone alone in the fields older peers read.
func TestClusterInSeveralZones(t *testing.T) {
	zones := []string{"eu-west-1a", "eu-west-1b"}
	m := newMeshWith(t, func(c *Config) { c.Zones = zones }, "eu-1")
	p := m.peers["eu-1"]
	eventually(t, "the record has both zones", func() error {
		var rec *shoalpb.ClusterRecord
		p.FSM().Read(func(s *region.State) { rec = s.Cluster("eu-1") })
		if rec.GetZone() != "eu-west-1a" || !slices.Equal(rec.GetZones(), zones) {
			return fmt.Errorf("record zone %q zones %q", rec.GetZone(), rec.GetZones())
		}
		return nil
	})
	ms := p.pool.Members()
	i := slices.IndexFunc(ms, func(mb gossip.Member) bool { return mb.Name == "eu-1" })
	if i < 0 || ms[i].Meta.GetZone() != "eu-west-1a" || !slices.Equal(ms[i].Meta.GetZones(), zones) {
		t.Errorf("gossip members %+v: want eu-1 with zone eu-west-1a, zones %q", ms, zones)
	}
	cs, err := m.client("eu-1").Clusters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Zone != "eu-west-1a" || !slices.Equal(cs[0].Zones, zones) {
		t.Errorf("GET /v1/clusters: %+v", cs)
	}
}

// TestClusterRecordOfAnOlderPeer: a record with a single zone and no list,
// as a peer older than zone lists writes it (and as older snapshots hold
// it), is that one zone to placement and in GET /v1/clusters.
func TestClusterRecordOfAnOlderPeer(t *testing.T) {
	old := &shoalpb.ClusterRecord{Name: "eu-9", Region: "eu", Zone: "eu-west-1c", Reachable: true, ReportedHealth: shoalpb.Health_HEALTH_READY}
	v := clusterView(old, 0)
	if v.Zone != "eu-west-1c" || !slices.Equal(v.Zones, []string{"eu-west-1c"}) {
		t.Errorf("view of an older peer's record: zone %q zones %q", v.Zone, v.Zones)
	}
	if got := api.ZonesOf(old.GetZone(), old.GetZones()); !slices.Equal(got, []string{"eu-west-1c"}) {
		t.Errorf("placement sees zones %q", got)
	}
	none := clusterView(&shoalpb.ClusterRecord{Name: "eu-8"}, 0)
	if none.Zone != "" || none.Zones != nil {
		t.Errorf("a record without a zone: zone %q zones %q", none.Zone, none.Zones)
	}
}
