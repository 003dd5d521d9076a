package gossip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// sendUDP sends one packet to addr from a fresh socket and returns the
// socket, for the reply.
func sendUDP(t *testing.T, addr string, pkt []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendTCP opens a stream to addr and writes msg. The caller reads the
// reply, if any, and closes the stream.
func sendTCP(t *testing.T, addr string, msg []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The pool may close the stream before reading all of a bomb.
	_, _ = c.Write(msg)
	return c
}

// unseal opens what sealPacket or sealStream sealed.
func unseal(t *testing.T, key, sealed, aad []byte) []byte {
	t.Helper()
	if len(sealed) < 29 || sealed[0] != 1 {
		t.Fatalf("reply is not sealed: %x", sealed)
	}
	plain, err := gcmFor(t, key).Open(nil, sealed[1:13], sealed[13:], aad)
	if err != nil {
		t.Fatalf("reply does not decrypt: %v", err)
	}
	return plain
}

// isAck says whether a packet's message is an ack, alone or in a compound.
func isAck(msg []byte) bool {
	if len(msg) >= 5 && msg[0] == mlHasCRC {
		msg = msg[5:]
	}
	if len(msg) > 0 && msg[0] == mlCompound {
		n := int(msg[1])
		parts := msg[2+2*n:]
		for i := range n {
			l := int(binary.BigEndian.Uint16(msg[2+2*i:]))
			if l <= len(parts) && isAck(parts[:l]) {
				return true
			}
			parts = parts[min(l, len(parts)):]
		}
		return false
	}
	return len(msg) > 0 && msg[0] == mlAck
}

// TestCraftedFramesReachMemberlist sends hand-built pings, plain and
// compressed, over UDP and TCP, to a plaintext and an encrypted pool, and
// expects memberlist's ack: the frame builders speak memberlist's format,
// so the bombs below, built the same way, are bombs memberlist would
// decompress, and the guard lets well-formed frames through.
func TestCraftedFramesReachMemberlist(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	for _, k := range [][]byte{nil, key} {
		p := startPool(t, "eu-1", func(c *Config) { c.SecretKey = k })
		for _, compress := range []bool{false, true} {
			name := fmt.Sprintf("encrypted=%v/compressed=%v", k != nil, compress)
			msg := pingMsg(7)
			if compress {
				msg = compressedMsg(lzwCompress(msg))
			}

			pkt := msg
			if k != nil {
				pkt = sealPacket(t, k, msg)
			}
			c := sendUDP(t, p.LocalAddr(), labelled(pkt))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 65536)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s: no UDP reply: %v", name, err)
			}
			reply, ok := bytes.CutPrefix(buf[:n], labelled(nil))
			if !ok {
				t.Fatalf("%s: UDP reply without the label: %x", name, buf[:n])
			}
			if k != nil {
				reply = unseal(t, k, reply, []byte(testLabel))
			}
			if !isAck(reply) {
				t.Errorf("%s: UDP reply is not an ack: %x", name, reply)
			}

			stream := msg
			if k != nil {
				stream = sealStream(t, k, msg)
			}
			reply, err = io.ReadAll(sendTCP(t, p.LocalAddr(), labelled(stream)))
			if err != nil {
				t.Fatalf("%s: TCP reply: %v", name, err)
			}
			if k != nil {
				if len(reply) < 5 || reply[0] != mlEncrypt {
					t.Fatalf("%s: TCP reply is not encrypted: %x", name, reply)
				}
				reply = unseal(t, k, reply[5:], append(append([]byte(nil), reply[:5]...), testLabel...))
			}
			if len(reply) == 0 || reply[0] != mlAck {
				t.Errorf("%s: TCP reply is not an ack: %x", name, reply)
			}
		}
		if st := p.InboundStats(); st != (InboundStats{}) {
			t.Errorf("well-formed frames were dropped: %+v", st)
		}
	}
}

// TestLZWBombIsDropped sends LZW bombs (a compressed message of 60 KB
// expanding to 160 MB in a UDP packet, of 150 KB expanding to 390 MB on a
// stream) to plaintext pools and, sealed with the right key, to encrypted
// ones. memberlist v0.6.0 would decompress them all without limit; the pool
// must drop them while allocating a small fraction of that, and keep
// gossiping.
func TestLZWBombIsDropped(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	for _, tc := range []struct {
		name    string
		key     []byte
		tcp     bool
		repeats int
	}{
		{"udp", nil, false, 39_000},
		{"tcp", nil, true, 100_000},
		{"udp encrypted", key, false, 39_000},
		{"tcp encrypted", key, true, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withKey := func(c *Config) { c.SecretKey = tc.key }
			p, q := startPool(t, "eu-1", withKey), startPool(t, "eu-2", withKey)
			joinAll(t, p, q)

			data, expanded := lzwBomb(tc.repeats)
			bomb := compressedMsg(data)
			switch {
			case tc.key != nil && tc.tcp:
				bomb = sealStream(t, tc.key, bomb)
			case tc.key != nil:
				bomb = sealPacket(t, tc.key, bomb)
			}
			bomb = labelled(bomb)

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if tc.tcp {
				sendTCP(t, p.LocalAddr(), bomb)
			} else {
				sendUDP(t, p.LocalAddr(), bomb)
			}
			waitFor(t, 20*time.Second, "the pool drops the bomb", func() error {
				if st := p.InboundStats(); st.Oversized != 1 {
					return fmt.Errorf("stats %+v", st)
				}
				return nil
			})
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("a %d-byte bomb expanding to %d MB: %.1f MB allocated in the process meanwhile, heap %d -> %d MB",
				len(bomb), expanded>>20, float64(allocated)/(1<<20), before.HeapAlloc>>20, after.HeapAlloc>>20)
			if allocated > uint64(expanded)/8 {
				t.Errorf("%d MB allocated while handling a bomb of %d MB", allocated>>20, expanded>>20)
			}

			meta := testMeta("eu-2")
			meta.Zone = "zone-b"
			if err := q.UpdateMeta(meta); err != nil {
				t.Fatal(err)
			}
			if ev := waitEvent(t, p, 10*time.Second, EventUpdate, "eu-2"); ev.Member.Meta.GetZone() != "zone-b" {
				t.Errorf("update after the bomb carries %v", ev.Member.Meta)
			}
		})
	}
}

