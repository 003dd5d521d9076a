package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

var (
	// ErrShutdown is returned by Join, JoinRetry, UpdateMeta and Leave once
	// Shutdown has been called.
	ErrShutdown = errors.New("gossip: pool is shut down")
	// ErrBroadcastTimeout is returned (wrapped) by UpdateMeta and Leave when
	// their message was not sent to any other member within
	// Config.BroadcastTimeout. The outcome is ambiguous: the change is in
	// effect locally and still spreads by gossip and push/pull if the
	// network allows.
	ErrBroadcastTimeout = errors.New("gossip: broadcast not confirmed in time")
)

// Pool is this peer's membership in its region's memberlist pool. It keeps
// a record of every member it has ever seen, delivers changes on Events,
// and gossips the local metadata. All methods are safe for concurrent use.
type Pool struct {
	cfg    Config
	log    *slog.Logger
	ml     *memberlist.Memberlist
	guard  *inboundGuard
	events *eventQueue

	// life is held (read) by Join, UpdateMeta and Leave while they use ml,
	// and (write) by Shutdown: memberlist panics on Leave after Shutdown.
	life     sync.RWMutex
	shutdown bool
	// updateMu serialises UpdateMeta.
	updateMu sync.Mutex
	// stopLoops stops the reconnect loop; loops waits for it.
	stopLoops     chan struct{}
	stopLoopsOnce sync.Once
	loops         sync.WaitGroup
	// learner is the transport's address learner, if it has one.
	learner addressLearner
	// faults are the transport's fault hooks, if it has them.
	faults *FaultTransport

	// The local node's advertised address, read once at New: memberlist's
	// LocalNode is its live record, which UpdateNode rewrites, so reading
	// it later races.
	localIP   net.IP
	localPort int
	localAddr string
	// joinPort is the port of join addresses given without one; bindIP is
	// the address the pool listens on, nil with an injected Transport.
	joinPort int
	bindIP   net.IP

	mu        sync.Mutex
	localMeta []byte // what NodeMeta gossips
	members   map[string]*record
	leaving   bool            // Leave was called
	reclaims  map[string]bool // names with a reclaim check pending
}

// New validates cfg and meta, starts listening and returns the pool, alone
// until Join. meta is the local peer's metadata: Region and Cluster may be
// empty (they are taken from cfg) but must otherwise match cfg; Version is
// set to MetaVersion. meta is not modified or kept. New returns an error
// wrapping ErrBadConfig, ErrBadMeta or ErrMetaTooLarge for bad input. If
// New fails, it has shut cfg.Transport down (the pool owns it either way).
func New(cfg Config, meta *shoalpb.PeerMeta) (_ *Pool, err error) {
	var guard *inboundGuard // once set, shutting it down shuts the transport down
	if cfg.Transport != nil {
		defer func() {
			if err != nil && guard == nil {
				_ = cfg.Transport.Shutdown()
			}
		}()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_, buf, err := prepareMeta(cfg, meta)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	p := &Pool{
		cfg:       cfg,
		log:       logger.With("region", cfg.Region, "cluster", cfg.Name),
		events:    newEventQueue(cfg.EventBuffer),
		localMeta: buf,
		members:   make(map[string]*record),
		reclaims:  make(map[string]bool),
		stopLoops: make(chan struct{}),
	}
	d := delegate{p: p}
	mc := cfg.memberlistConfig()
	mc.Logger = newMemberlistLogger(p.log)
	ts, err := setupTransport(cfg, mc.Logger)
	if err != nil {
		p.events.close()
		return nil, err
	}
	p.learner, _ = ts.transport.(addressLearner)
	p.faults, _ = ts.transport.(*FaultTransport)
	guard = newInboundGuard(ts.transport, cfg.label(), mc.SecretKey, p.log)
	p.guard = guard
	mc.Transport = guard
	mc.BindPort, mc.AdvertisePort = ts.bindPort, ts.advertisePort
	p.joinPort = ts.bindPort
	if cfg.Transport == nil {
		p.bindIP = net.ParseIP(cfg.BindAddr)
	}
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Conflict = d
	ml, err := memberlist.Create(mc)
	if err != nil {
		p.events.close()
		// memberlist shuts the transport down only on some of its errors;
		// the guard shuts it down once.
		_ = guard.Shutdown()
		return nil, fmt.Errorf("gossip: start memberlist for cluster %q: %w", cfg.Name, err)
	}
	p.ml = ml
	local := ml.LocalNode()
	p.localIP, p.localPort, p.localAddr = append(net.IP(nil), local.Addr...), int(local.Port), local.Address()
	if cfg.ReconnectInterval > 0 {
		p.loops.Go(func() { p.reconnectLoop(p.stopLoops) })
	}
	p.log.Info("gossip pool started", "addr", p.LocalAddr(), "profile", cfg.Profile, "encrypted", len(cfg.SecretKey) > 0)
	return p, nil
}

// Join contacts the given gossip addresses (host:port; a missing port means
// the local bind port, or with a Config.Transport the port it advertises)
// and merges state with each that answers. It returns how many answered,
// which counts this pool itself if one of addrs is its own address. The
// error, if any, lists the addresses that failed; n > 0 with an error means
// a partial success.
func (p *Pool) Join(addrs []string) (int, error) {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.shutdown {
		return 0, ErrShutdown
	}
	n, err := p.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("gossip: join %s: %w", strings.Join(addrs, ","), err)
	}
	return n, nil
}

