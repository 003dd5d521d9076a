package gossip

import (
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// transportSetup is the transport a pool hands to memberlist and the ports
// memberlist must be told about.
type transportSetup struct {
	transport memberlist.NodeAwareTransport
	// bindPort is memberlist's BindPort: the default port of join
	// addresses given without one.
	bindPort int
	// advertisePort is memberlist's AdvertisePort.
	advertisePort int
}

// setupTransport returns the transport the pool's memberlist runs on: the
// injected Config.Transport, or a NetTransport bound to BindAddr:BindPort.
// The ports are worked out here because memberlist only learns a dynamic
// port when it builds the NetTransport itself.
func setupTransport(c Config, logger *log.Logger) (transportSetup, error) {
	if c.Transport != nil {
		_, port, err := c.Transport.FinalAdvertiseAddr(c.AdvertiseAddr, c.AdvertisePort)
		if err != nil {
			return transportSetup{}, fmt.Errorf("gossip: the injected Transport has no address to advertise: %w", err)
		}
		return transportSetup{transport: c.Transport, bindPort: port, advertisePort: c.AdvertisePort}, nil
	}
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{c.BindAddr},
		BindPort:  c.BindPort,
		Logger:    logger,
	}
	// Binding UDP and TCP to one dynamic port races with other
	// processes; memberlist retries the same way.
	attempts := 1
	if c.BindPort == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(nc)
		if err == nil {
			// Wrapped in fault hooks with nothing set: a peer's gossip can
			// be cut or slowed for chaos tests (Pool.Faults).
			s := transportSetup{transport: NewFaultTransport(nt, uint64(time.Now().UnixNano())),
				bindPort: nt.GetAutoBindPort(), advertisePort: c.AdvertisePort}
			if s.advertisePort == 0 {
				s.advertisePort = s.bindPort
			}
			return s, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return transportSetup{}, fmt.Errorf("gossip: listen on %s:%d: %w", c.BindAddr, c.BindPort, err)
}

// relay forwards what an inner transport receives to its own channels, so
// that a wrapper can filter, delay or check packets and streams before its
// user sees them. The channels are unbuffered, like NetTransport's.
type relay struct {
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	stop    sync.Once
	wg      sync.WaitGroup
}

func newRelay() *relay {
	return &relay{
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
}

// run starts forwarding from inner. onPacket and onStream run on the
// relay's two goroutines, one call at a time each; they deliver (or not)
// with deliverPacket and deliverStream, possibly later from another
// goroutine.
func (r *relay) run(inner memberlist.Transport, onPacket func(*memberlist.Packet), onStream func(net.Conn)) {
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case pk := <-inner.PacketCh():
				onPacket(pk)
			case <-r.done:
				return
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		for {
			select {
			case c := <-inner.StreamCh():
				onStream(c)
			case <-r.done:
				return
			}
		}
	}()
}

// deliverPacket hands pk to the relay's reader; after close it drops it.
func (r *relay) deliverPacket(pk *memberlist.Packet) {
	select {
	case r.packets <- pk:
	case <-r.done:
	}
}

// deliverStream hands c to the relay's reader; after close it closes c.
func (r *relay) deliverStream(c net.Conn) {
	select {
	case r.streams <- c:
	case <-r.done:
		_ = c.Close()
	}
}

// close stops forwarding. Call it after the inner transport's Shutdown
// returned: until then the inner listeners may be blocked handing over a
// packet, and the relay must keep taking them. It is safe to call more
// than once.
func (r *relay) close() {
	r.stop.Do(func() { close(r.done) })
	r.wg.Wait()
}
