package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

func TestThreePoolsJoinThroughOneAddress(t *testing.T) {
	a, b, c := startPool(t, "eu-1"), startPool(t, "eu-2"), startPool(t, "eu-3")
	joinAll(t, a, b, c)

	for _, p := range []*Pool{a, b, c} {
		ms := p.Members()
		if len(ms) != 3 {
			t.Fatalf("%s: %d members, want 3: %v", p.cfg.Name, len(ms), ms)
		}
		for i, want := range []string{"eu-1", "eu-2", "eu-3"} {
			m := ms[i]
			if m.Name != want || m.State != StateAlive {
				t.Errorf("%s: member %d = %s %s, want %s alive", p.cfg.Name, i, m.Name, m.State, want)
			}
			if !metaEqual(m.Meta, wantMeta(want)) {
				t.Errorf("%s: meta of %s = %v, want %v", p.cfg.Name, want, m.Meta, wantMeta(want))
			}
			if m.Since.IsZero() {
				t.Errorf("%s: Since of %s is zero", p.cfg.Name, want)
			}
		}
	}
	if got, want := c.LocalMember().Addr, c.LocalAddr(); got != want {
		t.Errorf("LocalMember().Addr = %s, LocalAddr() = %s", got, want)
	}
	if _, port, _ := net.SplitHostPort(c.LocalAddr()); port == "0" {
		t.Errorf("LocalAddr %s reports port 0", c.LocalAddr())
	}
	// Members hands out copies.
	ms := a.Members()
	ms[0].Meta.Zone = "changed"
	if m, _ := member(a, ms[0].Name); m.Meta.Zone == "changed" {
		t.Error("changing a returned Member changed the pool's record")
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	a, b, c := startPool(t, "eu-1"), startPool(t, "eu-2"), startPool(t, "eu-3")
	joinAll(t, a, b, c)

	meta := testMeta("eu-1")
	meta.Health = shoalpb.Health_HEALTH_NOT_READY
	meta.Capacity.Nodes = 1
	if err := a.UpdateMeta(meta); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	for _, p := range []*Pool{b, c} {
		ev := waitEvent(t, p, 10*time.Second, EventUpdate, "eu-1")
		if ev.Member.Meta.GetHealth() != shoalpb.Health_HEALTH_NOT_READY || ev.Member.Meta.GetCapacity().GetNodes() != 1 {
			t.Errorf("%s: update event carries %v", p.cfg.Name, ev.Member.Meta)
		}
		if m, _ := member(p, "eu-1"); m.Meta.GetHealth() != shoalpb.Health_HEALTH_NOT_READY {
			t.Errorf("%s: Members shows health %v", p.cfg.Name, m.Meta.GetHealth())
		}
	}
	// The caller's message is not modified.
	if meta.Version != 0 || meta.Region != "" {
		t.Errorf("UpdateMeta modified its argument: %v", meta)
	}
	// Unchanged metadata is not re-gossiped and is not an error.
	if err := a.UpdateMeta(meta); err != nil {
		t.Fatalf("UpdateMeta (unchanged): %v", err)
	}
}

func TestCrashIsFailure(t *testing.T) {
	a, b, c := startPool(t, "eu-1"), startPool(t, "eu-2"), startPool(t, "eu-3")
	joinAll(t, a, b, c)

	killed := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Pool{a, b} {
		ev := waitEvent(t, p, 15*time.Second, EventFailed, "eu-3")
		if ev.Member.State != StateDead {
			t.Errorf("%s: failed event with state %s", p.cfg.Name, ev.Member.State)
		}
		m, _ := member(p, "eu-3")
		if m.State != StateDead || m.Since.Before(killed) {
			t.Errorf("%s: eu-3 is %s since %v, want dead since after %v", p.cfg.Name, m.State, m.Since, killed)
		}
		if !metaEqual(m.Meta, wantMeta("eu-3")) {
			t.Errorf("%s: a dead member keeps its last metadata, got %v", p.cfg.Name, m.Meta)
		}
	}
	// Events is closed by Shutdown.
	for range c.Events() {
	}
	if _, err := c.Join([]string{a.LocalAddr()}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Join after Shutdown: %v, want ErrShutdown", err)
	}
	if err := c.Leave(0); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave after Shutdown: %v, want ErrShutdown", err)
	}
	if err := c.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestLeaveIsGraceful(t *testing.T) {
	a, b, c := startPool(t, "eu-1"), startPool(t, "eu-2"), startPool(t, "eu-3")
	joinAll(t, a, b, c)

	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for _, p := range []*Pool{a, b} {
		ev := waitEvent(t, p, 10*time.Second, EventLeft, "eu-3")
		if ev.Member.State != StateLeft {
			t.Errorf("%s: left event with state %s", p.cfg.Name, ev.Member.State)
		}
	}
	if got := c.LocalMember().State; got != StateLeft {
		t.Errorf("leaver's own state = %s, want left", got)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Shutting down after leaving must not turn the leave into a failure.
	waitFor(t, 5*time.Second, "both survivors still show eu-3 as left", func() error {
		for _, p := range []*Pool{a, b} {
			if m, _ := member(p, "eu-3"); m.State != StateLeft {
				return fmt.Errorf("%s: eu-3 is %s", p.cfg.Name, m.State)
			}
		}
		return nil
	})
}

// TestForgedLeaveIntentIsIgnored: eu-2 announces that eu-3 is leaving
// while eu-3 stays. The announcement expires unconfirmed; when eu-3 later
// crashes (Shutdown without Leave) it is reported failed, not left. A real
// Leave is still reported as one.
func TestForgedLeaveIntentIsIgnored(t *testing.T) {
	short := func(c *Config) { c.BroadcastTimeout = 250 * time.Millisecond }
	a, b, c := startPool(t, "eu-1", short), startPool(t, "eu-2", short), startPool(t, "eu-3", short)
	joinAll(t, a, b, c)

	var toA *memberlist.Node
	for _, n := range b.ml.Members() {
		if n.Name == "eu-1" {
			toA = n
		}
	}
	if err := b.ml.SendReliable(toA, encodeLeaveIntent("eu-3")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "eu-1 notes the announcement", func() error {
		if !a.leaveIntentPending("eu-3", time.Now()) {
			return errors.New("not yet")
		}
		return nil
	})
	waitFor(t, 5*time.Second, "the announcement expires unconfirmed", func() error {
		if a.leaveIntentPending("eu-3", time.Now()) {
			return errors.New("still pending")
		}
		return nil
	})
	if m, _ := member(a, "eu-3"); m.State != StateAlive {
		t.Fatalf("eu-3 is %s after a forged announcement", m.State)
	}

	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Pool{a, b} {
		waitFor(t, 15*time.Second, p.cfg.Name+" sees eu-3 gone", func() error {
			if m, _ := member(p, "eu-3"); m.State == StateAlive {
				return errors.New("still alive")
			}
			return nil
		})
		if m, _ := member(p, "eu-3"); m.State != StateDead {
			t.Errorf("%s reports the crashed eu-3 %s, want dead", p.cfg.Name, m.State)
		}
	}

	if err := b.Leave(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "eu-1 sees eu-2 leave", func() error {
		if m, _ := member(a, "eu-2"); m.State != StateLeft {
			return fmt.Errorf("eu-2 is %s", m.State)
		}
		return nil
	})
}

func TestRestartedMemberRejoins(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(map[bool]string{false: "crash", true: "leave"}[graceful], func(t *testing.T) {
			a, b, c := startPool(t, "eu-1"), startPool(t, "eu-2"), startPool(t, "eu-3")
			joinAll(t, a, b, c)
			gone := EventFailed
			if graceful {
				gone = EventLeft
				if err := c.Leave(0); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Shutdown(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*Pool{a, b} {
				waitEvent(t, p, 15*time.Second, gone, "eu-3")
			}

			// The same cluster comes back on a new port.
			c2 := startPool(t, "eu-3")
			if c2.LocalAddr() == c.LocalAddr() {
				t.Logf("restarted on the same address %s", c2.LocalAddr())
			}
			if err := c2.JoinRetry(t.Context(), []string{a.LocalAddr()}, 100*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*Pool{a, b} {
				ev := waitEvent(t, p, 15*time.Second, EventJoin, "eu-3")
				if ev.Member.Addr != c2.LocalAddr() || ev.Member.State != StateAlive {
					t.Errorf("%s: rejoin event %v at %s, want alive at %s", p.cfg.Name, ev, ev.Member.Addr, c2.LocalAddr())
				}
			}
			waitFor(t, 10*time.Second, "everyone sees 3 alive", func() error {
				for _, p := range []*Pool{a, b, c2} {
					if got := namesIn(p, StateAlive); len(got) != 3 {
						return fmt.Errorf("%s sees %v alive", p.cfg.Name, got)
					}
				}
				return nil
			})
		})
	}
}

func TestRegionsDoNotMerge(t *testing.T) {
	eu := startPool(t, "eu-1")
	us := startPool(t, "us-1", func(c *Config) { c.Region = "us-east" })

	n, err := us.Join([]string{eu.LocalAddr()})
	if err == nil || n != 0 {
		t.Fatalf("join across regions: n=%d err=%v, want failure", n, err)
	}
	if got := len(eu.Members()); got != 1 {
		t.Errorf("eu pool has %d members, want 1: %v", got, eu.Members())
	}
	if got := len(us.Members()); got != 1 {
		t.Errorf("us pool has %d members, want 1: %v", got, us.Members())
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	key1 := bytes.Repeat([]byte{1}, 32)
	key2 := bytes.Repeat([]byte{2}, 32)
	a := startPool(t, "eu-1", func(c *Config) { c.SecretKey = key1 })

	for _, tc := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"eu-2", key2, false},
		{"eu-3", nil, false},
		{"eu-4", key1, true},
	} {
		p := startPool(t, tc.name, func(c *Config) { c.SecretKey = tc.key })
		n, err := p.Join([]string{a.LocalAddr()})
		if tc.ok && (err != nil || n != 1) {
			t.Errorf("%s with the right key: n=%d err=%v", tc.name, n, err)
		}
		if !tc.ok && (err == nil || n != 0) {
			t.Errorf("%s with key %x joined: n=%d err=%v", tc.name, tc.key, n, err)
		}
	}
	waitFor(t, 10*time.Second, "eu-1 sees only eu-4", func() error {
		if got := strings.Join(namesIn(a, StateAlive), ","); got != "eu-1,eu-4" {
			return fmt.Errorf("alive: %s", got)
		}
		return nil
	})
}

func TestJoinRetry(t *testing.T) {
	a := startPool(t, "eu-1")
	b := startPool(t, "eu-2")

	// Only ourselves: the first peer of a region returns at once.
	if err := a.JoinRetry(t.Context(), []string{a.LocalAddr()}, time.Second); err != nil {
		t.Fatalf("JoinRetry(self): %v", err)
	}
	// Ourselves, a dead address and a live one.
	dead := freeAddr(t)
	if err := b.JoinRetry(t.Context(), []string{b.LocalAddr(), dead, a.LocalAddr()}, 50*time.Millisecond); err != nil {
		t.Fatalf("JoinRetry: %v", err)
	}
	if got := namesIn(b, StateAlive); len(got) != 2 {
		t.Fatalf("after JoinRetry b sees %v", got)
	}

	// Nobody there: gives up with the context.
	c := startPool(t, "eu-3")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.JoinRetry(ctx, []string{dead}, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("JoinRetry with nobody there: %v, want DeadlineExceeded", err)
	}
}

// TestJoinRetryWaitsForSeed starts the seed after the joiner began retrying.
func TestJoinRetryWaitsForSeed(t *testing.T) {
	addr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)

	b := startPool(t, "eu-2")
	errc := make(chan error, 1)
	go func() { errc <- b.JoinRetry(t.Context(), []string{addr}, 50*time.Millisecond) }()

	select {
	case err := <-errc:
		t.Fatalf("JoinRetry returned before the seed existed: %v", err)
	case <-time.After(200 * time.Millisecond): // let it fail a few times
	}
	startPool(t, "eu-1", func(c *Config) { c.BindPort = port })
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("JoinRetry did not succeed after the seed started")
	}
}

// freeAddr returns a loopback address nobody listens on (a port that was
// free a moment ago).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestMetaValidationInNew(t *testing.T) {
	cfg := DefaultLocalConfig()
	cfg.Name, cfg.Region = "eu-1", "eu-west"
	cfg.Logger = newTestLogger(t)

	big := testMeta("eu-1")
	for i := range 40 {
		big.Labels[fmt.Sprintf("topology.example.com/label-%02d", i)] = "value"
	}
	_, err := New(cfg, big)
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("New with big meta: %v, want ErrMetaTooLarge", err)
	}
	if !strings.Contains(err.Error(), "512") || !strings.Contains(err.Error(), "labels") {
		t.Errorf("error does not give the limit and the fix: %v", err)
	}

	other := testMeta("eu-1")
	other.Region = "us-east"
	if _, err := New(cfg, other); !errors.Is(err, ErrBadMeta) {
		t.Errorf("New with another region's meta: %v, want ErrBadMeta", err)
	}
	if _, err := New(cfg, nil); !errors.Is(err, ErrBadMeta) {
		t.Errorf("New with nil meta: %v, want ErrBadMeta", err)
	}
	bad := cfg
	bad.Name = ""
	if _, err := New(bad, testMeta("eu-1")); !errors.Is(err, ErrBadConfig) {
		t.Errorf("New with bad config: %v, want ErrBadConfig", err)
	}

	p := startPool(t, "eu-1")
	if err := p.UpdateMeta(big); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("UpdateMeta with big meta: %v, want ErrMetaTooLarge", err)
	}
	if m := p.LocalMember(); !metaEqual(m.Meta, wantMeta("eu-1")) {
		t.Errorf("rejected update changed local meta to %v", m.Meta)
	}
}
