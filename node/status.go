package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/deploy"
)

// statusReporter batches the reconciler's status reports and commits them
// through Raft. While the leader cannot be reached it keeps only the latest
// status per workload and sends them when it can again.
type statusReporter struct {
	p       *Peer
	mu      sync.Mutex
	pending map[string]*shoalpb.WorkStatus
	removed map[string]*shoalpb.ObjectKey
	wake    chan struct{}
}

func newStatusReporter(p *Peer) *statusReporter {
	return &statusReporter{
		p: p, pending: map[string]*shoalpb.WorkStatus{}, removed: map[string]*shoalpb.ObjectKey{},
		wake: make(chan struct{}, 1),
	}
}

// report is the reconciler's deploy.Report: it only records and wakes.
func (r *statusReporter) report(statuses []deploy.Status, removed []api.ObjectKey) {
	r.mu.Lock()
	for _, s := range statuses {
		ks := s.Key.String()
		delete(r.removed, ks)
		r.pending[ks] = &shoalpb.WorkStatus{
			Workload: s.Key.Proto(), AppliedGeneration: s.AppliedGeneration, Replicas: s.Replicas,
			ReadyReplicas: s.ReadyReplicas, Health: s.Health, Reason: s.Reason, Error: s.Error,
			AppliedOverrides: r.p.rendered.appliedOverrides(ks),
			Preserved:        s.Preserved, PreserveError: s.PreserveError,
		}
	}
	for _, k := range removed {
		ks := k.String()
		delete(r.pending, ks)
		r.removed[ks] = k.Proto()
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *statusReporter) take() *shoalpb.ReportStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 && len(r.removed) == 0 {
		return nil
	}
	rs := &shoalpb.ReportStatus{Cluster: r.p.cfg.Cluster}
	for _, s := range r.pending {
		rs.Statuses = append(rs.Statuses, s)
	}
	for _, k := range r.removed {
		rs.Removed = append(rs.Removed, k)
	}
	r.pending = map[string]*shoalpb.WorkStatus{}
	r.removed = map[string]*shoalpb.ObjectKey{}
	return rs
}

// putBack returns a batch that could not be committed, unless newer news
// about the same workload arrived meanwhile.
func (r *statusReporter) putBack(rs *shoalpb.ReportStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range rs.GetStatuses() {
		ks := api.KeyFromProto(s.GetWorkload()).String()
		if _, newer := r.pending[ks]; !newer && r.removed[ks] == nil {
			r.pending[ks] = s
		}
	}
	for _, k := range rs.GetRemoved() {
		ks := api.KeyFromProto(k).String()
		if _, newer := r.pending[ks]; !newer {
			r.removed[ks] = k
		}
	}
}

func (r *statusReporter) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			rs := r.take()
			if rs == nil {
				break
			}
			err := r.p.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: rs}})
			if err == nil {
				backoff = 100 * time.Millisecond
				continue
			}
			if errors.Is(err, consensus.ErrRejected) {
				// The region refused it; sending it again would not help.
				r.p.logger.Error("status report rejected by the region", "err", err)
				continue
			}
			r.putBack(rs)
			if ctx.Err() != nil {
				return
			}
			r.p.logger.Debug("status report not committed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}
