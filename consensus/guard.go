package consensus

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// MaxTermStep is the largest step ahead of this node's current term that a
// Raft message may carry. Raft adopts any higher term it hears of, so one
// forged message with term 2^64-1 would pin the group at the top of the
// term space, where the next election wraps to 0. Real terms grow by one
// per election (pre-vote keeps partitioned nodes from inflating them), so
// a region needs more than a million elections in a row to reach the
// bound; a message beyond it is refused and logged.
const MaxTermStep = 1 << 20

// errTermTooFar is the answer to a refused message.
var errTermTooFar = fmt.Errorf("consensus: term too far ahead (more than %d beyond ours)", MaxTermStep)

// termGuard wraps a node's raft.Transport: requests whose term is too far
// ahead of the node's are answered with an error instead of reaching
// Raft, and so are vote answers (the only answers from which Raft adopts
// a term). Everything else passes through.
type termGuard struct {
	raft.Transport
	prevote raft.WithPreVote
	term    atomic.Pointer[func() uint64]
	log     *slog.Logger
	out     chan raft.RPC
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	refused  atomic.Uint64
	lastWarn atomic.Int64 // unix nanos of the last warning
}

var (
	_ raft.Transport   = (*termGuard)(nil)
	_ raft.WithPreVote = (*termGuard)(nil)
	_ raft.WithClose   = (*termGuard)(nil)
)

func newTermGuard(inner raft.Transport, term func() uint64, log *slog.Logger) (*termGuard, error) {
	pv, ok := inner.(raft.WithPreVote)
	if !ok {
		return nil, fmt.Errorf("%w: the Raft transport does not support pre-vote", ErrBadConfig)
	}
	g := &termGuard{Transport: inner, prevote: pv, log: log,
		out: make(chan raft.RPC), stop: make(chan struct{}), done: make(chan struct{})}
	g.setTerm(term)
	go g.run(inner.Consumer())
	return g, nil
}

func (g *termGuard) setTerm(f func() uint64) { g.term.Store(&f) }

func (g *termGuard) current() uint64 { return (*g.term.Load())() }

// tooFar reports whether term is beyond what this node may adopt.
func (g *termGuard) tooFar(term uint64) bool {
	cur := g.current()
	return term > cur && term-cur > MaxTermStep
}

func rpcTerm(cmd any) (uint64, bool) {
	switch c := cmd.(type) {
	case *raft.AppendEntriesRequest:
		return c.Term, true
	case *raft.RequestVoteRequest:
		return c.Term, true
	case *raft.RequestPreVoteRequest:
		return c.Term, true
	case *raft.InstallSnapshotRequest:
		return c.Term, true
	}
	return 0, false
}

func (g *termGuard) run(in <-chan raft.RPC) {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case rpc := <-in:
			if term, ok := rpcTerm(rpc.Command); ok && g.tooFar(term) {
				g.refuse(fmt.Sprintf("%T", rpc.Command), term)
				// A refused snapshot's data is left unread: the transport
				// drops the connection that carried it.
				rpc.Respond(emptyResponse(rpc.Command), errTermTooFar)
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.stop:
				rpc.Respond(emptyResponse(rpc.Command), raft.ErrRaftShutdown)
				return
			}
		}
	}
}

// emptyResponse is the zero answer of the request's own type, sent with an
// error: raft's in-memory pipeline reads the answer's type before its
// error, so an answer must never be nil.
func emptyResponse(cmd any) any {
	switch cmd.(type) {
	case *raft.AppendEntriesRequest:
		return &raft.AppendEntriesResponse{}
	case *raft.RequestVoteRequest:
		return &raft.RequestVoteResponse{}
	case *raft.RequestPreVoteRequest:
		return &raft.RequestPreVoteResponse{}
	case *raft.InstallSnapshotRequest:
		return &raft.InstallSnapshotResponse{}
	case *raft.TimeoutNowRequest:
		return &raft.TimeoutNowResponse{}
	}
	return nil
}

func (g *termGuard) refuse(what string, term uint64) {
	n := g.refused.Add(1)
	now := time.Now().UnixNano()
	if last := g.lastWarn.Load(); now-last > int64(10*time.Second) && g.lastWarn.CompareAndSwap(last, now) {
		g.log.Warn("refused a Raft message whose term is too far ahead: a forged or broken peer",
			"message", what, "term", term, "current_term", g.current(), "refused_total", n)
	}
}

// Refused counts the messages refused so far.
func (g *termGuard) Refused() uint64 { return g.refused.Load() }

// SetHeartbeatHandler implements raft.Transport: the transport's fast
// path for heartbeats is guarded too.
func (g *termGuard) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		g.Transport.SetHeartbeatHandler(nil)
		return
	}
	g.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		if term, ok := rpcTerm(rpc.Command); ok && g.tooFar(term) {
			g.refuse(fmt.Sprintf("%T (heartbeat)", rpc.Command), term)
			rpc.Respond(emptyResponse(rpc.Command), errTermTooFar)
			return
		}
		cb(rpc)
	})
}

// Consumer implements raft.Transport.
func (g *termGuard) Consumer() <-chan raft.RPC { return g.out }

// RequestVote implements raft.Transport.
func (g *termGuard) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := g.Transport.RequestVote(id, target, args, resp); err != nil {
		return err
	}
	if g.tooFar(resp.Term) {
		g.refuse("RequestVoteResponse", resp.Term)
		return errTermTooFar
	}
	return nil
}

// RequestPreVote implements raft.WithPreVote.
func (g *termGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := g.prevote.RequestPreVote(id, target, args, resp); err != nil {
		return err
	}
	if g.tooFar(resp.Term) {
		g.refuse("RequestPreVoteResponse", resp.Term)
		return errTermTooFar
	}
	return nil
}

// Close implements raft.WithClose: it stops the guard and closes the
// wrapped transport if it can be closed.
func (g *termGuard) Close() error {
	g.once.Do(func() { close(g.stop) })
	<-g.done
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}
