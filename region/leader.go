package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
)

// Raft is what the leader loop needs of the region's Raft group.
type Raft interface {
	// ApplyLocal commits an encoded shoalpb.Command only while this peer
	// is the leader, never forwarding it (consensus.Node.ApplyLocal): a
	// deposed leader's decisions fail instead of being committed.
	ApplyLocal(ctx context.Context, cmd []byte) (consensus.Result, error)
	// Barrier waits until every earlier entry is applied to the local FSM.
	Barrier(ctx context.Context) error
}

// PeerView is the gossip view of the peer of one cluster.
type PeerView struct {
	Cluster string
	// Alive is true while gossip has the peer alive or suspect.
	Alive bool
	// Left is true once gossip says the peer left gracefully. Gossip is
	// not authenticated, so the leader treats it as a failure: a cluster
	// leaves the region only by its peer's own LeaveRegion command.
	Left bool
	// Since is when the peer entered its current state.
	Since time.Time
}

// Membership gives the leader the gossip view. Peers must be safe to call
// from any goroutine and must not block.
type Membership interface {
	Peers() []PeerView
}

// LeaderConfig tunes the leader loop.
type LeaderConfig struct {
	Region string
	// UnreachableToleration is how long workloads stay on a cluster whose
	// peer is unreachable before they are moved, unless their policy
	// tolerates the taint itself. Zero moves them at once.
	UnreachableToleration time.Duration
	// NotReadyToleration is the same for a cluster reported NotReady.
	NotReadyToleration time.Duration
	// FailbackDelay is how long a failed cluster must be Ready again before
	// the workloads that left it are scheduled back.
	FailbackDelay time.Duration
	// DeadClusterGrace is how long a cluster may be unreachable before it is
	// removed from the region for good (0: never).
	DeadClusterGrace time.Duration
	// MembershipSettle is how long a new leader waits before it trusts that
	// gossip has seen every peer: a cluster missing from gossip counts as
	// unreachable only after it.
	MembershipSettle time.Duration
	// Tick is how often time-based rules are checked.
	Tick time.Duration
	// BatchSize is the most bindings in one Raft command.
	BatchSize int
	// Clock is the time source of the leader's rules (tolerations,
	// failback delay, autonomy, grace periods) — k8s.io/utils/clock, the
	// clock deploy and consensus take too; nil means the real clock.
	Clock  clock.PassiveClock
	Logger *slog.Logger
}

// DefaultLeaderConfig returns the LAN defaults.
func DefaultLeaderConfig() LeaderConfig {
	return LeaderConfig{
		UnreachableToleration: 0,
		NotReadyToleration:    0,
		FailbackDelay:         10 * time.Second,
		DeadClusterGrace:      72 * time.Hour,
		MembershipSettle:      5 * time.Second,
		Tick:                  time.Second,
		BatchSize:             256,
	}
}

// Validate checks ranges.
func (c LeaderConfig) Validate() error {
	switch {
	case c.UnreachableToleration < 0 || c.NotReadyToleration < 0:
		return errors.New("region: tolerations must not be negative")
	case c.FailbackDelay < 0:
		return errors.New("region: FailbackDelay must not be negative")
	case c.Tick <= 0:
		return errors.New("region: Tick must be positive")
	case c.BatchSize <= 0:
		return errors.New("region: BatchSize must be positive")
	}
	return nil
}

// Leader is the region's leader-only work: cluster taints, scheduling,
// graceful evictions and failback. Run it only while this peer is the Raft
// leader, and cancel it when leadership is lost.
type Leader struct {
	cfg     LeaderConfig
	fsm     *FSM
	raft    Raft
	members Membership
	wake    chan struct{}
	started time.Time

	policies  map[string]cachedPolicy
	templates map[string]cachedTemplate
	deps      map[string]cachedDeps
	lastRev   Revisions
	nextDue   time.Time
	// ownPrefix is "REGION/" during a pass of the global split, else "".
	ownPrefix string
	// wlAffinity indexes workload affinity groups during a pass (nil if no
	// policy has a workloadAffinity).
	wlAffinity *affinityIndex

	meshView   atomic.Pointer[MeshView]
	lastQuorum [3]int // seen, total, ok of the last scheduling pass
	// quorumMoved is when lastQuorum last changed: a guarded workload
	// starts replicas only on summaries that arrived after it.
	quorumMoved time.Time
}

// MeshView is what the partition guard needs of the mesh (Mesh
// implements it). Both must be safe to call from any goroutine and must
// not block.
type MeshView interface {
	// Quorum tells how many of the mesh's regions (this one included)
	// this region hears now, of how many it knows; ok is false while it
	// cannot tell (its sync loop has not started).
	Quorum(now time.Time) (seen, total int, ok bool)
	// SummaryAt is when the latest summary of a region arrived (zero if
	// none did since the sync loop started).
	SummaryAt(region string) time.Time
}

// SetMeshView gives the leader the mesh's view of which regions it hears,
// which the partition guard needs. Without it a guarded workload is
// placed as any other.
func (l *Leader) SetMeshView(v MeshView) { l.meshView.Store(&v) }

