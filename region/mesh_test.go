package region

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

func TestMeshReplicatesWritesAndDeletes(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	b := n.add(t, testMeshConfig("b", "wan-a"))
	// c knows only b, and learns of a through b's summary.
	c := n.add(t, testMeshConfig("c", "wan-b"))
	ps := []*meshPeer{a, b, c}

	a.write(t, "web", "1")
	eventually(t, "b and c hold a's write", sameVersion(ps, "web"))
	if got := c.held("web").GetVersion().GetOrigin(); got != "a" {
		t.Fatalf("origin of the replicated write = %q, want a", got)
	}
	// A write in c (which has never talked to a directly) reaches a.
	c.write(t, "web", "2")
	eventually(t, "every region holds c's newer write", func() bool {
		return sameVersion(ps, "web")() && a.held("web").GetVersion().GetOrigin() == "c"
	})
	if g := a.held("web").GetGeneration(); g != 2 {
		t.Errorf("a's generation after two writes = %d, want 2", g)
	}

	b.remove(t, "web")
	eventually(t, "the delete reaches every region", func() bool {
		for _, p := range ps {
			if o := p.held("web"); o != nil && !o.GetDeleted() {
				return false
			}
		}
		return true
	})
	// Every region acknowledges the tombstone by its watermarks, after
	// which every region forgets it.
	eventually(t, "the tombstone is collected everywhere", func() bool {
		for _, p := range ps {
			if p.held("web") != nil {
				return false
			}
		}
		return true
	}, func() string {
		out := ""
		for _, p := range ps {
			o := p.held("web")
			out += fmt.Sprintf("%s holds %v (deleted %v, updated %d)\n", p.region, o.GetVersion(), o.GetDeleted(), o.GetUpdatedUnixMs())
			p.fsm.Read(func(s *State) {
				for _, r := range s.Regions() {
					out += fmt.Sprintf("   %s: marks %v dead %v\n", r.GetSummary().GetRegion(), r.GetWatermarks(), r.GetDead())
				}
			})
		}
		return out
	})
	eventually(t, "digests agree", converged(ps))
	for _, p := range ps {
		if e := events(p, meshKey("web"), "ConflictLost"); e != 0 {
			t.Errorf("region %s recorded %d conflicts for sequential writes", p.region, e)
		}
	}
}

func TestMeshConcurrentWritesHaveOneWinnerAndAConflictEvent(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	b := n.add(t, testMeshConfig("b", "wan-a"))
	c := n.add(t, testMeshConfig("c", "wan-a"))
	ps := []*meshPeer{a, b, c}
	a.write(t, "web", "0")
	eventually(t, "every region holds the first write", sameVersion(ps, "web"))

	n.isolate("a", "b", "c")
	a.write(t, "web", "from-a")
	b.write(t, "web", "from-b")
	n.heal()
	eventually(t, "every region holds the same winner", func() bool {
		return sameVersion(ps, "web")() && converged(ps)()
	})
	winner := a.held("web")
	for _, p := range ps {
		if !proto.Equal(p.held("web").GetVersion(), winner.GetVersion()) {
			t.Fatalf("region %s holds %s, a holds %s", p.region, VersionString(p.held("web").GetVersion()), VersionString(winner.GetVersion()))
		}
	}
	// Every region shows the conflict once, also one that never saw the
	// losing write (it learns of it from another region's summary).
	eventually(t, "every region shows the conflict", func() bool {
		for _, p := range ps {
			var cs []*shoalpb.Event
			p.fsm.Read(func(s *State) { cs = s.Conflicts(meshKey("web")) })
			if len(cs) != 1 {
				return false
			}
		}
		return true
	})
	for _, p := range ps {
		if e := events(p, meshKey("web"), "ConflictLost"); e > 1 {
			t.Errorf("region %s recorded %d ConflictLost events for one conflict", p.region, e)
		}
	}
}

