package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"k8s.io/utils/clock"
)

// Node is this peer's member of the region's Raft group. All methods are
// safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	net      Network
	guard    *termGuard
	fsm      *replayFSM
	stable   raft.StableStore
	hadState bool

	// restartTarget is the restart point read at start: until Raft has
	// applied that far, the state machine serves replayed local state.
	restartTarget uint64
	started       time.Time
	restartMu     sync.Mutex
	restartPoint  uint64 // the last one written
	caughtUp      atomic.Bool
	caughtUpCh    chan struct{} // closed when caughtUp turns true

	// ctx is cancelled by Shutdown; every goroutine of the node watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error

	notifyCh     chan bool // raft → monitorLeadership
	leaderCh     chan bool // → the one external consumer (LeaderCh)
	leaderLoopCh chan bool // → runLeadership

	// leaderChangedCh is closed and replaced whenever raft sees another
	// leader, or none (watchLeader).
	leaderMu        sync.Mutex
	leaderChangedCh chan struct{}

	mu        sync.Mutex
	members   []Member             // latest gossip view (a private copy)
	leaving   map[string]time.Time // servers removed at their request, by ID
	membersCh chan struct{}        // the view changed (leader loop)
	bootCh    chan struct{}        // the view changed (bootstrap loop)
	promised  bootstrapPromise     // the bootstrap this node agreed to
}

// New starts this peer's member of the region's Raft group, as
// hashicorp/raft's NewRaft does, from what the caller gives it: the state
// machine, the log, stable and snapshot stores (OpenDiskStore, or
// InmemStore in tests) and the network (NewTCPNetwork, or an
// InmemNetwork's transport). The node owns network from here on and closes
// it on Shutdown; the stores stay the caller's, to close after Shutdown.
//
// A node with existing state rejoins its group with that state: before
// Raft starts, the newest snapshot is restored and the local log replayed
// up to the restart point (see SetRestartPoint), so the state machine
// serves what this node last acted on even while no leader can be
// reached. A new node bootstraps as described on Config.BootstrapExpect,
// or waits for a leader to add it.
func New(cfg Config, fsm raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, network Network) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case fsm == nil:
		return nil, fmt.Errorf("%w: fsm is nil", ErrBadConfig)
	case logs == nil || stable == nil || snaps == nil:
		return nil, fmt.Errorf("%w: the log, stable and snapshot stores are required", ErrBadConfig)
	case network == nil:
		return nil, fmt.Errorf("%w: network is nil", ErrBadConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger.With("cluster", cfg.ID)
	hlog := newRaftLogger(log)

	n := &Node{
		cfg:             cfg,
		log:             log,
		net:             network,
		fsm:             &replayFSM{fsm: fsm},
		stable:          stable,
		started:         cfg.Clock.Now(),
		notifyCh:        make(chan bool, 1),
		leaderCh:        make(chan bool, 1),
		leaderLoopCh:    make(chan bool, 1),
		leaderChangedCh: make(chan struct{}),
		caughtUpCh:      make(chan struct{}),
		leaving:         make(map[string]time.Time),
		membersCh:       make(chan struct{}, 1),
		bootCh:          make(chan struct{}, 1),
	}
	ok := false
	defer func() {
		if !ok {
			n.closeOnError()
		}
	}()

	var err error
	n.hadState, err = raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("consensus: reading raft state: %w", err)
	}
	if n.restartTarget, err = readRestartPoint(stable); err != nil {
		return nil, err
	}
	n.restartPoint = n.restartTarget
	at, err := n.fsm.replay(logs, snaps, n.restartTarget, log)
	if err != nil {
		return nil, err
	}
	if n.restartTarget > 0 {
		log.Info("replayed the local log: serving the state last acted on until a leader is caught up with",
			"replayed_to", at, "restart_point", n.restartTarget)
	}

	n.guard, err = newTermGuard(network.Raft(), func() uint64 {
		t, _ := stable.GetUint64([]byte("CurrentTerm")) // raft's own key; 0 before the first term
		return t
	}, log)
	if err != nil {
		return nil, err
	}

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
	// The snapshot was restored by replay above, with the log after it.
	rc.NoSnapshotRestoreOnStart = true
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, stable, snaps, n.guard)
	if err != nil {
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	n.guard.setTerm(n.raft.CurrentTerm)
	// Raft drops an observation the watcher has not taken yet; one
	// pending wake-up is all a waiting writer needs.
	leaderObs := make(chan raft.Observation, 1)
	n.raft.RegisterObserver(raft.NewObserver(leaderObs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	network.ServeForward(n.handleForwardConn)

	if !n.hadState && cfg.BootstrapExpect == 1 {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(network.Addr()),
		}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("consensus: bootstrap: %w", err)
		}
		log.Info("bootstrapped a single-voter group", "addr", network.Addr())
	}

	n.wg.Add(4)
	go n.watchLeader(leaderObs)
	go n.monitorLeadership()
	go n.runLeadership()
	go n.catchUp()
	if !n.hadState && cfg.BootstrapExpect > 1 {
		n.wg.Add(1)
		go n.bootstrapLoop()
	}
	log.Info("raft node started", "addr", network.Addr(), "existing_state", n.hadState,
		"bootstrap_expect", cfg.BootstrapExpect)
	ok = true
	return n, nil
}

