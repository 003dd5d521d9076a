package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// InmemNetwork connects InmemLinks in one process: the in-memory twin of
// the QUIC links, for tests of whatever runs on top of them. Every request
// and answer goes through the frame encoding (so size limits and encoding
// bugs show as they would on the wire) and the receiver gets its own copy.
// Beside each link's own Faults, the network can partition addresses and
// cut regions apart; a call across such a cut fails at once with
// ErrUnreachable, in both directions. Safe for concurrent use.
type InmemNetwork struct {
	mu    sync.RWMutex
	links map[string]*InmemLink
	// group of each partitioned address; nil when not partitioned.
	group map[string]int
	// regionCuts holds both orders of every cut pair of regions.
	regionCuts map[[2]string]bool
}

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{links: make(map[string]*InmemLink)}
}

// Add attaches a link at addr whose certificate names id: the other links
// see id as its verified Peer.Identity. The address of a closed link may
// be added again (a restart); adding an address in use panics, as it is a
// mistake in the test that does it.
func (n *InmemNetwork) Add(addr string, id Identity) *InmemLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.links[addr]; ok {
		panic(fmt.Sprintf("transport: inmem address %q is in use", addr))
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &InmemLink{net: n, addr: addr, id: id, faults: &Faults{}, ctx: ctx, cancel: cancel}
	n.links[addr] = l
	return l
}

// Partition splits the network: a link reaches only links whose address
// is in the same group. Addresses in no group form one more group
// together. It replaces an earlier partition; Heal ends it.
func (n *InmemNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, addr := range g {
			n.group[addr] = i + 1
		}
	}
}

// CutRegions cuts every link of region a from every link of region b, in
// both directions (by the identities given to Add).
func (n *InmemNetwork) CutRegions(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.regionCuts == nil {
		n.regionCuts = make(map[[2]string]bool)
	}
	n.regionCuts[[2]string{a, b}] = true
	n.regionCuts[[2]string{b, a}] = true
}

// Heal ends the partition and every region cut. The links' own Faults are
// left alone.
func (n *InmemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group, n.regionCuts = nil, nil
}

// route returns the link at addr if from can reach it.
func (n *InmemNetwork) route(from *InmemLink, addr string) (*InmemLink, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	to, ok := n.links[addr]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: nothing listens at %s", ErrUnreachable, addr)
	case n.group != nil && n.group[from.addr] != n.group[addr]:
		return nil, fmt.Errorf("%w: %s is partitioned away", ErrUnreachable, addr)
	case n.regionCuts[[2]string{from.id.Region, to.id.Region}]:
		return nil, fmt.Errorf("%w: region %q is cut from region %q", ErrUnreachable, to.id.Region, from.id.Region)
	}
	return to, nil
}

func (n *InmemNetwork) remove(l *InmemLink) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.links[l.addr] == l {
		delete(n.links, l.addr)
	}
}

// InmemLink is one end on an InmemNetwork. Requests are never early
// (there is no 0-RTT to replay).
type InmemLink struct {
	net    *InmemNetwork
	addr   string
	id     Identity
	faults *Faults

	handler atomic.Pointer[Handler]
	// ctx is cancelled by Close; the handlers' contexts derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

var (
	_ Link = (*InmemLink)(nil)
	_ Link = (*QUICLink)(nil)
)

// Addr is the address given to Add.
func (l *InmemLink) Addr() string { return l.addr }

// Faults are this end's fault hooks.
func (l *InmemLink) Faults() *Faults { return l.faults }

// Serve sets the handler for incoming requests.
func (l *InmemLink) Serve(h Handler) { l.handler.Store(&h) }

// Close detaches the link from the network and waits for its running
// handlers. Calls to its address then fail with ErrUnreachable.
func (l *InmemLink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.net.remove(l)
	l.cancel()
	l.running.Wait()
	return nil
}

// Call sends req to the link at addr, as Link.Call describes.
func (l *InmemLink) Call(ctx context.Context, addr string, req *shoalpb.WanMessage, opts CallOptions) (*shoalpb.WanMessage, Peer, error) {
	peer := Peer{Addr: addr}
	if l.isClosed() {
		return nil, peer, ErrClosed
	}
	frame, err := encodeFrame(req, MaxFrameSize)
	if err != nil {
		return nil, peer, fmt.Errorf("transport: call %s: %w", addr, err)
	}
	ctx, cancel := withCallTimeout(ctx, defaultCallTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	to, err := l.net.route(l, addr)
	if err != nil {
		return nil, peer, err
	}
	peer.Identity = to.id
	if v := l.faults.outbound(to.id, addr); v.drop {
		return nil, peer, fmt.Errorf("%w: %s: %s", ErrUnreachable, addr, v.why)
	} else if err := sleepCtx(ctx, v.delay); err != nil {
		return nil, peer, l.ctxErr(addr, err)
	}
	if err := checkRegion(opts, addr, to.id); err != nil {
		return nil, peer, err
	}
	ans, err := to.receive(ctx, Peer{Identity: l.id, Addr: l.addr}, frame)
	if err != nil {
		return nil, peer, l.ctxErr(addr, err)
	}
	m, err := ReadFrame(bufio.NewReader(bytes.NewReader(ans)), MaxFrameSize)
	if err != nil {
		return nil, peer, fmt.Errorf("%w: %s: %w", ErrBroken, addr, err)
	}
	m, err = answerOf(m)
	return m, peer, err
}

// receive handles one request frame from the caller and returns the
// answer frame, or ctx's error if the caller gives up first.
func (l *InmemLink) receive(ctx context.Context, from Peer, frame []byte) ([]byte, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %s closed", ErrUnreachable, l.addr)
	}
	l.running.Add(1)
	l.mu.Unlock()

	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	done := make(chan []byte, 1)
	go func() {
		defer l.running.Done()
		defer stop()
		defer cancel()
		v := l.faults.inbound(from.Identity, from.Addr)
		if v.drop {
			// Never answered: the caller waits for its timeout.
			<-hctx.Done()
			return
		}
		if sleepCtx(hctx, v.delay) != nil {
			return
		}
		req, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame)), MaxFrameSize)
		ans := errorAnswer(Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "%v", err))
		if err == nil {
			ans = handle(hctx, l.handler.Load(), from, req, false)
		}
		if l.ctx.Err() != nil {
			return // closing: the caller sees the link break
		}
		done <- encodeAnswer(ans, MaxFrameSize)
	}()
	select {
	case ans := <-done:
		return ans, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		// The receiver closed while handling, as a peer that stops.
		return nil, fmt.Errorf("%w: %s closed", ErrBroken, l.addr)
	}
}

// ctxErr is a call's error once ctx is done: ErrClosed if this link
// closed meanwhile.
func (l *InmemLink) ctxErr(addr string, err error) error {
	if l.ctx.Err() != nil {
		return ErrClosed
	}
	return fmt.Errorf("transport: call %s: %w", addr, err)
}

func (l *InmemLink) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
