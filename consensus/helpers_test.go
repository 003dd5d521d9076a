package consensus

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/transport"
)

// kvFSM is a replicated map; the command "fail" is rejected with errFSM.
type kvFSM struct {
	mu   sync.Mutex
	m    map[string]string
	seen map[uint64]int // how often each log index was applied
}

type kvCmd struct {
	Op    string `json:"op"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

var errFSM = errors.New("kv: refused")

func newKV() *kvFSM { return &kvFSM{m: map[string]string{}, seen: map[uint64]int{}} }

// twice returns the log indexes applied more than once.
func (f *kvFSM) twice() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for i, n := range f.seen {
		if n > 1 {
			out = append(out, i)
		}
	}
	return out
}

func setCmd(k, v string) []byte {
	b, _ := json.Marshal(kvCmd{Op: "set", Key: k, Value: v})
	return b
}

// addCmd appends v to the value of k: applying it twice shows.
func addCmd(k, v string) []byte {
	b, _ := json.Marshal(kvCmd{Op: "add", Key: k, Value: v})
	return b
}

func failCmd() []byte {
	b, _ := json.Marshal(kvCmd{Op: "fail"})
	return b
}

func (f *kvFSM) Apply(l *raft.Log) any {
	var c kvCmd
	if err := json.Unmarshal(l.Data, &c); err != nil {
		panic(fmt.Sprintf("kv: undecodable committed entry %d: %v", l.Index, err))
	}
	f.mu.Lock()
	f.seen[l.Index]++
	f.mu.Unlock()
	switch c.Op {
	case "set":
		f.mu.Lock()
		f.m[c.Key] = c.Value
		f.mu.Unlock()
		return nil
	case "add":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.m[c.Key] += c.Value
		return []byte(f.m[c.Key])
	case "fail":
		return fmt.Errorf("%w: by request", errFSM)
	}
	return nil // unknown commands are skipped
}

func (f *kvFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[k]
	return v, ok
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return kvSnap(maps.Clone(f.m)), nil
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

type kvSnap map[string]string

func (s kvSnap) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(map[string]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s kvSnap) Release() {}

// testLogger logs to stderr at the level in SHOAL_TEST_LOG (debug, info,
// warn; default error).
func testLogger() *slog.Logger {
	lvl := slog.LevelError
	switch os.Getenv("SHOAL_TEST_LOG") {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// fastConfig is a config with short timings.
func fastConfig(id string, expect int) Config {
	c := DefaultConfig()
	c.ID = id
	c.BootstrapExpect = expect
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.ReconcileInterval = 100 * time.Millisecond
	c.DeadServerGrace = 500 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
	c.Logger = testLogger()
	return c
}

type testPeer struct {
	cfg   Config
	dir   string
	bind  string      // TCP bind address; a restart binds the same one
	tls   *tls.Config // TCP with TLS
	ident transport.Identity
	node  *Node // nil while stopped
	fsm   *kvFSM
	store *DiskStore
	net   Network
}

// testRegion plays gossip for a set of nodes: it keeps the member view and
// hands it to every running node on each change. Nodes talk over loopback
// TCP, or over an InmemNetwork when inmem is set.
type testRegion struct {
	t       *testing.T
	base    string
	inmem   *InmemNetwork
	mu      sync.Mutex
	peers   map[string]*testPeer
	members map[string]Member
	// views, when set for a node, replace the shared member view for it.
	views map[string][]string
}

func newRegion(t *testing.T) *testRegion {
	r := &testRegion{t: t, base: t.TempDir(), peers: map[string]*testPeer{}, members: map[string]Member{}, views: map[string][]string{}}
	t.Cleanup(func() {
		for _, p := range r.running() {
			_ = p.node.Shutdown()
			_ = p.store.Close()
		}
	})
	return r
}

// newInmemRegion is a region on an InmemNetwork, where links can be cut.
func newInmemRegion(t *testing.T) *testRegion {
	r := newRegion(t)
	r.inmem = NewInmemNetwork()
	return r
}

// start starts a new peer with fastConfig, changed by mod, and announces it.
func (r *testRegion) start(id string, expect int, mod func(*testPeer)) *testPeer {
	r.t.Helper()
	p := &testPeer{cfg: fastConfig(id, expect), dir: filepath.Join(r.base, id), bind: "127.0.0.1:0"}
	if mod != nil {
		mod(p)
	}
	r.mu.Lock()
	r.peers[id] = p
	r.mu.Unlock()
	r.boot(p)
	return p
}

func (r *testRegion) boot(p *testPeer) {
	r.t.Helper()
	p.fsm = newKV()
	store, err := OpenDiskStore(p.dir, 2, p.cfg.Logger)
	if err != nil {
		r.t.Fatalf("OpenDiskStore(%s): %v", p.cfg.ID, err)
	}
	var network Network
	if r.inmem != nil {
		network, err = r.inmem.Add(p.cfg.ID, p.ident)
	} else {
		network, err = NewTCPNetwork(TCPConfig{BindAddr: p.bind, TLS: p.tls, Logger: p.cfg.Logger})
	}
	if err != nil {
		store.Close()
		r.t.Fatalf("network of %s: %v", p.cfg.ID, err)
	}
	n, err := New(p.cfg, p.fsm, store.Logs, store.Stable, store.Snapshots, network)
	if err != nil {
		store.Close()
		r.t.Fatalf("New(%s): %v", p.cfg.ID, err)
	}
	r.mu.Lock()
	p.node, p.store, p.net = n, store, network
	p.bind = n.Addr() // a restart binds the same address
	r.members[p.cfg.ID] = Member{ID: p.cfg.ID, RaftAddr: n.Addr(), Status: Alive,
		Since: time.Now(), BootstrapExpect: p.cfg.BootstrapExpect}
	r.mu.Unlock()
	r.broadcast()
}

// stop shuts a peer down without touching its gossip status.
func (r *testRegion) stop(id string) {
	r.t.Helper()
	p := r.peer(id)
	if err := p.node.Shutdown(); err != nil {
		r.t.Errorf("Shutdown(%s): %v", id, err)
	}
	if err := p.store.Close(); err != nil {
		r.t.Errorf("closing the store of %s: %v", id, err)
	}
	r.mu.Lock()
	p.node = nil
	r.mu.Unlock()
}

func (r *testRegion) restart(id string) *testPeer {
	r.t.Helper()
	p := r.peer(id)
	r.boot(p)
	return p
}

func (r *testRegion) setMember(id string, f func(*Member)) {
	r.mu.Lock()
	m := r.members[id]
	f(&m)
	m.Since = time.Now()
	r.members[id] = m
	r.mu.Unlock()
	r.broadcast()
}

// setView makes node id see only the listed members (nil: all again).
func (r *testRegion) setView(id string, members []string) {
	r.mu.Lock()
	if members == nil {
		delete(r.views, id)
	} else {
		r.views[id] = members
	}
	r.mu.Unlock()
	r.broadcast()
}

func (r *testRegion) broadcast() {
	r.mu.Lock()
	type update struct {
		n    *Node
		view []Member
	}
	var updates []update
	for id, p := range r.peers {
		if p.node == nil {
			continue
		}
		var view []Member
		if only, ok := r.views[id]; ok {
			for _, m := range only {
				if mm, ok := r.members[m]; ok {
					view = append(view, mm)
				}
			}
		} else {
			view = slices.Collect(maps.Values(r.members))
		}
		// Gossip publishes who has Raft state.
		for i := range view {
			if q := r.peers[view[i].ID]; q != nil && q.node != nil {
				view[i].HasState = q.node.HasState()
			}
		}
		updates = append(updates, update{p.node, view})
	}
	r.mu.Unlock()
	for _, u := range updates {
		u.n.UpdateMembers(u.view)
	}
}
func (r *testRegion) peer(id string) *testPeer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[id]
}

func (r *testRegion) running() []*testPeer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*testPeer
	for _, id := range slices.Sorted(maps.Keys(r.peers)) {
		if p := r.peers[id]; p.node != nil {
			out = append(out, p)
		}
	}
	return out
}

// waitLeader waits until exactly one running peer is leader and every
// running voter agrees on it.
func (r *testRegion) waitLeader(timeout time.Duration) *testPeer {
	r.t.Helper()
	var leader *testPeer
	waitFor(r.t, timeout, "one leader that every running peer knows", func() bool {
		leader = nil
		count := 0
		for _, p := range r.running() {
			if p.node.IsLeader() {
				leader = p
				count++
			}
		}
		if count != 1 {
			return false
		}
		for _, p := range r.running() {
			if id, _ := p.node.Leader(); id != leader.cfg.ID {
				return false
			}
		}
		return true
	})
	return leader
}

func (r *testRegion) follower() *testPeer {
	for _, p := range r.running() {
		if !p.node.IsLeader() {
			return p
		}
	}
	r.t.Fatal("no follower running")
	return nil
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a settle delay
	}
}

// servers returns the suffrage of each server in n's configuration.
func servers(n *Node) map[string]string {
	out := map[string]string{}
	for _, s := range n.Status().Servers {
		out[s.ID] = s.Suffrage
	}
	return out
}
