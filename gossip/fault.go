package gossip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// AllMembers, given as the member name to a FaultTransport method, makes the
// fault apply to all traffic, including traffic that cannot be attributed
// to a member. ("" is never a member name: Config.Validate refuses it.)
const AllMembers = ""

// ErrFaultBlocked is returned (wrapped) by a FaultTransport's dials to a
// member whose outbound traffic is blocked.
var ErrFaultBlocked = errors.New("gossip: blocked by FaultTransport")

// FaultTransport wraps a memberlist transport and injects network faults
// per member (cluster name) or for AllMembers: a block of all traffic, a
// block of one direction, a delay and a packet loss probability. Faults take
// effect at once for new packets and streams, and Heal removes them all
// without restarting anything. Hand it to a pool as Config.Transport; the
// pool then tells it which member gossips from which address (Learn).
//
// Faults act on this side only. Cutting a member off completely takes a
// Block on both ends, as a firewall rule on both hosts would; BlockTo on
// one end alone is a one-way cut.
//
// Attribution, and its limits:
//   - Outbound packets and streams carry the destination's name
//     (memberlist.Address.Name); when memberlist leaves it empty (joins by
//     address) the learned address → name map is used.
//   - Inbound packets come from the sender's gossip address, which the
//     transport learns from the addresses it sends to and from the pool's
//     member records.
//   - Inbound streams come from an ephemeral port: they are attributed by IP
//     only when exactly one known member uses that IP (one peer per pod IP,
//     as in a cluster). Otherwise, for example between pools on one
//     loopback address, only AllMembers faults apply to them.
//   - Unattributed traffic is subject to AllMembers faults only.
//
// Loss applies to packets; streams, like TCP, are not lossy, but blocks and
// delays apply to them when they are set up (dial and accept); a stream
// already set up is left alone. Loss draws come from a generator seeded by
// NewFaultTransport, so a run with the same traffic makes the same draws.
//
// All methods are safe for concurrent use. Shutdown shuts the inner
// transport down.
type FaultTransport struct {
	inner memberlist.NodeAwareTransport
	relay *relay

	mu     sync.Mutex
	rng    *rand.Rand
	faults map[string]linkFaults // by member name; AllMembers for everyone
	names  map[string]string     // gossip address (host:port) → member name
	addrs  map[string]string     // member name → gossip address
	stats  FaultStats

	shutdown sync.Once
	shutErr  error
}

var _ memberlist.NodeAwareTransport = (*FaultTransport)(nil)

// FaultStats counts what a FaultTransport did to the traffic.
type FaultStats struct {
	// PacketsDroppedOut counts outbound packets dropped by a block or loss.
	PacketsDroppedOut uint64
	// PacketsDroppedIn counts inbound packets dropped by a block or loss.
	PacketsDroppedIn uint64
	// DialsRefused counts outbound streams refused by a block.
	DialsRefused uint64
	// StreamsDroppedIn counts inbound streams closed by a block.
	StreamsDroppedIn uint64
	// Delayed counts packets and streams held back by a delay.
	Delayed uint64
}

// addressLearner is implemented by transports that attribute traffic to
// members by address (FaultTransport). The pool tells it every member's
// address from memberlist's callbacks: Learn must not block.
type addressLearner interface {
	Learn(name, addr string)
}

var _ addressLearner = (*FaultTransport)(nil)

// linkFaults are the faults set for one member, or for AllMembers.
type linkFaults struct {
	blockOut, blockIn bool
	delay             time.Duration
	loss              float64
}

// NewFaultTransport wraps inner, with no fault set. seed seeds the loss
// draws.
func NewFaultTransport(inner memberlist.NodeAwareTransport, seed uint64) *FaultTransport {
	t := &FaultTransport{
		inner:  inner,
		relay:  newRelay(),
		rng:    rand.New(rand.NewPCG(seed, seed^0x5eed)),
		faults: make(map[string]linkFaults),
		names:  make(map[string]string),
		addrs:  make(map[string]string),
	}
	t.relay.run(inner, t.inboundPacket, t.inboundStream)
	return t
}