// oldPeer is the delegate of a bare memberlist that compresses its gossip,
// as Shoal peers did before compression was turned off.
type oldPeer struct{ meta atomic.Pointer[[]byte] }

func (o *oldPeer) NodeMeta(int) []byte           { return *o.meta.Load() }
func (*oldPeer) NotifyMsg([]byte)                {}
func (*oldPeer) GetBroadcasts(int, int) [][]byte { return nil }
func (*oldPeer) LocalState(bool) []byte          { return nil }
func (*oldPeer) MergeRemoteState([]byte, bool)   {}

// compressionCounter counts the packets, and the compressed ones, sent
// through it.
type compressionCounter struct {
	memberlist.NodeAwareTransport
	mu                  sync.Mutex
	packets, compressed int
}

func (c *compressionCounter) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.mu.Lock()
	c.packets++
	rest, _ := bytes.CutPrefix(b, labelled(nil))
	if len(rest) > 5 && rest[0] == mlHasCRC {
		rest = rest[5:]
	}
	if len(rest) > 0 && rest[0] == mlCompress {
		c.compressed++
	}
	c.mu.Unlock()
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

func (c *compressionCounter) counts() (packets, compressed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets, c.compressed
}

// TestPoolDoesNotCompress: the pool's own gossip is never compressed, not
// even highly compressible metadata (see memberlistConfig).
func TestPoolDoesNotCompress(t *testing.T) {
	tr := &compressionCounter{NodeAwareTransport: newNetTransport(t)}
	a := startPool(t, "eu-1")
	b := startPool(t, "eu-2", func(c *Config) { c.Transport = tr })
	joinAll(t, a, b)
	meta := testMeta("eu-2")
	for i := range 6 {
		meta.Labels[fmt.Sprintf("example.com/label-%02d", i)] = "value-value-value"
	}
	if err := b.UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, 10*time.Second, EventUpdate, "eu-2")
	waitFor(t, 10*time.Second, "eu-2 has sent 20 packets", func() error {
		if packets, _ := tr.counts(); packets < 20 {
			return fmt.Errorf("%d packets", packets)
		}
		return nil
	})
	if packets, compressed := tr.counts(); compressed != 0 {
		t.Errorf("%d of %d packets compressed", compressed, packets)
	}
}

// TestCompressingPeerInteroperates: a peer that still compresses its gossip
// (memberlist's default, and Shoal's until now) stays in the pool during a
// rolling upgrade: the guard accepts compressed messages within the caps,
// on packets, on the streams it accepts and in the replies to its own.
func TestCompressingPeerInteroperates(t *testing.T) {
	pt := &countingTransport{NodeAwareTransport: newNetTransport(t)}
	p := startPool(t, "eu-1", func(c *Config) { c.Transport, c.PushPullInterval = pt, 300*time.Millisecond })
	oldMeta := func(zone string) []byte {
		meta := testMeta("eu-old")
		meta.Region, meta.Version, meta.Zone = "eu-west", MetaVersion, zone
		for i := range 6 {
			meta.Labels[fmt.Sprintf("example.com/label-%02d", i)] = "value-value-value"
		}
		buf, err := encodeMeta(meta)
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	var d oldPeer
	buf := oldMeta("zone-a")
	d.meta.Store(&buf)

	tr := &compressionCounter{NodeAwareTransport: newNetTransport(t)}
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.Label, mc.Transport, mc.Delegate = "eu-old", testLabel, tr, &d
	mc.Logger = newMemberlistLogger(newTestLogger(t))
	mc.ProbeInterval, mc.GossipInterval = 200*time.Millisecond, 50*time.Millisecond
	if !mc.EnableCompression {
		t.Fatal("memberlist's default no longer compresses")
	}
	old, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Shutdown() })
	// The join is a compressed push/pull.
	if _, err := old.Join([]string{p.LocalAddr()}); err != nil {
		t.Fatalf("a compressing peer cannot join: %v", err)
	}
	waitEvent(t, p, 10*time.Second, EventJoin, "eu-old")

	// Its metadata update is a compressed alive message.
	before, _ := tr.counts()
	buf = oldMeta("zone-b")
	d.meta.Store(&buf)
	if err := old.UpdateNode(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, p, 10*time.Second, EventUpdate, "eu-old"); ev.Member.Meta.GetZone() != "zone-b" {
		t.Fatalf("update of the compressing peer carries %v", ev.Member.Meta)
	}
	// And the pool's push/pulls get compressed replies.
	dials := pt.dials.Load()
	waitFor(t, 10*time.Second, "the pool push/pulls with the old peer twice", func() error {
		if n := pt.dials.Load(); n < dials+2 {
			return fmt.Errorf("%d push/pulls", n-dials)
		}
		return nil
	})
	if packets, compressed := tr.counts(); compressed == 0 {
		t.Fatalf("none of the old peer's %d packets (%d since the update) was compressed", packets, packets-before)
	}
	if st := p.InboundStats(); st != (InboundStats{}) {
		t.Errorf("the pool dropped gossip of a compressing peer: %+v", st)
	}
	if m, _ := member(p, "eu-old"); m.State != StateAlive {
		t.Errorf("the pool sees the compressing peer %s", m.State)
	}
}
