package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

const (
	// logCacheSize is how many recent log entries are kept in memory in
	// front of the bolt store.
	logCacheSize = 512
	// transportMaxPool is raft's connection pool per peer.
	transportMaxPool = 3
	// transportTimeout bounds raft's own RPC I/O.
	transportTimeout = 10 * time.Second
	// boltLockTimeout bounds the wait for raft.db's file lock, held while
	// another node (or process) has the same DataDir open.
	boltLockTimeout = 5 * time.Second
)

// Node is this peer's member of the region's Raft group. All methods are
// safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	store    *raftboltdb.BoltStore
	mux      *mux
	hadState bool

	// ctx is cancelled by Shutdown; every goroutine of the node watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error

	notifyCh     chan bool // raft → monitorLeadership
	leaderCh     chan bool // → the one external consumer (LeaderCh)
	leaderLoopCh chan bool // → runLeadership

	mu        sync.Mutex
	members   []Member             // latest gossip view (a private copy)
	leaving   map[string]time.Time // servers removed at their request, by ID
	membersCh chan struct{}        // the view changed (leader loop)
	bootCh    chan struct{}        // the view changed (bootstrap loop)
}

// New opens (or creates) the Raft state under cfg.DataDir, listens on
// cfg.BindAddr and starts the node. It builds its own bolt store, snapshot
// store and transport from cfg, because the region has exactly one way to
// store and carry its log; fsm is the only outside dependency.
//
// A node with existing state rejoins its group with that state. A new node
// bootstraps as described on Config.BootstrapExpect, or waits for a leader
// to add it.
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fsm == nil {
		return nil, fmt.Errorf("%w: fsm is nil", ErrBadConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("cluster", cfg.ID)
	hlog := newRaftLogger(log)

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: data dir: %w", err)
	}
	boltOpts := *bbolt.DefaultOptions
	boltOpts.Timeout = boltLockTimeout // the file is locked while another node uses it
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"), BoltOptions: &boltOpts})
	if err != nil {
		return nil, fmt.Errorf("consensus: open raft.db: %w", err)
	}
	n := &Node{
		cfg:          cfg,
		log:          log,
		store:        store,
		notifyCh:     make(chan bool, 1),
		leaderCh:     make(chan bool, 1),
		leaderLoopCh: make(chan bool, 1),
		leaving:      make(map[string]time.Time),
		membersCh:    make(chan struct{}, 1),
		bootCh:       make(chan struct{}, 1),
	}
	ok := false
	defer func() {
		if !ok {
			n.closeOnError()
		}
	}()

	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	n.hadState, err = raft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("consensus: reading raft state: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("consensus: listen on %s: %w", cfg.BindAddr, err)
	}
	adv, err := advertiseAddr(cfg.AdvertiseAddr, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	n.mux = newMux(ln, adv, cfg.TLS, log)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{n.mux},
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.notifyCh
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.raft, err = raft.NewRaft(rc, fsm, logs, store, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	n.mux.serve(n.handleForwardConn)

	if !n.hadState && cfg.BootstrapExpect == 1 {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: n.trans.LocalAddr(),
		}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("consensus: bootstrap: %w", err)
		}
		log.Info("bootstrapped a single-voter group", "addr", adv.String())
	}

	n.wg.Add(2)
	go n.monitorLeadership()
	go n.runLeadership()
	if !n.hadState && cfg.BootstrapExpect > 1 {
		n.wg.Add(1)
		go n.bootstrapLoop()
	}
	log.Info("raft node started", "addr", adv.String(), "existing_state", n.hadState,
		"bootstrap_expect", cfg.BootstrapExpect)
	ok = true
	return n, nil
}