// Block drops all traffic to and from the member on this side: outbound
// packets and dials, inbound packets and (where attributable) streams.
func (t *FaultTransport) Block(name string) {
	t.set(name, func(f *linkFaults) { f.blockOut, f.blockIn = true, true })
}

// BlockTo drops outbound traffic to the member only (a one-way cut): its
// packets to this side still arrive, and streams it opens still work.
func (t *FaultTransport) BlockTo(name string) {
	t.set(name, func(f *linkFaults) { f.blockOut = true })
}

// BlockFrom drops inbound traffic from the member only.
func (t *FaultTransport) BlockFrom(name string) {
	t.set(name, func(f *linkFaults) { f.blockIn = true })
}

// Unblock lifts Block, BlockTo and BlockFrom for the member; its delay and
// loss stay.
func (t *FaultTransport) Unblock(name string) {
	t.set(name, func(f *linkFaults) { f.blockOut, f.blockIn = false, false })
}

// SetDelay holds back every packet to and from the member, and the setup of
// every stream, by d (0 removes the delay). A member's delay adds to the
// AllMembers delay. Delayed packets may arrive out of order.
func (t *FaultTransport) SetDelay(name string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("gossip: FaultTransport delay %v for %q is negative", d, name)
	}
	t.set(name, func(f *linkFaults) { f.delay = d })
	return nil
}

// SetLoss drops each packet to and from the member with probability p
// (0 removes the loss). A member's loss and the AllMembers loss are drawn
// independently.
func (t *FaultTransport) SetLoss(name string, p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("gossip: FaultTransport loss %v for %q is not a probability in [0, 1]", p, name)
	}
	t.set(name, func(f *linkFaults) { f.loss = p })
	return nil
}

// Heal removes every fault, for every member and for AllMembers.
func (t *FaultTransport) Heal() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.faults)
}

// Learn records that the member gossips from addr (host:port), so that its
// inbound packets can be attributed to it. A pool calls it for every member
// it sees; a harness may call it too. It never blocks for long.
func (t *FaultTransport) Learn(name, addr string) {
	if name == "" || addr == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.learnLocked(name, addr)
}

// Stats returns the counters so far.
func (t *FaultTransport) Stats() FaultStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

func (t *FaultTransport) set(name string, change func(*linkFaults)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.faults[name]
	change(&f)
	if f == (linkFaults{}) {
		delete(t.faults, name)
	} else {
		t.faults[name] = f
	}
}

func (t *FaultTransport) learnLocked(name, addr string) {
	if old, ok := t.addrs[name]; ok && old != addr {
		delete(t.names, old)
	}
	t.addrs[name] = addr
	t.names[addr] = name
}

// decide applies the faults for traffic to (out) or from the named member
// ("" when unknown) and says whether to drop it and how long to hold it.
// lossy is false for streams. Called with t.mu held.
func (t *FaultTransport) decide(name string, out, lossy bool) (drop bool, delay time.Duration) {
	links := []linkFaults{t.faults[AllMembers]}
	if name != AllMembers {
		links = append(links, t.faults[name])
	}
	for _, f := range links {
		if (out && f.blockOut) || (!out && f.blockIn) {
			return true, 0
		}
		if lossy && f.loss > 0 && t.rng.Float64() < f.loss {
			return true, 0
		}
		delay += f.delay
	}
	if delay > 0 {
		t.stats.Delayed++
	}
	return false, delay
}

// outbound decides for traffic to a, learning its name and address.
func (t *FaultTransport) outbound(a memberlist.Address, lossy bool) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	name := a.Name
	if name != "" {
		t.learnLocked(name, a.Addr)
	} else {
		name = t.names[a.Addr]
	}
	drop, delay := t.decide(name, true, lossy)
	if drop {
		if lossy {
			t.stats.PacketsDroppedOut++
		} else {
			t.stats.DialsRefused++
		}
	}
	return drop, delay
}

