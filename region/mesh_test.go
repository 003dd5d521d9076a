package region

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// meshNet is an in-memory WAN between test regions of one peer each, with
// links that can be cut per pair of regions.
type meshNet struct {
	mu    sync.Mutex
	peers map[string]*meshPeer // by address
	cut   map[[2]string]bool   // region pairs, both orders
}

type meshPeer struct {
	region string
	fsm    *FSM
	raft   *directRaft
	mesh   *Mesh
	cancel context.CancelFunc
	done   chan struct{}
}

type fixedLeader string

func (l fixedLeader) IsLeader() bool        { return true }
func (l fixedLeader) LeaderCluster() string { return string(l) }

// wanOf is the WAN as the peer of region from sees it.
type wanOf struct {
	n    *meshNet
	from string
}

var errCut = errors.New("link cut")

func (w wanOf) Call(ctx context.Context, addr, region string, req *shoalpb.WanMessage) (*shoalpb.WanMessage, error) {
	w.n.mu.Lock()
	p := w.n.peers[addr]
	cut := p != nil && w.n.cut[[2]string{w.from, p.region}]
	w.n.mu.Unlock()
	if p == nil || cut {
		return nil, errCut
	}
	if region != "" && p.region != region {
		return nil, fmt.Errorf("%s is in region %s, not %s", addr, p.region, region)
	}
	// Round trip through the wire encoding, as a link would.
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var in shoalpb.WanMessage
	if err := proto.Unmarshal(data, &in); err != nil {
		return nil, err
	}
	resp, err := p.mesh.Handle(ctx, w.from, "c-"+w.from, &in)
	if err != nil {
		var le *LinkError
		if errors.As(err, &le) {
			return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Error{Error: le.LinkError}}, nil
		}
		return nil, err
	}
	out, err := proto.Marshal(resp)
	if err != nil {
		return nil, err
	}
	var back shoalpb.WanMessage
	return &back, proto.Unmarshal(out, &back)
}

func newMeshNet() *meshNet {
	return &meshNet{peers: map[string]*meshPeer{}, cut: map[[2]string]bool{}}
}

func testMeshConfig(region string, seeds ...string) MeshConfig {
	cfg := DefaultMeshConfig()
	cfg.Region, cfg.Cluster, cfg.Addr = region, "c-"+region, "wan-"+region
	cfg.Seeds = seeds
	cfg.SyncInterval = 40 * time.Millisecond
	cfg.GracePeriod = 600 * time.Millisecond
	cfg.EdgeGracePeriod = 600 * time.Millisecond
	cfg.HeardInterval = 100 * time.Millisecond
	cfg.CallTimeout = time.Second
	return cfg
}

// add starts a one-peer region that knows seeds.
func (n *meshNet) add(t *testing.T, cfg MeshConfig, opts ...FSMOption) *meshPeer {
	t.Helper()
	// Tombstones acknowledged everywhere go after 200 ms here, not a
	// minute (the quarantine has its own test in fsm_merge_test.go).
	opts = append([]FSMOption{WithTombstoneQuarantine(200 * time.Millisecond)}, opts...)
	fsm := NewFSM(cfg.Region, nil, opts...)
	r := &directRaft{fsm: fsm, now: time.Now}
	p := &meshPeer{region: cfg.Region, fsm: fsm, raft: r}
	// The region's own cluster record, with its WAN address.
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{
		Cluster: &shoalpb.ClusterRecord{Name: cfg.Cluster, Region: cfg.Region, ReportedHealth: shoalpb.Health_HEALTH_READY, WanAddr: cfg.Addr}}}})
	m, err := NewMesh(cfg, fsm, r, wanOf{n: n, from: cfg.Region}, fixedLeader(cfg.Cluster))
	if err != nil {
		t.Fatal(err)
	}
	p.mesh = m
	n.mu.Lock()
	n.peers[cfg.Addr] = p
	n.mu.Unlock()
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *meshPeer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.mesh.Run(ctx)
	}()
}

func (p *meshPeer) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
}

