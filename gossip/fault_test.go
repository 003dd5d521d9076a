package gossip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// fakeTransport is an inner transport whose inbound side the test drives
// and whose outbound side it records.
type fakeTransport struct {
	packets chan *memberlist.Packet
	streams chan net.Conn

	mu   sync.Mutex
	sent [][]byte
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{packets: make(chan *memberlist.Packet), streams: make(chan net.Conn)}
}

func (f *fakeTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), 7946, nil
}
func (f *fakeTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return f.WriteToAddress(b, memberlist.Address{Addr: addr})
}
func (f *fakeTransport) WriteToAddress(b []byte, _ memberlist.Address) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, append([]byte(nil), b...))
	return time.Now(), nil
}
func (f *fakeTransport) PacketCh() <-chan *memberlist.Packet { return f.packets }
func (f *fakeTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return f.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}
func (f *fakeTransport) DialAddressTimeout(memberlist.Address, time.Duration) (net.Conn, error) {
	c, _ := net.Pipe()
	return c, nil
}
func (f *fakeTransport) StreamCh() <-chan net.Conn { return f.streams }
func (f *fakeTransport) Shutdown() error           { return nil }

func (f *fakeTransport) sentCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// fromConn is a stream that claims to come from a given address.
type fromConn struct {
	net.Conn
	from net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.from }

func udpAddr(s string) net.Addr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// nextPacket returns the next packet the transport delivers.
func nextPacket(t *testing.T, ft *FaultTransport) *memberlist.Packet {
	t.Helper()
	select {
	case pk := <-ft.PacketCh():
		return pk
	case <-time.After(5 * time.Second):
		t.Fatal("no packet delivered")
		return nil
	}
}

func nextStream(t *testing.T, ft *FaultTransport) net.Conn {
	t.Helper()
	select {
	case c := <-ft.StreamCh():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no stream delivered")
		return nil
	}
}

func TestFaultTransportAttribution(t *testing.T) {
	inner := newFakeTransport()
	ft := NewFaultTransport(inner, 1)
	t.Cleanup(func() { _ = ft.Shutdown() })
	send := func(from string, body byte) {
		inner.packets <- &memberlist.Packet{Buf: []byte{body}, From: udpAddr(from), Timestamp: time.Now()}
	}

	// Learned from an outbound packet that carries the member's name.
	if _, err := ft.WriteToAddress([]byte{1}, memberlist.Address{Addr: "10.0.0.2:7946", Name: "eu-2"}); err != nil {
		t.Fatal(err)
	}
	ft.BlockFrom("eu-2")
	// The relay handles packets in order: the first one delivered after a
	// blocked one proves the blocked one was dropped.
	go func() {
		send("10.0.0.2:7946", 'x')
		send("10.0.0.3:7946", 'y')
	}()
	if pk := nextPacket(t, ft); pk.Buf[0] != 'y' {
		t.Fatalf("delivered %q, want only the packet of the unblocked sender", pk.Buf)
	}
	if got := ft.Stats().PacketsDroppedIn; got != 1 {
		t.Errorf("PacketsDroppedIn %d, want 1", got)
	}
	// BlockFrom leaves outbound traffic alone.
	if _, err := ft.WriteTo([]byte{2}, "10.0.0.2:7946"); err != nil || inner.sentCount() != 2 {
		t.Errorf("outbound packet to a BlockFrom member: err %v, %d sent", err, inner.sentCount())
	}

	// Inbound streams come from ephemeral ports: attributed by IP while
	// only one member uses it.
	c1, _ := net.Pipe()
	c2, _ := net.Pipe()
	c3, _ := net.Pipe()
	go func() {
		inner.streams <- fromConn{c1, tcpAddr("10.0.0.2:53211")}
		inner.streams <- fromConn{c2, tcpAddr("10.0.0.9:53212")}
	}()
	if c := nextStream(t, ft); c.(fromConn).Conn != c2 {
		t.Fatal("the stream from the blocked member's IP was delivered")
	}
	if got := ft.Stats().StreamsDroppedIn; got != 1 {
		t.Errorf("StreamsDroppedIn %d, want 1", got)
	}
	ft.Learn("eu-4", "10.0.0.2:7947") // now two members share the IP
	go func() { inner.streams <- fromConn{c3, tcpAddr("10.0.0.2:53213")} }()
	if c := nextStream(t, ft); c.(fromConn).Conn != c3 {
		t.Fatal("a stream from a shared IP was not delivered")
	}

	// BlockTo: outbound only, found by name or, without one, by address.
	ft.Unblock("eu-2")
	ft.BlockTo("eu-2")
	if _, err := ft.WriteTo([]byte{3}, "10.0.0.2:7946"); err != nil || inner.sentCount() != 2 {
		t.Errorf("packet to a BlockTo member by address: err %v, %d sent, want dropped silently", err, inner.sentCount())
	}
	if _, err := ft.DialAddressTimeout(memberlist.Address{Addr: "10.0.0.2:7946", Name: "eu-2"}, time.Second); !errors.Is(err, ErrFaultBlocked) {
		t.Errorf("dial to a BlockTo member: %v, want ErrFaultBlocked", err)
	}
	go send("10.0.0.2:7946", 'z')
	if pk := nextPacket(t, ft); pk.Buf[0] != 'z' {
		t.Fatalf("BlockTo dropped an inbound packet: %q", pk.Buf)
	}
	st := ft.Stats()
	if st.PacketsDroppedOut != 1 || st.DialsRefused != 1 {
		t.Errorf("stats %+v, want 1 packet dropped out and 1 dial refused", st)
	}

	// Everyone: Block(AllMembers) also cuts traffic nobody can attribute.
	ft.Heal()
	ft.Block(AllMembers)
	if _, err := ft.DialTimeout("192.0.2.1:7946", time.Second); !errors.Is(err, ErrFaultBlocked) {
		t.Errorf("dial to an unknown address with everyone blocked: %v", err)
	}
	ft.Heal()
	if c, err := ft.DialTimeout("192.0.2.1:7946", time.Second); err != nil {
		t.Errorf("dial after Heal: %v", err)
	} else {
		c.Close()
	}
}