// closeOnError releases what New opened before it failed.
func (n *Node) closeOnError() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	if n.guard != nil {
		_ = n.guard.Close()
	}
	_ = n.net.Close()
}

// Addr is the address other peers dial for Raft and forwarding (the
// RaftAddr to publish in gossip).
func (n *Node) Addr() string { return n.net.Addr() }

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

// SetRestartPoint records durably that this node acted on the state up to
// index (a peer calls it before it applies that state to its cluster).
// When the node restarts, New replays the local log up to the restart
// point before Raft starts, so the state machine serves what the node last
// acted on even while no leader can be reached, and Stale reports true
// until Raft has applied that far again. Points only move forward; a
// lower index is ignored. It writes to the stable store (one small
// synchronous write) only when the point moves.
func (n *Node) SetRestartPoint(index uint64) error {
	n.restartMu.Lock()
	defer n.restartMu.Unlock()
	if index <= n.restartPoint {
		return nil
	}
	if err := n.stable.SetUint64(restartKey, index); err != nil {
		return fmt.Errorf("consensus: writing the restart point: %w", err)
	}
	n.restartPoint = index
	return nil
}

// Stale reports whether the node has yet to catch up with a leader since
// it started: until a leader confirmed its commit index (ReadIndex) and
// Raft applied that far here — and at least up to the restart point the
// state was replayed to — the state machine may be older than what the
// region decided, or than what this node last acted on. since is when the
// node started. Once caught up a node is never stale again: cut off later,
// it keeps serving the state it has, which is the newest it acted on.
func (n *Node) Stale() (stale bool, since time.Time) {
	if n.caughtUp.Load() {
		return false, time.Time{}
	}
	return true, n.started
}

// CaughtUp returns a channel that is closed once the node has caught up
// (Stale turned false), so that a caller need not poll Stale.
func (n *Node) CaughtUp() <-chan struct{} { return n.caughtUpCh }

const (
	// catchUpRetry is how often catchUp asks again for the leader's
	// commit index while it gets none.
	catchUpRetry = 200 * time.Millisecond
	// catchUpPoll is how often catchUp looks whether Raft has applied up
	// to the index the leader gave: a matter of milliseconds once a
	// leader is heard, which a whole catchUpRetry would add to a start.
	catchUpPoll = 10 * time.Millisecond
)

// catchUp asks the leader for its commit index until it gets one, then
// waits until Raft has applied that far (and to the restart point), and
// marks the node caught up.
func (n *Node) catchUp() {
	defer n.wg.Done()
	var target uint64
	for {
		if target == 0 {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
			idx, err := n.ReadIndex(ctx)
			cancel()
			if err == nil {
				target = max(idx, n.restartTarget, 1)
			}
		}
		if target > 0 && n.raft.AppliedIndex() >= target {
			n.caughtUp.Store(true)
			close(n.caughtUpCh)
			n.log.Info("caught up with the leader", "applied", n.raft.AppliedIndex(), "since", n.cfg.Clock.Since(n.started).Round(time.Millisecond))
			return
		}
		wait := catchUpRetry
		if target > 0 {
			wait = catchUpPoll
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
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
// graceful exit) and closes its network. Its state stays in its stores;
// New with the same stores rejoins. Calls after the first return the first result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.log.Info("raft node shutting down")
		n.cancel()
		if ds, ok := n.net.(dialStopper); ok {
			ds.stopDialing()
		}
		errs := []error{n.raft.Shutdown().Error()}
		errs = append(errs, n.guard.Close(), n.net.Close())
		n.wg.Wait()
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