func (p *meshPeer) command(t *testing.T, c *shoalpb.Command) {
	t.Helper()
	data, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.raft.ApplyLocal(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

func meshKey(name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: name}
}

func (p *meshPeer) write(t *testing.T, name, data string) {
	t.Helper()
	k := meshKey(name)
	manifest := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"v":%q}}`, name, data)
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: &shoalpb.ApplyObjects{
		Objects: []*shoalpb.Object{{Key: k.Proto(), Manifest: []byte(manifest)}}}}})
}

func (p *meshPeer) remove(t *testing.T, name string) {
	t.Helper()
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{
		Keys: []*shoalpb.ObjectKey{meshKey(name).Proto()}}}})
}

// held returns the object or tombstone the region holds under name.
func (p *meshPeer) held(name string) *shoalpb.Object {
	var o *shoalpb.Object
	p.fsm.Read(func(s *State) { o = s.objects[meshKey(name).String()] })
	return o
}

func (p *meshPeer) digest() string {
	var d []byte
	p.fsm.Read(func(s *State) { d = s.Digest() })
	return fmt.Sprintf("%x", d)
}

func (n *meshNet) setCut(a, b string, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{a, b}] = cut
	n.cut[[2]string{b, a}] = cut
}

func (n *meshNet) isolate(r string, others ...string) {
	for _, o := range others {
		n.setCut(r, o, true)
	}
}

func (n *meshNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
}

func eventually(t *testing.T, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			why := ""
			for _, e := range explain {
				why += "\n" + e()
			}
			t.Fatalf("timed out waiting until %s%s", what, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sameVersion(ps []*meshPeer, name string) func() bool {
	return func() bool {
		first := ps[0].held(name)
		if first == nil {
			return false
		}
		for _, p := range ps[1:] {
			o := p.held(name)
			if o == nil || CompareVersions(o.GetVersion(), first.GetVersion()) != 0 || o.GetDeleted() != first.GetDeleted() {
				return false
			}
		}
		return true
	}
}

func converged(ps []*meshPeer) func() bool {
	return func() bool {
		d := ps[0].digest()
		for _, p := range ps[1:] {
			if p.digest() != d {
				return false
			}
		}
		return true
	}
}

func events(p *meshPeer, k api.ObjectKey, reason string) int {
	n := 0
	p.fsm.Read(func(s *State) {
		for _, e := range s.Events(k) {
			if e.GetReason() == reason {
				n++
			}
		}
	})
	return n
}

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

func TestMeshRegionCutOffLongerThanTombstonesResyncsWithoutResurrecting(t *testing.T) {
	n := newMeshNet()
	ttl := WithTombstoneTTL(time.Second)
	a := n.add(t, testMeshConfig("a"), ttl)
	b := n.add(t, testMeshConfig("b", "wan-a"), ttl)
	c := n.add(t, testMeshConfig("c", "wan-a"), ttl)
	ps := []*meshPeer{a, b, c}
	a.write(t, "old", "1")
	a.write(t, "kept", "1")
	eventually(t, "every region holds both objects", converged(ps))

	n.isolate("c", "a", "b")
	a.remove(t, "old")
	// c never acknowledges the delete; after the TTL a and b forget it.
	eventually(t, "a and b forget the tombstone", func() bool { return a.held("old") == nil && b.held("old") == nil })
	// c was cut off for longer than a tombstone lives.
	time.Sleep(1200 * time.Millisecond)
	c.write(t, "new-in-c", "1")
	n.heal()
	eventually(t, "c resynchronises and every region converges", converged(ps))
	for _, p := range ps {
		if o := p.held("old"); o != nil && !o.GetDeleted() {
			t.Errorf("region %s holds the deleted object again", p.region)
		}
		if p.held("kept") == nil || p.held("new-in-c") == nil {
			t.Errorf("region %s lost an object: kept=%v new-in-c=%v", p.region, p.held("kept") != nil, p.held("new-in-c") != nil)
		}
	}
	if c.mesh.Stats().FullSyncs == 0 {
		t.Error("c did not ask for a full resynchronisation")
	}
}

func regionDead(p *meshPeer, name string) bool {
	var dead bool
	p.fsm.Read(func(s *State) { dead = s.Region(name).GetDead() })
	return dead
}

func TestMeshOneBrokenLinkFailsNoRegionOver(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	b := n.add(t, testMeshConfig("b", "wan-a"))
	c := n.add(t, testMeshConfig("c", "wan-a"))
	eventually(t, "every region knows the others", func() bool {
		for _, p := range []*meshPeer{a, b, c} {
			var k int
			p.fsm.Read(func(s *State) { k = len(s.Regions()) })
			if k != 2 {
				return false
			}
		}
		return true
	})
	n.setCut("a", "c", true)
	// Three grace periods: long enough for a wrong verdict to show.
	deadline := time.Now().Add(3 * testMeshConfig("a").GracePeriod)
	for time.Now().Before(deadline) {
		if regionDead(a, "c") || regionDead(c, "a") {
			t.Fatal("a single broken link failed a healthy region over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Cut off completely, c is dead for a and b.
	n.isolate("c", "a", "b")
	eventually(t, "a and b find c dead", func() bool { return regionDead(a, "c") && regionDead(b, "c") })
	n.heal()
	eventually(t, "c is alive again", func() bool { return !regionDead(a, "c") && !regionDead(b, "c") })
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

func TestForgetRegionOnlyWhenDeadAndItsTombstonesGo(t *testing.T) {
	p := &meshPeer{fsm: NewFSM("a", nil)}
	dr := &directRaft{fsm: p.fsm, now: time.Now}
	p.raft = dr
	apply := func(c *shoalpb.Command) error {
		data, _ := proto.Marshal(c)
		_, err := p.raft.ApplyLocal(context.Background(), data)
		return err
	}
	forget := &shoalpb.Command{Cmd: &shoalpb.Command_ForgetRegion{ForgetRegion: &shoalpb.ForgetRegion{Region: "b"}}}
	if err := apply(forget); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("forgetting an unknown region: %v", err)
	}
	// b is known but has acknowledged nothing: a's tombstone waits for it.
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{
		Summary: &shoalpb.RegionSummary{Region: "b"}, HeardUnixMs: time.Now().UnixMilli()}}})
	p.write(t, "x", "1")
	p.remove(t, "x")
	if p.held("x") == nil {
		t.Fatal("the tombstone went before b acknowledged it")
	}
	if err := apply(forget); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("forgetting a live region: %v", err)
	}
	// c acknowledges the tombstone; b, dead, never will until forgotten.
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{
		Summary: &shoalpb.RegionSummary{Region: "c"}, HeardUnixMs: time.Now().UnixMilli(),
		Watermarks: []*shoalpb.Watermark{{Origin: "a", Version: p.held("x").GetVersion()}}}}})
	if p.held("x") == nil {
		t.Fatal("the tombstone went before b acknowledged it")
	}
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionState{SetRegionState: &shoalpb.SetRegionState{Region: "b", Reason: "silent"}}})
	p.command(t, forget)
	var known bool
	p.fsm.Read(func(s *State) { known = s.Region("b") != nil })
	if known {
		t.Fatal("b is still known after it was forgotten")
	}
	// Acknowledged by every region left, the tombstone goes once its
	// quarantine is over.
	dr.now = func() time.Time { return time.Now().Add(TombstoneQuarantine) }
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: &shoalpb.RegionsHeard{
		Heard: []*shoalpb.RegionHeard{{Region: "c", UnixMs: time.Now().UnixMilli()}}}}})
	if p.held("x") != nil {
		t.Fatalf("after forgetting b: tombstone %v", p.held("x"))
	}
}

// Found by the chaos harness (edge-flap, 10 minutes): an edge region
// whose uplink went down and up judged the other region by the LAN grace
// period — its own link being the one that failed — found it dead, took
// its share and scaled every edge cluster up, then back. An edge region
// gives every region the edge grace period, as they give it.
func TestMeshEdgeRegionJudgesOthersByTheEdgeGrace(t *testing.T) {
	n := newMeshNet()
	cfgA := testMeshConfig("a")
	cfgA.EdgeGracePeriod = 5 * time.Second
	cfgE := testMeshConfig("edge", "wan-a")
	cfgE.Edge, cfgE.EdgeGracePeriod = true, 5*time.Second
	a := n.add(t, cfgA)
	e := n.add(t, cfgE)
	eventually(t, "the regions know each other", func() bool {
		var ka, ke int
		a.fsm.Read(func(s *State) { ka = len(s.Regions()) })
		e.fsm.Read(func(s *State) { ke = len(s.Regions()) })
		return ka == 1 && ke == 1
	})
	n.setCut("a", "edge", true)
	// Three LAN grace periods, well inside the edge one: nobody is dead.
	deadline := time.Now().Add(3 * cfgA.GracePeriod)
	for time.Now().Before(deadline) {
		if regionDead(a, "edge") || regionDead(e, "a") {
			t.Fatalf("a cut shorter than the edge grace made a region dead: a finds edge dead %v, edge finds a dead %v",
				regionDead(a, "edge"), regionDead(e, "a"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.heal()
}
