package node

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/region"
)

// peersView adapts the gossip pool to region.Membership.
type peersView struct{ pool *gossip.Pool }

func (v peersView) Peers() []region.PeerView {
	ms := v.pool.Members()
	out := make([]region.PeerView, 0, len(ms))
	for _, m := range ms {
		out = append(out, region.PeerView{
			Cluster: m.Name,
			Alive:   m.State == gossip.StateAlive || m.State == gossip.StateSuspect,
			Left:    m.State == gossip.StateLeft,
			Since:   m.Since,
		})
	}
	return out
}

func raftMembers(ms []gossip.Member) []consensus.Member {
	out := make([]consensus.Member, 0, len(ms))
	for _, m := range ms {
		if m.Meta == nil || m.Meta.GetRaftAddr() == "" {
			continue
		}
		cm := consensus.Member{ID: m.Name, RaftAddr: m.Meta.GetRaftAddr(), Since: m.Since,
			BootstrapExpect: int(m.Meta.GetBootstrapExpect()), HasState: m.Meta.GetRaftState()}
		switch m.State {
		case gossip.StateAlive:
			cm.Status = consensus.Alive
		case gossip.StateSuspect:
			cm.Status = consensus.Suspect
		case gossip.StateDead:
			cm.Status = consensus.Dead
		case gossip.StateLeft:
			cm.Status = consensus.Left
		}
		out = append(out, cm)
	}
	return out
}

// membershipLoop feeds gossip changes to Raft membership and the leader.
func (p *Peer) membershipLoop(ctx context.Context) {
	update := func() {
		p.raft.UpdateMembers(raftMembers(p.pool.Members()))
		p.leader.Notify()
	}
	update()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-p.pool.Events():
			if !ok {
				return // the pool shut down
			}
			update()
		case <-tick.C:
			update()
		}
	}
}

// leadershipLoop runs the region leader loop while this peer leads.
func (p *Peer) leadershipLoop(ctx context.Context) {
	bindToLeadership(ctx, p.raft.LeaderCh(), p.leaderWork, p.logger)
}

// leaderWork is everything only the region leader does: the region's
// leader loop and the sync loop with the other regions, run together and
// stopped together (the first to fail stops the other).
func (p *Peer) leaderWork(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- p.leader.Run(ctx) }()
	go func() { errs <- p.mesh.Run(ctx) }()
	err := <-errs
	cancel()
	<-errs
	return err
}

// bindToLeadership runs run while leaderCh says this peer leads, as
// Nomad's monitorLeadership does: cancel on loss; on every gain — also a
// "lost and regained" that reaches it as one more true while run runs —
// stop the old run and start a new one (region.Leader.Run begins with a
// Barrier); and start run again after it fails while still leader. It
// returns when ctx ends, once run has returned.
func bindToLeadership(ctx context.Context, leaderCh <-chan bool, run func(context.Context) error, logger *slog.Logger) {
	var (
		cancel  context.CancelFunc
		stopped chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-stopped
			cancel = nil
		}
	}
	defer stop()
	start := func() {
		var lctx context.Context
		lctx, cancel = context.WithCancel(ctx)
		stopped = make(chan struct{})
		go func() {
			defer close(stopped)
			for lctx.Err() == nil {
				err := run(lctx)
				if lctx.Err() != nil {
					return
				}
				logger.Warn("leader loop failed; restarting", "err", err)
				select {
				case <-lctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-leaderCh:
			switch {
			case isLeader:
				if cancel != nil {
					logger.Info("leadership lost and regained: restarting the leader loop")
					stop()
				} else {
					logger.Info("became the region leader")
				}
				start()
			case cancel != nil:
				logger.Info("lost region leadership")
				stop()
			}
		}
	}
}

// clusterReportLoop reports the cluster's health and capacity into gossip
// and the region state when they change (checked every second), and at
// least every 30 s. It does not read the cluster's Changed channel: that
// belongs to the reconciler.
func (p *Peer) clusterReportLoop(ctx context.Context) {
	var last *shoalpb.ClusterRecord
	var lastSent time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rec := p.clusterRecord(ctx)
		// Leave takes reportMu to set leaving: a report is committed
		// wholly before the peer's LeaveRegion or not at all, never after
		// it (which would bring the cluster back).
		p.reportMu.Lock()
		if p.leaving.Load() {
			rec = nil
		}
		if rec != nil && (last == nil || !proto.Equal(rec, last) || time.Since(lastSent) > 30*time.Second) {
			p.updateMeta(rec)
			cmd := &shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{Cluster: rec}}}
			if err := p.commit(ctx, cmd); err != nil {
				if ctx.Err() == nil {
					p.logger.Debug("cluster report not committed yet; will retry", "err", err)
				}
			} else {
				last, lastSent = rec, time.Now()
			}
		}
		p.reportMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Peer) clusterRecord(ctx context.Context) *shoalpb.ClusterRecord {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	health, reason, err := p.cluster.Health(cctx)
	if err != nil {
		health, reason = shoalpb.Health_HEALTH_NOT_READY, err.Error()
	}
	capacity, err := p.cluster.Capacity(cctx)
	if err != nil {
		capacity = nil
	}
	return &shoalpb.ClusterRecord{
		Name: p.cfg.Cluster, Region: p.cfg.Region, Zone: api.FirstZone(p.cfg.Zones), Zones: p.cfg.Zones, Provider: p.cfg.Provider,
		Labels: p.cfg.Labels, ReportedHealth: health, HealthReason: reason, Capacity: capacity,
		Edge: p.cfg.Edge, RaftAddr: p.raft.Addr(), HttpAddr: p.HTTPAddr(), AutonomyMs: p.cfg.autonomy().Milliseconds(),
		WanAddr: p.wan.Addr(),
	}
}

func (p *Peer) updateMeta(rec *shoalpb.ClusterRecord) {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	m := proto.Clone(p.meta).(*shoalpb.PeerMeta)
	m.Health = rec.GetReportedHealth()
	m.Capacity = rec.GetCapacity()
	m.RaftState = p.raft.HasState()
	if proto.Equal(m, p.meta) {
		return
	}
	if err := p.pool.UpdateMeta(m); err != nil {
		p.logger.Debug("gossip metadata not updated", "err", err)
		if errors.Is(err, gossip.ErrMetaTooLarge) {
			return
		}
	}
	p.meta = m
}

// commit encodes and commits a command through Raft (forwarded to the
// leader), bounded by the write timeout.
func (p *Peer) commit(ctx context.Context, cmd *shoalpb.Command) error {
	_, err := p.commitResult(ctx, cmd)
	return err
}

// commitResult commits cmd like commit and returns its outcome: the log
// index and what the state machine answered.
func (p *Peer) commitResult(ctx context.Context, cmd *shoalpb.Command) (consensus.Result, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return consensus.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	return p.raft.Apply(ctx, data)
}
