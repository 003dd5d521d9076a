package consensus

import (
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
)

// kvFSM is a replicated map; the command "fail" is rejected with errFSM.
type kvFSM struct {
	mu sync.Mutex
	m  map[string]string
}

type kvCmd struct {
	Op    string `json:"op"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

var errFSM = errors.New("kv: refused")

func newKV() *kvFSM { return &kvFSM{m: map[string]string{}} }

func setCmd(k, v string) []byte {
	b, _ := json.Marshal(kvCmd{Op: "set", Key: k, Value: v})
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
	switch c.Op {
	case "set":
		f.mu.Lock()
		f.m[c.Key] = c.Value
		f.mu.Unlock()
		return nil
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

// fastConfig is a loopback config with short timings.
func fastConfig(id, dir string, expect int) Config {
	c := DefaultConfig()
	c.ID = id
	c.BindAddr = "127.0.0.1:0"
	c.DataDir = dir
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
	cfg  Config
	node *Node // nil while stopped
	fsm  *kvFSM
}

// testRegion plays gossip for a set of nodes: it keeps the member view and
// hands it to every running node on each change.
type testRegion struct {
	t       *testing.T
	base    string
	mu      sync.Mutex
	peers   map[string]*testPeer
	members map[string]Member
}

func newRegion(t *testing.T) *testRegion {
	r := &testRegion{t: t, base: t.TempDir(), peers: map[string]*testPeer{}, members: map[string]Member{}}
	t.Cleanup(func() {
		for _, p := range r.running() {
			_ = p.node.Shutdown()
		}
	})
	return r
}

// start starts a new peer with fastConfig, changed by mod, and announces it.
func (r *testRegion) start(id string, expect int, mod func(*Config)) *testPeer {
	r.t.Helper()
	cfg := fastConfig(id, filepath.Join(r.base, id), expect)
	if mod != nil {
		mod(&cfg)
	}
	p := &testPeer{cfg: cfg}
	r.mu.Lock()
	r.peers[id] = p
	r.mu.Unlock()
	r.boot(p)
	return p
}

func (r *testRegion) boot(p *testPeer) {
	r.t.Helper()
	p.fsm = newKV()
	n, err := New(p.cfg, p.fsm)
	if err != nil {
		r.t.Fatalf("New(%s): %v", p.cfg.ID, err)
	}
	r.mu.Lock()
	p.node = n
	p.cfg.BindAddr = n.Addr() // a restart binds the same address
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

func (r *testRegion) broadcast() {
	r.mu.Lock()
	view := slices.Collect(maps.Values(r.members))
	var nodes []*Node
	for _, p := range r.peers {
		if p.node != nil {
			nodes = append(nodes, p.node)
		}
	}
	r.mu.Unlock()
	for _, n := range nodes {
		n.UpdateMembers(view)
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