func TestMeshCatchUpSendsOnlyDeltas(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	b := n.add(t, testMeshConfig("b", "wan-a"))
	ps := []*meshPeer{a, b}
	for i := range 100 {
		a.write(t, fmt.Sprintf("cm-%d", i), "1")
	}
	eventually(t, "b holds a's 100 objects", converged(ps))
	// A push of the first catch-up may still be on its way (b also pulled
	// the objects): wait until a's count of objects sent stands still for
	// five sync intervals, or it would count against the catch-up below.
	last, still := a.mesh.Stats().ObjectsSent, 0
	for still < 5 {
		time.Sleep(40 * time.Millisecond) // one sync interval of testMeshConfig
		if sent := a.mesh.Stats().ObjectsSent; sent != last {
			last, still = sent, 0
		} else {
			still++
		}
	}

	n.isolate("b", "a")
	b.stop()
	for i := range 10 {
		a.write(t, fmt.Sprintf("cm-%d", i), "2")
	}
	before := a.mesh.Stats().ObjectsSent
	n.heal()
	b.start()
	eventually(t, "b catches up", converged(ps))
	if sent := a.mesh.Stats().ObjectsSent - before; sent > 10 {
		t.Fatalf("a sent %d objects to catch b up on 10 changes (of 100)", sent)
	}
}

func TestMeshDigestRepairsWhatWatermarksMiss(t *testing.T) {
	n := newMeshNet()
	cfgA := testMeshConfig("a")
	a := n.add(t, cfgA)
	a.stop()
	a.write(t, "x", "1")
	a.write(t, "y", "1")
	// b got a's later write but not the earlier one: its watermark for a
	// already passes x, so watermarks alone would never send it.
	cfgB := testMeshConfig("b", "wan-a")
	b := n.add(t, cfgB)
	b.stop()
	b.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: &shoalpb.MergeObjects{
		FromRegion: "a", Objects: []*shoalpb.Object{a.held("y")}}}})
	a.start()
	b.start()
	eventually(t, "b gets x through the digest comparison", func() bool { return b.held("x") != nil })
	eventually(t, "digests agree", converged([]*meshPeer{a, b}))
}

func TestMeshRefusesClaimsForOtherRegionsAndSkewedClocks(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	sync := func(req *shoalpb.SyncRequest) *shoalpb.WanMessage {
		return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Sync{Sync: req}}
	}
	ctx := context.Background()
	code := func(err error) shoalpb.LinkCode {
		var le *LinkError
		if errors.As(err, &le) {
			return le.GetCode()
		}
		return shoalpb.LinkCode_LINK_CODE_UNSPECIFIED
	}
	_, err := a.mesh.Handle(ctx, "b", "b-1", sync(&shoalpb.SyncRequest{Region: "c"}))
	if code(err) != shoalpb.LinkCode_LINK_CODE_REFUSED {
		t.Errorf("a peer of b speaking for c: %v, want REFUSED", err)
	}
	_, err = a.mesh.Handle(ctx, "b", "b-1", sync(&shoalpb.SyncRequest{Region: "b", Summary: &shoalpb.RegionSummary{
		Region: "b", Clusters: []*shoalpb.ClusterRecord{{Name: "c-1", Region: "c"}}}}))
	if code(err) != shoalpb.LinkCode_LINK_CODE_REFUSED {
		t.Errorf("b's summary claiming a cluster of c: %v, want REFUSED", err)
	}
	_, err = a.mesh.Handle(ctx, "b", "b-1", sync(&shoalpb.SyncRequest{Region: "b", Summary: &shoalpb.RegionSummary{
		Region: "b", Statuses: []*shoalpb.WorkStatus{{Workload: meshKey("x").Proto(), Cluster: "c-1"}}}}))
	if code(err) != shoalpb.LinkCode_LINK_CODE_REFUSED {
		t.Errorf("b's summary with a status of a cluster it does not hold: %v, want REFUSED", err)
	}
	future := &shoalpb.Object{Key: meshKey("x").Proto(), Manifest: []byte(`{}`),
		Version: &shoalpb.Version{WallMs: time.Now().Add(time.Minute).UnixMilli(), Origin: "b"}}
	_, err = a.mesh.Handle(ctx, "b", "b-1", sync(&shoalpb.SyncRequest{Region: "b", Objects: []*shoalpb.Object{future}}))
	if code(err) != shoalpb.LinkCode_LINK_CODE_CLOCK_SKEW {
		t.Errorf("a version a minute ahead: %v, want CLOCK_SKEW", err)
	}
	if _, ok := a.mesh.Skewed()["b/b-1"]; !ok {
		t.Errorf("the skewed peer is not reported: %v", a.mesh.Skewed())
	}
	if a.held("x") != nil {
		t.Error("a refused request changed the state")
	}
	_, err = a.mesh.Handle(ctx, "b", "b-1", sync(&shoalpb.SyncRequest{Region: "b", Objects: []*shoalpb.Object{{Key: meshKey("x").Proto()}}}))
	if code(err) != shoalpb.LinkCode_LINK_CODE_BAD_REQUEST {
		t.Errorf("an object without a version: %v, want BAD_REQUEST", err)
	}
	_, err = a.mesh.Handle(ctx, "b", "b-1", &shoalpb.WanMessage{})
	if code(err) != shoalpb.LinkCode_LINK_CODE_BAD_REQUEST {
		t.Errorf("an empty message: %v, want BAD_REQUEST", err)
	}
}

