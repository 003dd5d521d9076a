package region

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// meshNet is an in-memory WAN between test regions of one peer each, with
// links that can be cut per pair of regions.
type meshNet struct {
	mu    sync.Mutex
	peers map[string]*meshPeer // by address
	cut   map[[2]string]bool   // region pairs, both orders
	// silent region pairs (from, to): a call is lost on the way and its
	// caller waits until its context ends.
	silent map[[2]string]bool
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
	silent := p != nil && w.n.silent[[2]string{w.from, p.region}]
	w.n.mu.Unlock()
	if p == nil || cut {
		return nil, errCut
	}
	if silent {
		<-ctx.Done()
		return nil, ctx.Err()
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
	return &meshNet{peers: map[string]*meshPeer{}, cut: map[[2]string]bool{}, silent: map[[2]string]bool{}}
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
