package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// InboundStats counts the inbound gossip a pool dropped before memberlist
// saw it. The caps are in the package documentation.
type InboundStats struct {
	// PacketsDropped counts packets over a cap, malformed, of another
	// region or not sealed with the pool's key.
	PacketsDropped uint64
	// StreamsDropped counts stream messages dropped for the same reasons;
	// memberlist then closes the stream.
	StreamsDropped uint64
	// Oversized counts the drops of either kind that were over a size cap,
	// decompressed size included.
	Oversized uint64
}

// warnEvery is the least time between two warnings about dropped gossip.
const warnEvery = 10 * time.Second

// inboundGuard is the transport a pool hands to memberlist: it wraps the
// pool's transport (its own NetTransport or Config.Transport) and checks
// every inbound packet and stream message against the caps before
// memberlist parses it, dropping what fails. It sits around an injected
// transport, right below memberlist, so that nothing any transport delivers
// reaches memberlist unchecked; outbound traffic passes through untouched.
// All its methods are safe for concurrent use.
type inboundGuard struct {
	inner memberlist.NodeAwareTransport
	check checker
	log   *slog.Logger
	relay *relay

	shutdown sync.Once
	shutErr  error

	packets, streams, oversized atomic.Uint64

	warnMu   sync.Mutex
	lastWarn time.Time
	unwarned uint64
}

var _ memberlist.NodeAwareTransport = (*inboundGuard)(nil)

// newInboundGuard wraps inner for a pool with the given label and key (nil
// for plaintext) and starts checking what it receives.
func newInboundGuard(inner memberlist.NodeAwareTransport, label string, key []byte, log *slog.Logger) *inboundGuard {
	g := &inboundGuard{
		inner: inner,
		check: checker{label: label, key: key},
		log:   log,
		relay: newRelay(),
	}
	g.relay.run(inner, g.inboundPacket, g.inboundStream)
	return g
}

// stats returns the counters so far.
func (g *inboundGuard) stats() InboundStats {
	return InboundStats{PacketsDropped: g.packets.Load(), StreamsDropped: g.streams.Load(), Oversized: g.oversized.Load()}
}

// FinalAdvertiseAddr, WriteTo and WriteToAddress are the inner
// transport's: outbound traffic passes through.
func (g *inboundGuard) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return g.inner.FinalAdvertiseAddr(ip, port)
}

func (g *inboundGuard) WriteTo(b []byte, addr string) (time.Time, error) {
	return g.inner.WriteTo(b, addr)
}

func (g *inboundGuard) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return g.inner.WriteToAddress(b, a)
}

// PacketCh delivers the inbound packets that passed the checks.
func (g *inboundGuard) PacketCh() <-chan *memberlist.Packet { return g.relay.packets }

// DialTimeout and DialAddressTimeout check the response memberlist reads
// from the stream they open: it is inbound gossip too.
func (g *inboundGuard) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := g.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return g.wrap(c, false), nil
}

func (g *inboundGuard) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := g.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return g.wrap(c, false), nil
}

// StreamCh delivers the inbound streams, each checked as memberlist reads
// it.
func (g *inboundGuard) StreamCh() <-chan net.Conn { return g.relay.streams }

// Shutdown shuts the inner transport down, then stops relaying. It is safe
// to call more than once.
func (g *inboundGuard) Shutdown() error {
	g.shutdown.Do(func() {
		g.shutErr = g.inner.Shutdown()
		g.relay.close()
	})
	return g.shutErr
}

// inboundPacket runs on the relay's packet goroutine, one packet at a time.
func (g *inboundGuard) inboundPacket(pk *memberlist.Packet) {
	if err := g.check.checkPacket(pk.Buf); err != nil {
		g.dropped("packet", pk.From, err)
		return
	}
	g.relay.deliverPacket(pk)
}

// inboundStream runs on the relay's stream goroutine. The check happens
// when memberlist first reads, on memberlist's goroutine for the stream, so
// that a slow sender holds up only its own stream.
func (g *inboundGuard) inboundStream(c net.Conn) {
	g.relay.deliverStream(g.wrap(c, true))
}

func (g *inboundGuard) wrap(c net.Conn, labelled bool) net.Conn {
	return &guardConn{Conn: c, g: g, labelled: labelled, src: source{r: c, max: maxStreamBytes}}
}

// dropped counts a drop and logs it, at most once per warnEvery with the
// number of drops in between.
func (g *inboundGuard) dropped(kind string, from net.Addr, err error) {
	if kind == "packet" {
		g.packets.Add(1)
	} else {
		g.streams.Add(1)
	}
	if errors.Is(err, errOversized) {
		g.oversized.Add(1)
	}
	g.warnMu.Lock()
	now := time.Now()
	if !g.lastWarn.IsZero() && now.Sub(g.lastWarn) < warnEvery {
		g.unwarned++
		g.warnMu.Unlock()
		return
	}
	since := g.unwarned
	g.lastWarn, g.unwarned = now, 0
	g.warnMu.Unlock()
	addr := ""
	if from != nil {
		addr = from.String()
	}
	g.log.Warn("dropped inbound gossip", "kind", kind, "from", addr, "err", err,
		"also_dropped_since_last_warning", since, "stats", fmt.Sprintf("%+v", g.stats()))
}

// guardConn hands memberlist the bytes of a stream one checked message at
// a time: the first Read reads and checks a whole message (up to
// maxStreamBytes) before returning any of it. Reads are serialised; the
// rest of net.Conn passes through, deadlines included.
type guardConn struct {
	net.Conn
	g *inboundGuard

	mu sync.Mutex
	// labelled says the next message starts with the label header.
	labelled bool
	src      source // the unread rest of the stream
	ready    []byte // checked bytes memberlist has not read yet
	err      error
}

func (c *guardConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ready) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.g.check.checkStream(&c.src, c.labelled)
		if err != nil {
			if errors.Is(err, errOversized) || errors.Is(err, errMalformed) {
				c.g.dropped("stream", c.RemoteAddr(), err)
				err = fmt.Errorf("gossip: dropped inbound stream message: %w", err)
			}
			c.err = err
			return 0, err
		}
		c.labelled = false
		c.ready, c.src.buf = c.src.buf[:n:n], c.src.buf[n:]
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}