// JoinRetry joins the pool through addrs the way Consul's retry_join does:
// it tries every interval until this pool knows at least one other live
// member, or ctx ends (then it returns an error wrapping ctx.Err() and the
// last join error). Addresses of this pool itself are skipped, so every
// peer can be given the same list; if only this pool is listed, JoinRetry
// returns nil at once (the first peer of a region). Another member joining
// this pool in the meantime also counts as success.
func (p *Pool) JoinRetry(ctx context.Context, addrs []string, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	var others []string
	for _, a := range addrs {
		if !p.isSelf(ctx, a) {
			others = append(others, a)
		}
	}
	if len(others) == 0 {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr error
	for {
		if p.othersAlive() {
			return nil
		}
		n, err := p.Join(others)
		if errors.Is(err, ErrShutdown) {
			return err
		}
		if n > 0 && p.othersAlive() {
			if err != nil {
				p.log.Info("joined the pool; some seed addresses did not answer", "err", err)
			}
			return nil
		}
		if err != nil {
			lastErr = err
		}
		p.log.Debug("join failed; retrying", "seeds", others, "err", err, "interval", interval)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gossip: could not join the pool through %s: %w (last error: %v)", strings.Join(others, ","), ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

// othersAlive says whether some member other than this one is alive.
func (p *Pool) othersAlive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, r := range p.members {
		if name != p.cfg.Name && r.m.State == StateAlive {
			return true
		}
	}
	return false
}

// isSelf says whether a join address ("host:port", "host" or
// "name/host:port" as memberlist accepts them) is this pool's own address.
// Unresolvable addresses are not ourselves.
func (p *Pool) isSelf(ctx context.Context, addr string) bool {
	if name, rest, ok := strings.Cut(addr, "/"); ok {
		if name == p.cfg.Name {
			return true
		}
		addr = rest
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, strconv.Itoa(p.joinPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port != p.localPort {
		return false
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.Equal(p.localIP) || ip.IsUnspecified() {
			return true
		}
		if ip.IsLoopback() && (p.bindIP.IsLoopback() || p.bindIP.IsUnspecified()) {
			return true
		}
	}
	return false
}

// Members returns every member this pool has seen since it started,
// including itself and members that are dead or left (with Since the time
// they entered that state), sorted by name. The result is a copy.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	out := make([]Member, 0, len(p.members))
	for _, r := range p.members {
		out = append(out, r.m.clone())
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Events returns the channel of membership changes, including this pool's
// own join. It is the same channel on every call and is closed by Shutdown.
//
// The channel is buffered (Config.EventBuffer). A slow consumer never slows
// the gossip: events that do not fit wait in a queue holding at most one
// event per member, and a newer event for a member replaces its waiting
// one (a failure followed by a rejoin is delivered as the rejoin only; a
// join followed by updates as one join with the latest metadata). The
// consumer therefore always gets each member's latest change, but not
// necessarily every intermediate one. Members is always up to date,
// whatever the consumer does.
func (p *Pool) Events() <-chan Event { return p.events.out }

// UpdateMeta replaces the local metadata and gossips it; the other members
// emit EventUpdate. Same rules for meta as New. It waits until the update
// was sent to at least one other member; on ErrBroadcastTimeout the new
// metadata is in effect locally and still spreads by push/pull.
func (p *Pool) UpdateMeta(meta *shoalpb.PeerMeta) error {
	_, buf, err := prepareMeta(p.cfg, meta)
	if err != nil {
		return err
	}
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.life.RLock()
	defer p.life.RUnlock()
	if p.shutdown {
		return ErrShutdown
	}
	p.mu.Lock()
	same := bytes.Equal(buf, p.localMeta)
	p.localMeta = buf
	p.mu.Unlock()
	if same {
		return nil
	}
	if err := p.ml.UpdateNode(p.cfg.BroadcastTimeout); err != nil {
		return fmt.Errorf("%w: metadata update of %q: %v", ErrBroadcastTimeout, p.cfg.Name, err)
	}
	return nil
}

// LocalMember returns this pool's own member record.
func (p *Pool) LocalMember() Member {
	p.mu.Lock()
	r, ok := p.members[p.cfg.Name]
	var m Member
	if ok {
		m = r.m.clone()
	}
	p.mu.Unlock()
	if !ok {
		// Not reached: memberlist reports the local join in Create. Never
		// call into memberlist with p.mu held: its callbacks take p.mu
		// with memberlist's locks held.
		m = Member{Name: p.cfg.Name, Addr: p.LocalAddr(), State: StateAlive}
	}
	return m
}

// InboundStats returns how much inbound gossip the pool has dropped before
// memberlist saw it: over a cap, malformed, of another region or not sealed
// with the pool's key.
func (p *Pool) InboundStats() InboundStats { return p.guard.stats() }

// LocalAddr returns the gossip address (host:port) other members use to
// reach this one, with the real port when Config.BindPort was 0.
func (p *Pool) LocalAddr() string { return p.localAddr }

// Leave leaves the pool gracefully: the other members see StateLeft and
// EventLeft instead of a failure. It first tells every live member that it
// is leaving (for at most Config.BroadcastTimeout), then broadcasts
// memberlist's leave, waiting up to timeout (0: Config.BroadcastTimeout) in
// all. The others believe the announcement only if memberlist's leave
// reaches them within 2 × BroadcastTimeout of it. On ErrBroadcastTimeout
// they may see a failure instead, once their failure detector notices. The
// pool keeps answering gossip until Shutdown, which should follow. Leave
// blocks Shutdown while it runs.
func (p *Pool) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = p.cfg.BroadcastTimeout
	}
	deadline := time.Now().Add(timeout)
	p.life.RLock()
	defer p.life.RUnlock()
	if p.shutdown {
		return ErrShutdown
	}
	p.mu.Lock()
	p.leaving = true
	p.mu.Unlock()

	// The others give memberlist's leave 2 × BroadcastTimeout after the
	// announcement to arrive: keep the announcement shorter than that.
	announced := time.Now().Add(p.cfg.BroadcastTimeout)
	if deadline.Before(announced) {
		announced = deadline
	}
	p.announceLeave(announced)
	if err := p.ml.Leave(time.Until(deadline)); err != nil {
		return fmt.Errorf("%w: leave of %q: %v", ErrBroadcastTimeout, p.cfg.Name, err)
	}
	p.log.Info("left the gossip pool")
	return nil
}

// announceLeave sends the leave intent to every live member over TCP, in
// parallel, until deadline. Failures are logged: memberlist's leave
// broadcast follows anyway.
func (p *Pool) announceLeave(deadline time.Time) {
	msg := encodeLeaveIntent(p.cfg.Name)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, n := range p.ml.Members() {
		if n.Name == p.cfg.Name {
			continue
		}
		node := *n
		wg.Go(func() {
			if err := p.ml.SendReliable(&node, msg); err != nil {
				p.log.Warn("could not announce leave to member", "member", node.Name, "err", err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.log.Warn("leave announcement not confirmed by every member in time")
	}
}

// Shutdown stops gossiping without leaving: the others see this member fail
// (use Leave first for a graceful exit). It closes the Events channel and
// shuts the transport down. It waits for a reconnect attempt in flight (at
// most TCPTimeout). It is safe to call more than once.
func (p *Pool) Shutdown() error {
	p.stopLoopsOnce.Do(func() { close(p.stopLoops) })
	defer p.loops.Wait()
	p.life.Lock()
	defer p.life.Unlock()
	if p.shutdown {
		return nil
	}
	p.shutdown = true
	err := p.ml.Shutdown()
	p.events.close()
	if err != nil {
		return fmt.Errorf("gossip: shutdown of %q: %w", p.cfg.Name, err)
	}
	p.log.Info("gossip pool shut down")
	return nil
}

// Faults are the fault hooks of the pool's transport: those of the
// FaultTransport it made around its own sockets, or of an injected one;
// nil when an injected transport has none.
func (p *Pool) Faults() *FaultTransport { return p.faults }
