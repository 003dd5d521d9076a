package gossip

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"google.golang.org/protobuf/proto"
)

// testLog sends slog output to t.Log until the test ends; memberlist's
// goroutines may still log after that, which t.Log does not allow.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newTestLogger(t testing.TB) *slog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testMeta(name string) *shoalpb.PeerMeta {
	return &shoalpb.PeerMeta{
		Cluster:  name,
		Zone:     "zone-a",
		Provider: "kind",
		Labels:   map[string]string{"env": "test", "cluster": name},
		Health:   shoalpb.Health_HEALTH_READY,
		Capacity: &shoalpb.Capacity{
			Nodes:       3,
			Allocatable: &shoalpb.Resources{CpuMilli: 12000, MemoryBytes: 48 << 30, Pods: 330},
		},
		RaftAddr: "127.0.0.1:7000",
		HttpAddr: "127.0.0.1:8080",
	}
}

// startPool starts a pool with the local profile in region "eu-west" unless
// mod changes it, and shuts it down at the end of the test.
func startPool(t testing.TB, name string, mod ...func(*Config)) *Pool {
	t.Helper()
	cfg := DefaultLocalConfig()
	cfg.Name = name
	cfg.Region = "eu-west"
	cfg.Logger = newTestLogger(t)
	for _, m := range mod {
		m(&cfg)
	}
	meta := testMeta(name)
	p, err := New(cfg, meta)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// joinAll joins every pool to the first one.
func joinAll(t testing.TB, pools ...*Pool) {
	t.Helper()
	for _, p := range pools[1:] {
		if _, err := p.Join([]string{pools[0].LocalAddr()}); err != nil {
			t.Fatalf("%s joins %s: %v", p.cfg.Name, pools[0].cfg.Name, err)
		}
	}
	waitFor(t, 10*time.Second, "all pools see each other alive", func() error {
		for _, p := range pools {
			if got := len(namesIn(p, StateAlive)); got != len(pools) {
				return fmt.Errorf("%s sees %d alive members: %v", p.cfg.Name, got, p.Members())
			}
		}
		return nil
	})
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a settle delay
	}
}

// waitEvent reads p's events until one matches, or fails the test.
func waitEvent(t testing.TB, p *Pool, timeout time.Duration, typ EventType, member string) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-p.Events():
			if !ok {
				t.Fatalf("%s: events closed while waiting for %s %s", p.cfg.Name, typ, member)
			}
			if ev.Type == typ && ev.Member.Name == member {
				return ev
			}
			seen = append(seen, ev.String())
		case <-timer.C:
			t.Fatalf("%s: no %s event for %s within %v; saw %v", p.cfg.Name, typ, member, timeout, seen)
		}
	}
}

// namesIn returns the names of p's members in state s.
func namesIn(p *Pool, s State) []string {
	var names []string
	for _, m := range p.Members() {
		if m.State == s {
			names = append(names, m.Name)
		}
	}
	return names
}

// member returns p's record of name.
func member(p *Pool, name string) (Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// wantMeta is what a member's metadata decodes to on the other side.
func wantMeta(name string) *shoalpb.PeerMeta {
	m := testMeta(name)
	m.Version = MetaVersion
	m.Region = "eu-west"
	return m
}

func metaEqual(a, b *shoalpb.PeerMeta) bool { return proto.Equal(a, b) }
