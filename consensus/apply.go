package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

const (
	// retryMin and retryMax bound the backoff while no leader is known or
	// the leader keeps changing.
	retryMin = 10 * time.Millisecond
	retryMax = 200 * time.Millisecond
)

// Apply commits cmd to the region's log and returns its log index once the
// FSM has applied it on the leader. On a follower the command is forwarded
// to the leader (one hop; a node never forwards to itself); while no leader
// is known, Apply retries with a short backoff. ctx bounds the whole call;
// without a deadline, Config.ApplyTimeout applies.
//
// Errors:
//   - ErrRejected: committed, and the FSM answered with an error (wrapped;
//     FSM responses are nil or an error by contract).
//   - ErrNoLeader, ErrNotLeader: the deadline expired before any leader
//     accepted the command; it was not committed.
//   - ErrTimeout, ErrLeadershipLost, and ErrShutdown if the node shuts down
//     during the call: ambiguous, the command may or may not have been
//     committed. Callers retry idempotent commands, or make commands
//     idempotent (a request ID the FSM remembers) before retrying.
//   - ErrTooLarge: cmd exceeds MaxCommandSize; nothing was sent.
//   - ErrRefused: with TLS, the leader refused this node's certificate or
//     this node the leader's; nothing was done.
func (n *Node) Apply(ctx context.Context, cmd []byte) (index uint64, err error) {
	if len(cmd) > MaxCommandSize {
		return 0, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrTooLarge, len(cmd), MaxCommandSize)
	}
	req := &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_Apply{
		Apply: &shoalpb.ApplyRequest{Command: cmd},
	}}
	return n.onLeader(ctx, func(ctx context.Context) (uint64, error) { return n.applyLocal(ctx, cmd) }, req)
}

// onLeader runs local if this node is the leader, or forwards req to the
// leader, retrying while nothing was done, until ctx expires.
func (n *Node) onLeader(ctx context.Context, local func(context.Context) (uint64, error), req *shoalpb.ForwardRequest) (uint64, error) {
	if n.ctx.Err() != nil {
		return 0, ErrShutdown
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	backoff := retryMin
	lastErr := ErrNoLeader
	for {
		if n.IsLeader() {
			idx, err := local(ctx)
			if !errors.Is(err, ErrNotLeader) {
				return idx, err
			}
			lastErr = err // lost leadership before raft took the command
		} else if addr, id := n.raft.LeaderWithID(); addr != "" && string(id) != n.cfg.ID {
			idx, outcome, err := n.forward(ctx, string(addr), req)
			if outcome == outcomeDone {
				return idx, err
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (%w)", lastErr, ctx.Err())
		case <-n.ctx.Done():
			return 0, ErrShutdown
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// applyLocal applies cmd on this node, which should be the leader.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) (uint64, error) {
	deadline, _ := ctx.Deadline()
	f := n.raft.Apply(cmd, time.Until(deadline))
	if err := n.wait(ctx, f); err != nil {
		return 0, err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), &rejectedError{err: err}
	}
	return f.Index(), nil
}

// removeServerLocal removes server id from the configuration; this node
// should be the leader, and id must not be itself (a leader leaves by
// transferring leadership first).
func (n *Node) removeServerLocal(ctx context.Context, id string) (uint64, error) {
	if id == n.cfg.ID {
		return 0, fmt.Errorf("%w: the leader cannot remove itself; it transfers leadership first", errBadRequest)
	}
	n.markLeaving(id)
	deadline, _ := ctx.Deadline()
	f := n.raft.RemoveServer(raft.ServerID(id), 0, time.Until(deadline))
	if err := n.wait(ctx, f); err != nil {
		return 0, err
	}
	n.log.Info("removed server at its request", "server", id, "index", f.Index())
	return f.Index(), nil
}