var _ clock.PassiveClock = clock.RealClock{}

// FuzzMeshHandle feeds arbitrary bytes, decoded as a WAN message, to a
// region leader's handler: whatever arrives, it answers or refuses and
// never panics, and the state stays readable.
func FuzzMeshHandle(f *testing.F) {
	obj := &shoalpb.Object{Key: meshKey("x").Proto(), Manifest: []byte(`{"a":1}`),
		Version: &shoalpb.Version{WallMs: 1, Origin: "b"}}
	tomb := &shoalpb.Object{Key: meshKey("y").Proto(), Deleted: true, Version: &shoalpb.Version{WallMs: 2, Logical: 3, Origin: "b"},
		Replaced: &shoalpb.Version{WallMs: 1, Origin: "a"}}
	seeds := []*shoalpb.WanMessage{
		{Msg: &shoalpb.WanMessage_Ping{Ping: &shoalpb.Ping{Payload: []byte("p")}}},
		{Msg: &shoalpb.WanMessage_Sync{Sync: &shoalpb.SyncRequest{Region: "b", Objects: []*shoalpb.Object{obj, tomb},
			Watermarks: []*shoalpb.Watermark{{Origin: "b", Version: tomb.GetVersion()}},
			Summary: &shoalpb.RegionSummary{Region: "b", Clusters: []*shoalpb.ClusterRecord{{Name: "b-1", Region: "b"}},
				Bindings: []*shoalpb.Binding{{Workload: meshKey("x").Proto(), Clusters: []*shoalpb.TargetCluster{{Name: "b-1", Replicas: 2}}}}}}}},
		{Msg: &shoalpb.WanMessage_Sync{Sync: &shoalpb.SyncRequest{Region: "b", HasInventory: true,
			Inventory: []*shoalpb.ObjectVersion{{Key: meshKey("x").Proto()}}}}},
		{Msg: &shoalpb.WanMessage_Sync{Sync: &shoalpb.SyncRequest{Region: "b", WantFull: true}}},
		{},
	}
	for _, s := range seeds {
		data, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg shoalpb.WanMessage
		if proto.Unmarshal(data, &msg) != nil {
			return
		}
		fsm := NewFSM("a", nil)
		r := &directRaft{fsm: fsm, now: time.Now}
		cfg := testMeshConfig("a")
		m, err := NewMesh(cfg, fsm, r, wanOf{n: newMeshNet(), from: "a"}, fixedLeader(cfg.Cluster))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = m.Handle(context.Background(), "b", "b-1", &msg)
		_, _ = m.Handle(context.Background(), "", "", &msg)
		fsm.Read(func(s *State) { _ = s.Digest(); _ = s.Watermarks() })
		if _, err := fsm.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

// A region whose link to another refuses at once retries twenty times per
// sync interval, so it catches up soon after the link is back; a working
// link is synced on the interval only.
func TestMeshRetriesARefusingLinkSooner(t *testing.T) {
	n := newMeshNet()
	slow := func(region string, seeds ...string) MeshConfig {
		cfg := testMeshConfig(region, seeds...)
		cfg.SyncInterval, cfg.GracePeriod, cfg.EdgeGracePeriod = 800*time.Millisecond, 4*time.Second, 4*time.Second
		return cfg
	}
	a := n.add(t, slow("a"))
	b := n.add(t, slow("b", "wan-a"))
	ps := []*meshPeer{a, b}
	a.write(t, "web", "1")
	eventually(t, "b holds a's write", sameVersion(ps, "web"))
	if q := a.mesh.Stats().QuickRetries + b.mesh.Stats().QuickRetries; q != 0 {
		t.Fatalf("%d quick retries over working links", q)
	}
	n.isolate("b", "a")
	time.Sleep(2 * time.Second)
	// 2 s of refusals at one try per 40 ms: well over the 2-3 tries the
	// interval alone would make, and over the 8 that a retry after a
	// quarter of the interval would make.
	if q := b.mesh.Stats().QuickRetries; q < 12 {
		t.Fatalf("b retried a refusing link %d times in 2 s", q)
	}
	a.write(t, "web", "2")
	n.heal()
	eventually(t, "b catches up after the heal", sameVersion(ps, "web"))
}

// An answer capped at a batch says so, and the region that asked asks
// again at once: a region that pulls what it missed gets all of it in one
// sync, not one batch per sync interval.
func TestMeshPullsEveryBatchInOneSync(t *testing.T) {
	n := newMeshNet()
	slow := func(region string, seeds ...string) MeshConfig {
		cfg := testMeshConfig(region, seeds...)
		cfg.SyncInterval, cfg.GracePeriod, cfg.EdgeGracePeriod = time.Minute, 3*time.Minute, 3*time.Minute
		cfg.BatchObjects = 5
		return cfg
	}
	a := n.add(t, slow("a"))
	const count = 40
	for i := range count {
		a.write(t, fmt.Sprintf("obj-%02d", i), "1")
	}
	// a cannot push: b gets a's objects only by asking.
	n.mu.Lock()
	n.cut[[2]string{"a", "b"}] = true
	n.mu.Unlock()
	b := n.add(t, slow("b", "wan-a"))
	eventually(t, "b holds every object of a", func() bool {
		for i := range count {
			if b.held(fmt.Sprintf("obj-%02d", i)) == nil {
				return false
			}
		}
		return true
	}, func() string {
		held := 0
		for i := range count {
			if b.held(fmt.Sprintf("obj-%02d", i)) != nil {
				held++
			}
		}
		return fmt.Sprintf("b holds %d of %d after %d syncs", held, count, b.mesh.Stats().Syncs)
	})
}

// A sync whose call goes silent (the request lost) would hold the
// region's syncs until its call timed out; one starts beside it instead,
// and the region catches up as soon as the link carries again.
func TestMeshHedgesASilentSync(t *testing.T) {
	n := newMeshNet()
	cfg := func(region string, seeds ...string) MeshConfig {
		c := testMeshConfig(region, seeds...)
		c.SyncInterval, c.GracePeriod, c.EdgeGracePeriod = 200*time.Millisecond, time.Minute, time.Minute
		c.CallTimeout = 2 * time.Minute // far beyond the wait below
		return c
	}
	a := n.add(t, cfg("a"))
	// a cannot push: b learns a's writes only by asking.
	n.mu.Lock()
	n.cut[[2]string{"a", "b"}] = true
	n.mu.Unlock()
	b := n.add(t, cfg("b", "wan-a"))
	ps := []*meshPeer{a, b}
	a.write(t, "web", "1")
	eventually(t, "b holds a's write", sameVersion(ps, "web"))

	n.mu.Lock()
	n.silent[[2]string{"b", "a"}] = true
	n.mu.Unlock()
	time.Sleep(time.Second) // b's syncs go silent (a few hedges too)
	a.write(t, "web", "2")
	n.mu.Lock()
	n.silent = map[[2]string]bool{}
	n.mu.Unlock()
	eventually(t, "b holds a's second write although its first syncs stay silent", sameVersion(ps, "web"),
		func() string { return fmt.Sprintf("b's mesh stats: %+v", b.mesh.Stats()) })
	if h := b.mesh.Stats().Hedged; h == 0 {
		t.Fatal("b caught up without a hedged sync: the test did not make its syncs silent")
	}
}