// FinalAdvertiseAddr is the inner transport's.
func (t *FaultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo sends a packet to addr, subject to the faults of the member
// known at addr.
func (t *FaultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet to a, subject to its member's faults. A
// dropped packet is reported as sent, as the network would. A delayed one
// is sent later from another goroutine.
func (t *FaultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	drop, delay := t.outbound(a, true)
	switch {
	case drop:
		return time.Now(), nil
	case delay > 0:
		buf := append([]byte(nil), b...)
		time.AfterFunc(delay, func() {
			select {
			case <-t.relay.done:
			default:
				_, _ = t.inner.WriteToAddress(buf, a)
			}
		})
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, a)
}

// PacketCh delivers the inbound packets that pass the faults.
func (t *FaultTransport) PacketCh() <-chan *memberlist.Packet { return t.relay.packets }

// DialTimeout opens a stream to addr, subject to the faults of the member
// known at addr.
func (t *FaultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a, subject to its member's faults: a
// block fails at once with ErrFaultBlocked, a delay is waited out first
// (and fails with os.ErrDeadlineExceeded if it is longer than timeout).
func (t *FaultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	drop, delay := t.outbound(a, false)
	if drop {
		return nil, fmt.Errorf("%w: dial %s", ErrFaultBlocked, a.String())
	}
	if delay > 0 {
		wait, late := delay, false
		if timeout > 0 && delay >= timeout {
			wait, late = timeout, true
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.relay.done:
			return nil, fmt.Errorf("gossip: dial %s: FaultTransport shut down", a.String())
		}
		if late {
			return nil, fmt.Errorf("gossip: dial %s: delayed %v by FaultTransport, past the timeout %v: %w", a.String(), delay, timeout, os.ErrDeadlineExceeded)
		}
		if timeout > 0 {
			timeout -= delay
		}
	}
	return t.inner.DialAddressTimeout(a, timeout)
}

// StreamCh delivers the inbound streams that pass the faults.
func (t *FaultTransport) StreamCh() <-chan net.Conn { return t.relay.streams }

// Shutdown shuts the inner transport down and stops delivering. It is safe
// to call more than once.
func (t *FaultTransport) Shutdown() error {
	t.shutdown.Do(func() {
		t.shutErr = t.inner.Shutdown()
		t.relay.close()
	})
	return t.shutErr
}

// inboundPacket runs on the relay's packet goroutine.
func (t *FaultTransport) inboundPacket(pk *memberlist.Packet) {
	t.mu.Lock()
	name := ""
	if pk.From != nil {
		name = t.names[pk.From.String()]
	}
	drop, delay := t.decide(name, false, true)
	if drop {
		t.stats.PacketsDroppedIn++
	}
	t.mu.Unlock()
	switch {
	case drop:
	case delay > 0:
		time.AfterFunc(delay, func() {
			pk.Timestamp = time.Now()
			t.relay.deliverPacket(pk)
		})
	default:
		t.relay.deliverPacket(pk)
	}
}

// inboundStream runs on the relay's stream goroutine.
func (t *FaultTransport) inboundStream(c net.Conn) {
	t.mu.Lock()
	name := t.nameOfIPLocked(c.RemoteAddr())
	drop, delay := t.decide(name, false, false)
	if drop {
		t.stats.StreamsDroppedIn++
	}
	t.mu.Unlock()
	switch {
	case drop:
		_ = c.Close()
	case delay > 0:
		time.AfterFunc(delay, func() { t.relay.deliverStream(c) })
	default:
		t.relay.deliverStream(c)
	}
}

// nameOfIPLocked returns the only known member gossiping from the IP of
// addr, or "" if none or several do. Called with t.mu held.
func (t *FaultTransport) nameOfIPLocked(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	ip, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	found := ""
	for name, a := range t.addrs {
		if host, _, err := net.SplitHostPort(a); err == nil && host == ip {
			if found != "" {
				return ""
			}
			found = name
		}
	}
	return found
}
