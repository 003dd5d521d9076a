package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/transport"
)

// ErrUnreachable is returned by an InmemTransport for a node it cannot
// reach: cut off by a partition, or not on the network (any more).
var ErrUnreachable = errors.New("consensus: node unreachable")

// InmemNetwork connects the in-memory transports of the nodes of one
// region in one process, with fault primitives: cut the link between two
// nodes (both ways or one way), partition the nodes into groups, isolate
// one, heal. It is how tests show a partition without killing anything,
// as hashicorp/raft's InmemTransport and its fuzzy tests do.
//
// Raft's RPCs travel through hashicorp/raft's InmemTransport; a cut link
// from A to B drops the requests A sends to B (answers to B's requests
// still reach B, as raft's in-memory transport answers on a channel).
// Forwarding connections are in-memory pipes and need both directions.
// All methods are safe for concurrent use.
type InmemNetwork struct {
	mu    sync.Mutex
	nodes map[string]*InmemTransport
	cut   map[[2]string]bool // from → to is cut
	// RPCTimeout bounds one Raft RPC to an unresponsive node.
	timeout time.Duration
}

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{nodes: map[string]*InmemTransport{}, cut: map[[2]string]bool{}, timeout: time.Second}
}

// Add puts a node on the network at addr (any unique string) and returns
// its transport. id is what the node's certificate would prove; the zero
// Identity makes it an unverified node, as on a network without TLS. A
// node may be added again at the same address after its transport was
// closed (a restart).
func (n *InmemNetwork) Add(addr string, id transport.Identity) (*InmemTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[addr] != nil {
		return nil, fmt.Errorf("consensus: in-memory address %q is taken", addr)
	}
	_, rt := raft.NewInmemTransportWithTimeout(raft.ServerAddress(addr), n.timeout)
	t := &InmemTransport{net: n, addr: addr, id: id, raft: rt, closed: make(chan struct{})}
	n.nodes[addr] = t
	n.relinkLocked()
	return t, nil
}

// relinkLocked makes raft's routes match the cuts; n.mu is held.
func (n *InmemNetwork) relinkLocked() {
	for a, ta := range n.nodes {
		for b, tb := range n.nodes {
			if a == b {
				continue
			}
			if n.cut[[2]string{a, b}] {
				ta.raft.Disconnect(raft.ServerAddress(b))
			} else {
				ta.raft.Connect(raft.ServerAddress(b), tb.raft)
			}
		}
	}
}

// Cut cuts the link between a and b both ways.
func (n *InmemNetwork) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{a, b}] = true
	n.cut[[2]string{b, a}] = true
	n.relinkLocked()
}

// CutOneWay drops what from sends to to; the other direction stays.
func (n *InmemNetwork) CutOneWay(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{from, to}] = true
	n.relinkLocked()
}

// Isolate cuts addr off from every other node, present and future, until
// Heal.
func (n *InmemNetwork) Isolate(addr string) {
	n.Partition([]string{addr})
}

// Partition cuts every link between the groups; nodes in no group form
// one more group. Earlier cuts stay.
func (n *InmemNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	group := map[string]int{}
	for i, g := range groups {
		for _, a := range g {
			group[a] = i + 1
		}
	}
	for a := range n.nodes {
		for b := range n.nodes {
			if a != b && group[a] != group[b] {
				n.cut[[2]string{a, b}] = true
			}
		}
	}
	n.relinkLocked()
}

// Heal restores every link.
func (n *InmemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
	n.relinkLocked()
}

// linked reports whether from can reach to and to is on the network.
func (n *InmemNetwork) linked(from, to string) (*InmemTransport, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.nodes[to]
	return t, t != nil && n.nodes[from] != nil && !n.cut[[2]string{from, to}]
}

func (n *InmemNetwork) remove(t *InmemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
	for _, o := range n.nodes {
		o.raft.Disconnect(raft.ServerAddress(t.addr))
	}
	t.raft.DisconnectAll()
}

// InmemTransport is one node's Network on an InmemNetwork.
type InmemTransport struct {
	net  *InmemNetwork
	addr string
	id   transport.Identity
	raft *raft.InmemTransport

	mu      sync.Mutex
	handle  func(net.Conn, Peer)
	wg      sync.WaitGroup
	closed  chan struct{}
	closeMu sync.Once
}

var _ Network = (*InmemTransport)(nil)

// Raft implements Network.
func (t *InmemTransport) Raft() raft.Transport { return t.raft }

// Addr implements Network.
func (t *InmemTransport) Addr() string { return t.addr }

func (t *InmemTransport) peer() Peer {
	return Peer{Identity: t.id, Verified: t.id != (transport.Identity{}), Addr: t.addr}
}

// ServeForward implements Network.
func (t *InmemTransport) ServeForward(handle func(net.Conn, Peer)) {
	t.mu.Lock()
	t.handle = handle
	t.mu.Unlock()
}

// DialForward implements Network: a pipe to the node at addr, if the
// links both ways are up.
func (t *InmemTransport) DialForward(ctx context.Context, addr string) (net.Conn, Peer, error) {
	if err := ctx.Err(); err != nil {
		return nil, Peer{Addr: addr}, err
	}
	dst, ok := t.net.linked(t.addr, addr)
	if _, back := t.net.linked(addr, t.addr); !ok || !back {
		return nil, Peer{Addr: addr}, fmt.Errorf("%w: %s", ErrUnreachable, addr)
	}
	return dst.accept(t.peer())
}

func (t *InmemTransport) accept(from Peer) (net.Conn, Peer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return nil, Peer{Addr: t.addr}, fmt.Errorf("%w: %s is closed", ErrUnreachable, t.addr)
	default:
	}
	if t.handle == nil {
		return nil, Peer{Addr: t.addr}, fmt.Errorf("%w: %s does not serve forwarding yet", ErrUnreachable, t.addr)
	}
	client, server := net.Pipe()
	handle := t.handle
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		handle(server, from)
	}()
	return client, t.peer(), nil
}

// Identify implements Network.
func (t *InmemTransport) Identify(ctx context.Context, addr string) (Peer, error) {
	if err := ctx.Err(); err != nil {
		return Peer{Addr: addr}, err
	}
	dst, ok := t.net.linked(t.addr, addr)
	if !ok {
		return Peer{Addr: addr}, fmt.Errorf("%w: %s", ErrUnreachable, addr)
	}
	return dst.peer(), nil
}

// Close implements Network: the node leaves the network.
func (t *InmemTransport) Close() error {
	t.closeMu.Do(func() {
		t.mu.Lock()
		close(t.closed)
		t.mu.Unlock()
		t.net.remove(t)
		t.wg.Wait()
	})
	return nil
}