type cachedPolicy struct {
	gen int64
	p   *api.Policy
	err error
}

type cachedTemplate struct {
	gen int64
	t   *api.Template
	err error
}

// NewLeader wires a leader loop; it does nothing until Run.
func NewLeader(cfg LeaderConfig, fsm *FSM, r Raft, members Membership) (*Leader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Leader{
		cfg: cfg, fsm: fsm, raft: r, members: members,
		wake:      make(chan struct{}, 1),
		policies:  map[string]cachedPolicy{},
		templates: map[string]cachedTemplate{},
		deps:      map[string]cachedDeps{},
	}, nil
}

// Notify tells the loop that the gossip view changed. It never blocks.
func (l *Leader) Notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run is the leader loop: a Barrier so it starts from everything committed,
// then a step on every change of the state or the gossip view and on every
// tick, until ctx ends or a commit fails (leadership lost).
func (l *Leader) Run(ctx context.Context) error {
	if err := l.raft.Barrier(ctx); err != nil {
		return fmt.Errorf("region: leader barrier: %w", err)
	}
	l.started = l.cfg.Clock.Now()
	// A new term starts from nothing cached: what an earlier term decided
	// may not have been committed.
	l.lastRev, l.nextDue = Revisions{}, time.Time{}
	changes, cancel := l.fsm.Subscribe()
	defer cancel()
	tick := time.NewTicker(l.cfg.Tick)
	defer tick.Stop()
	l.cfg.Logger.Info("leader loop started", "region", l.cfg.Region)
	for {
		if err := l.step(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
		case <-l.wake:
		case <-tick.C:
		}
	}
}

// step does one round of leader work from the current state.
func (l *Leader) step(ctx context.Context) error {
	now := l.cfg.Clock.Now()
	if cmd := l.clusterCommands(now); len(cmd) > 0 {
		return l.commit(ctx, cmd...)
	}
	cmds := l.scheduleCommands(now)
	if err := l.commit(ctx, cmds...); err != nil {
		l.lastRev = Revisions{} // decide again next time
		return err
	}
	return nil
}

func (l *Leader) commit(ctx context.Context, cmds ...*shoalpb.Command) error {
	for _, c := range cmds {
		data, err := proto.Marshal(c)
		if err != nil {
			return fmt.Errorf("region: encoding command: %w", err)
		}
		if _, err := l.raft.ApplyLocal(ctx, data); err != nil {
			return fmt.Errorf("region: leader commit: %w", err)
		}
	}
	return nil
}

// clusterCommands turns the gossip view and the peers' reports into
// reachability, taints and removals.
func (l *Leader) clusterCommands(now time.Time) []*shoalpb.Command {
	peers := map[string]PeerView{}
	for _, p := range l.members.Peers() {
		peers[p.Cluster] = p
	}
	settled := now.Sub(l.started) >= l.cfg.MembershipSettle
	var cmds []*shoalpb.Command
	l.fsm.Read(func(s *State) {
		for _, c := range s.Clusters() {
			p, seen := peers[c.GetName()]
			reachable := c.GetReachable()
			switch {
			case seen:
				reachable = p.Alive
			case settled:
				reachable = false
			}
			if !reachable && l.cfg.DeadClusterGrace > 0 && c.GetUnreachableSinceUnixMs() > 0 &&
				now.Sub(time.UnixMilli(c.GetUnreachableSinceUnixMs())) > l.cfg.DeadClusterGrace {
				cmds = append(cmds, &shoalpb.Command{Cmd: &shoalpb.Command_RemoveCluster{RemoveCluster: &shoalpb.RemoveCluster{Name: c.GetName()}}})
				continue
			}
			taints := wantTaints(c, reachable)
			if reachable != c.GetReachable() || taintString(taints) != taintString(c.GetTaints()) {
				cmds = append(cmds, &shoalpb.Command{Cmd: &shoalpb.Command_SetClusterState{SetClusterState: &shoalpb.SetClusterState{
					Name: c.GetName(), Reachable: reachable, Taints: taints}}})
			}
		}
	})
	return cmds
}

// wantTaints gives the taints a cluster should carry: Karmada's
// unreachable / not-ready NoExecute taints, keeping the time a taint that
// stays was first added.
func wantTaints(c *shoalpb.ClusterRecord, reachable bool) []*shoalpb.Taint {
	var key string
	switch {
	case !reachable:
		key = api.TaintClusterUnreachable
	case c.GetReportedHealth() != shoalpb.Health_HEALTH_READY:
		key = api.TaintClusterNotReady
	}
	var out []*shoalpb.Taint
	for _, t := range c.GetTaints() {
		if t.GetKey() != api.TaintClusterUnreachable && t.GetKey() != api.TaintClusterNotReady {
			out = append(out, t)
		} else if t.GetKey() == key && t.GetEffect() == api.TaintEffectNoExecute {
			out = append(out, t)
			key = ""
		}
	}
	if key != "" {
		out = append(out, &shoalpb.Taint{Key: key, Effect: api.TaintEffectNoExecute})
	}
	return out
}
