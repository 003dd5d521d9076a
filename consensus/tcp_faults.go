package consensus

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrCutByFault is returned by a dial that a fault of the network cuts
// (TCPNetwork.Faults): nothing was sent.
var ErrCutByFault = errors.New("consensus: cut by an injected fault")

// FaultTarget selects the other end of Raft and forwarding connections:
// Cluster matches the cluster its certificate proves (with TLS only),
// Addr the address this node dials it at. A zero field matches anything;
// the zero FaultTarget matches every other node.
type FaultTarget struct {
	Cluster, Addr string
}

// matches: an outbound connection is known by the address dialed and,
// once the handshake is done, the identity; an inbound one by its
// identity only (it comes from an ephemeral port).
func (t FaultTarget) matches(p Peer, dialed string, outbound bool) bool {
	if t.Cluster != "" && (!p.Verified || p.Identity.Cluster != t.Cluster) {
		return false
	}
	if t.Addr != "" && (!outbound || dialed != t.Addr) {
		return false
	}
	return true
}

// NetFaults cuts a TCPNetwork's connections to and from chosen nodes, for
// tests and the chaos harness: a cut refuses new connections and closes
// the open ones that match (raft keeps a pool), so Raft and forwarding
// both stop. Safe for concurrent use.
type NetFaults struct {
	mu    sync.Mutex
	rules map[FaultTarget]faultDirs
	conns map[*faultConn]struct{}
}

type faultDirs struct{ out, in bool }

// faultConn is a connection the faults know, to close it when cut.
type faultConn struct {
	net.Conn
	f        *NetFaults
	peer     Peer
	dialed   string
	outbound bool
	once     sync.Once
}

func (c *faultConn) Close() error {
	c.once.Do(func() {
		c.f.mu.Lock()
		delete(c.f.conns, c)
		c.f.mu.Unlock()
	})
	return c.Conn.Close()
}

// Cut drops every connection to and from target.
func (f *NetFaults) Cut(target FaultTarget) { f.set(target, faultDirs{out: true, in: true}) }

// CutOneWay drops only the connections this node opens to target (Raft
// requests from here and forwards): target's own connections still
// arrive.
func (f *NetFaults) CutOneWay(target FaultTarget) { f.set(target, faultDirs{out: true}) }

// Heal removes the cut of target.
func (f *NetFaults) Heal(target FaultTarget) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rules, target)
}

// HealAll removes every cut.
func (f *NetFaults) HealAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

func (f *NetFaults) set(target FaultTarget, d faultDirs) {
	f.mu.Lock()
	if f.rules == nil {
		f.rules = map[FaultTarget]faultDirs{}
	}
	f.rules[target] = d
	var cut []*faultConn
	for c := range f.conns {
		if f.blockedLocked(c.peer, c.dialed, c.outbound) {
			cut = append(cut, c)
		}
	}
	f.mu.Unlock()
	for _, c := range cut {
		_ = c.Close()
	}
}

func (f *NetFaults) blockedLocked(p Peer, dialed string, outbound bool) bool {
	for t, d := range f.rules {
		if (outbound && d.out || !outbound && d.in) && t.matches(p, dialed, outbound) {
			return true
		}
	}
	return false
}

// admit checks a connection against the cuts and tracks it; a cut one is
// closed and refused.
func (f *NetFaults) admit(conn net.Conn, p Peer, dialed string, outbound bool) (net.Conn, error) {
	f.mu.Lock()
	if f.blockedLocked(p, dialed, outbound) {
		f.mu.Unlock()
		conn.Close()
		return nil, fmt.Errorf("%w: %s", ErrCutByFault, orAddr(dialed, p.Addr))
	}
	if f.conns == nil {
		f.conns = map[*faultConn]struct{}{}
	}
	fc := &faultConn{Conn: conn, f: f, peer: p, dialed: dialed, outbound: outbound}
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc, nil
}

// refusesDial reports, before dialing, whether addr is cut outbound by
// address alone.
func (f *NetFaults) refusesDial(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t, d := range f.rules {
		if d.out && t.Cluster == "" && (t.Addr == "" || t.Addr == addr) {
			return true
		}
	}
	return false
}

func orAddr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Faults are this network's fault hooks.
func (n *TCPNetwork) Faults() *NetFaults { return &n.faults }