// advertiseAddr resolves the address others dial.
func advertiseAddr(advertise string, bound net.Addr) (net.Addr, error) {
	if advertise == "" {
		tcp, ok := bound.(*net.TCPAddr)
		if ok && tcp.IP.IsUnspecified() {
			return nil, fmt.Errorf("%w: bound to %s: set AdvertiseAddr to an address others can dial", ErrBadConfig, bound)
		}
		return bound, nil
	}
	a, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q: %v", ErrBadConfig, advertise, err)
	}
	if a.IP == nil || a.IP.IsUnspecified() {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q is not dialable", ErrBadConfig, advertise)
	}
	return a, nil
}

// closeOnError releases what New opened before it failed.
func (n *Node) closeOnError() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.mux != nil {
		_ = n.mux.Close()
	}
	_ = n.store.Close()
}

// Addr is the address other peers dial for Raft and forwarding (the
// RaftAddr to publish in gossip).
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// ID is the node's Raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// Raft returns the underlying raft instance: an escape hatch for tests and
// metrics. Changing the configuration through it bypasses the node.
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this node is the leader right now (it may lose
// leadership the next moment; Apply handles that).
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's ID and address as this node knows
// them; both are "" when no leader is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// LeaderCh delivers true when this node becomes leader and false when it
// stops being leader. It is meant for ONE consumer (the leader loop). The
// channel is buffered and never blocks raft: an unread value is replaced by
// the newer one, so a consumer sees the latest state, not every flip (a
// "lost and regained" may arrive as a single true; the consumer should
// treat true-while-leading as a restart). It is never closed.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

// Barrier waits until every log entry committed before the call is applied
// to the FSM. It must run on the leader (ErrNotLeader otherwise); the
// leader loop calls it before acting on the FSM's state.
func (n *Node) Barrier(ctx context.Context) error {
	if n.ctx.Err() != nil {
		return ErrShutdown
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return n.wait(ctx, n.raft.Barrier(time.Until(deadline)))
}

// Server is one entry of the Raft configuration.
type Server struct {
	ID       string
	Addr     string
	Suffrage string // "Voter" or "Nonvoter"
	Leader   bool
}

// Status is a point-in-time view of the node for status pages and tests.
type Status struct {
	ID           string
	State        string // "Follower", "Candidate", "Leader", "Shutdown"
	Term         uint64
	Leader       string // leader ID, "" if unknown
	LeaderAddr   string
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Servers      []Server // sorted as in the Raft configuration
}

// Status returns the node's current state and its view of the Raft
// configuration (the latest one, committed or not).
func (n *Node) Status() Status {
	lid, laddr := n.Leader()
	st := Status{
		ID:           n.cfg.ID,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		Leader:       lid,
		LeaderAddr:   laddr,
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	if n.ctx.Err() != nil {
		return st
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return st
	}
	for _, s := range f.Configuration().Servers {
		st.Servers = append(st.Servers, Server{
			ID:       string(s.ID),
			Addr:     string(s.Address),
			Suffrage: s.Suffrage.String(),
			Leader:   string(s.ID) == lid,
		})
	}
	return st
}

// Shutdown stops the node without leaving the group (call Leave first for a
// graceful exit). Its state stays in DataDir; New with the same DataDir
// rejoins. Calls after the first return the first result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.log.Info("raft node shutting down")
		n.cancel()
		errs := []error{n.raft.Shutdown().Error()}
		errs = append(errs, n.trans.Close())
		errs = append(errs, n.mux.Close())
		n.wg.Wait()
		errs = append(errs, n.store.Close())
		n.shutdownErr = errors.Join(errs...)
	})
	return n.shutdownErr
}

// withDeadline gives ctx the default ApplyTimeout if it has no deadline.
func (n *Node) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// wait waits for a raft future within ctx and maps raft's errors to the
// package's sentinels. An expired ctx after the future was created is an
// ambiguous outcome (ErrTimeout).
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // raft resolves every future (commit, loss or shutdown)
	select {
	case err := <-done:
		return mapRaftErr(err)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %v", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrShutdown, err)
	}
	return err
}