func TestFaultTransportDelay(t *testing.T) {
	inner := newFakeTransport()
	ft := NewFaultTransport(inner, 1)
	t.Cleanup(func() { _ = ft.Shutdown() })
	if err := ft.SetDelay("eu-2", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a := memberlist.Address{Addr: "10.0.0.2:7946", Name: "eu-2"}
	start := time.Now()
	c, err := ft.DialAddressTimeout(a, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("delayed dial took %v, want at least 100ms", took)
	}
	if _, err := ft.DialAddressTimeout(a, 20*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("dial delayed past its timeout: %v, want a deadline error", err)
	}
	// A delayed packet is reported sent at once and sent later.
	if _, err := ft.WriteToAddress([]byte{1}, a); err != nil {
		t.Fatal(err)
	}
	if n := inner.sentCount(); n != 0 {
		t.Fatalf("delayed packet sent at once")
	}
	waitFor(t, 5*time.Second, "the delayed packet goes out", func() error {
		if inner.sentCount() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	if err := ft.SetDelay("eu-2", -time.Second); err == nil {
		t.Error("negative delay accepted")
	}
}

func TestFaultTransportLossIsSeeded(t *testing.T) {
	pattern := func(seed uint64) []bool {
		inner := newFakeTransport()
		ft := NewFaultTransport(inner, seed)
		defer ft.Shutdown()
		if err := ft.SetLoss(AllMembers, 0.3); err != nil {
			t.Fatal(err)
		}
		var got []bool
		for i := range 1000 {
			before := inner.sentCount()
			if _, err := ft.WriteTo([]byte{byte(i)}, "10.0.0.2:7946"); err != nil {
				t.Fatal(err)
			}
			got = append(got, inner.sentCount() > before)
		}
		if st := ft.Stats(); int(st.PacketsDroppedOut)+inner.sentCount() != 1000 {
			t.Errorf("dropped %d + sent %d != 1000", st.PacketsDroppedOut, inner.sentCount())
		}
		return got
	}
	count := func(p []bool) (n int) {
		for _, sent := range p {
			if !sent {
				n++
			}
		}
		return n
	}
	a, b, c := pattern(7), pattern(7), pattern(8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("the same seed dropped different packets")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("different seeds dropped the same packets")
	}
	if n := count(a); n < 240 || n > 360 {
		t.Errorf("loss 0.3 dropped %d of 1000 packets", n)
	}
	ft := NewFaultTransport(newFakeTransport(), 1)
	defer ft.Shutdown()
	for _, p := range []float64{-0.1, 1.5} {
		if err := ft.SetLoss("eu-2", p); err == nil {
			t.Errorf("loss %v accepted", p)
		}
	}
}

// startFaultPool starts a pool whose transport is a FaultTransport over a
// loopback NetTransport.
func startFaultPool(t *testing.T, name string, mod ...func(*Config)) (*Pool, *FaultTransport) {
	t.Helper()
	ft := NewFaultTransport(newNetTransport(t), uint64(len(name))*7919)
	p := startPool(t, name, append([]func(*Config){func(c *Config) { c.Transport = ft }}, mod...)...)
	return p, ft
}

// alive checks that each pool sees exactly the named members alive.
func alive(pools []*Pool, names ...string) error {
	want := fmt.Sprint(names)
	for _, p := range pools {
		if got := fmt.Sprint(namesIn(p, StateAlive)); got != want {
			return fmt.Errorf("%s sees %s alive, want %s", p.cfg.Name, got, want)
		}
	}
	return nil
}

// TestOneWayCut cuts eu-3's packets and dials to eu-1 on eu-3's side only
// (a broken route in one direction). Outcome: in a pool of three, SWIM's
// indirect probes through eu-2 mask the cut: eu-1's pings reach eu-3 and
// the ack comes back through eu-2; eu-3's pings to eu-1 go through eu-2 as
// well. Nobody is declared failed, even once, while eu-3 drops dozens of
// packets to eu-1.
func TestOneWayCut(t *testing.T) {
	a, _ := startFaultPool(t, "eu-1")
	b, _ := startFaultPool(t, "eu-2")
	c, fc := startFaultPool(t, "eu-3")
	pools := []*Pool{a, b, c}
	joinAll(t, pools...)
	since := map[string]time.Time{}
	for _, p := range pools {
		for _, m := range p.Members() {
			since[p.cfg.Name+">"+m.Name] = m.Since
		}
	}

	fc.BlockTo("eu-1")
	waitFor(t, 60*time.Second, "eu-3 has dropped 30 packets to eu-1", func() error {
		if err := alive(pools, "eu-1", "eu-2", "eu-3"); err != nil {
			t.Fatalf("the one-way cut made a member fail: %v", err)
		}
		if n := fc.Stats().PacketsDroppedOut; n < 30 {
			return fmt.Errorf("%d dropped", n)
		}
		return nil
	})
	for _, p := range pools {
		for _, m := range p.Members() {
			if m.Since != since[p.cfg.Name+">"+m.Name] {
				t.Errorf("%s saw %s change state during the cut (now %s since %v)", p.cfg.Name, m.Name, m.State, m.Since)
			}
		}
	}
}

// TestBlockAndHeal cuts eu-3 off on both sides of each link, then heals the
// network without restarting anything: every pool must see the cut as
// failures, then everyone alive again. The cut lasts longer than
// GossipToTheDeadTime, as real partitions do, so that memberlist has stopped
// talking to the dead members and only the pool's reconnecting heals it.
func TestBlockAndHeal(t *testing.T) {
	const toTheDead = 300 * time.Millisecond
	short := func(c *Config) { c.GossipToTheDeadTime = toTheDead }
	a, fa := startFaultPool(t, "eu-1", short)
	b, fb := startFaultPool(t, "eu-2", short)
	c, fc := startFaultPool(t, "eu-3", short)
	pools := []*Pool{a, b, c}
	joinAll(t, pools...)

	fa.Block("eu-3")
	fb.Block("eu-3")
	fc.Block("eu-1")
	fc.Block("eu-2")
	waitFor(t, 20*time.Second, "both sides see the other failed", func() error {
		if err := alive(pools[:2], "eu-1", "eu-2"); err != nil {
			return err
		}
		if err := alive(pools[2:], "eu-3"); err != nil {
			return err
		}
		for _, pair := range [][2]*Pool{{a, c}, {b, c}, {c, a}, {c, b}} {
			if m, _ := member(pair[0], pair[1].cfg.Name); m.State != StateDead {
				return fmt.Errorf("%s sees %s %s", pair[0].cfg.Name, m.Name, m.State)
			}
		}
		return nil
	})
	for _, ft := range []*FaultTransport{fa, fb, fc} {
		if st := ft.Stats(); st.PacketsDroppedOut == 0 {
			t.Errorf("the block dropped no packet: %+v", st)
		}
	}
	waitFor(t, 10*time.Second, "memberlist no longer gossips to the dead", func() error {
		for _, p := range pools {
			for _, m := range p.Members() {
				if m.State == StateDead && time.Since(m.Since) < 2*toTheDead {
					return fmt.Errorf("%s declared %s dead %v ago", p.cfg.Name, m.Name, time.Since(m.Since))
				}
			}
		}
		return nil
	})

	for _, ft := range []*FaultTransport{fa, fb, fc} {
		ft.Heal()
	}
	waitFor(t, 30*time.Second, "everyone is alive again after the heal", func() error {
		return alive(pools, "eu-1", "eu-2", "eu-3")
	})
}
