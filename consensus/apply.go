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
	// the leader keeps changing; a change of leader seen by raft ends the
	// wait at once (watchLeader).
	retryMin = 10 * time.Millisecond
	retryMax = 200 * time.Millisecond
)

// Result is the outcome of a committed command.
type Result struct {
	// Index is the command's log index.
	Index uint64
	// Response is what the state machine answered for the command when it
	// answered with a []byte (the FSM's results, carried through
	// forwarding); nil otherwise.
	Response []byte
}

// Apply commits cmd to the region's log and returns its outcome once the
// FSM has applied it on the leader. On a follower the command is forwarded
// to the leader (one hop; a node never forwards to itself); while no leader
// is known, Apply retries with a short backoff, and at once when raft
// hears of a new leader. ctx bounds the whole call; without a deadline,
// Config.ApplyTimeout applies.
//
// The FSM answers each command with nil, an error or a []byte; the bytes
// come back in Result.Response, from the leader's FSM.
//
// Errors:
//   - ErrRejected: committed, and the FSM answered with an error (wrapped).
//   - ErrNoLeader, ErrNotLeader: the deadline expired before any leader
//     accepted the command; it was not committed.
//   - ErrTimeout, ErrLeadershipLost, and ErrShutdown if the node shuts down
//     during the call: ambiguous, the command may or may not have been
//     committed. Callers retry idempotent commands, or make commands
//     idempotent (a request ID the FSM remembers) before retrying.
//   - ErrTooLarge: cmd exceeds MaxCommandSize; nothing was sent.
//   - ErrRefused: with TLS, the leader refused this node's certificate or
//     this node the leader's; nothing was done.
//   - ErrForbidden: the leader refused the command for who sent it
//     (Config.Authorize); nothing was done.
func (n *Node) Apply(ctx context.Context, cmd []byte) (Result, error) {
	if len(cmd) > MaxCommandSize {
		return Result{}, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrTooLarge, len(cmd), MaxCommandSize)
	}
	req := &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_Apply{
		Apply: &shoalpb.ApplyRequest{Command: cmd},
	}}
	return n.onLeader(ctx, func(ctx context.Context) (Result, error) { return n.applyLocal(ctx, cmd) }, req)
}

// ApplyLocal commits cmd only if this node is the leader, and never
// forwards it: it is how leader-only work (the leader loop's decisions)
// is committed, so that a deposed leader's in-flight decisions fail with
// ErrNotLeader or ErrLeadershipLost instead of reaching the new leader.
// Errors are Apply's, with ErrNotLeader when this node is not the leader.
func (n *Node) ApplyLocal(ctx context.Context, cmd []byte) (Result, error) {
	if n.ctx.Err() != nil {
		return Result{}, ErrShutdown
	}
	if len(cmd) > MaxCommandSize {
		return Result{}, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrTooLarge, len(cmd), MaxCommandSize)
	}
	if !n.IsLeader() {
		return Result{}, ErrNotLeader
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	return n.applyLocal(ctx, cmd)
}

// onLeader runs local if this node is the leader, or forwards req to the
// leader, retrying while nothing was done, until ctx expires.
func (n *Node) onLeader(ctx context.Context, local func(context.Context) (Result, error), req *shoalpb.ForwardRequest) (Result, error) {
	if n.ctx.Err() != nil {
		return Result{}, ErrShutdown
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	backoff := retryMin
	lastErr := ErrNoLeader
	for {
		// Taken before looking, so that a leader elected meanwhile is not
		// missed.
		changed := n.leaderChanged()
		if n.IsLeader() {
			res, err := local(ctx)
			if !errors.Is(err, ErrNotLeader) {
				return res, err
			}
			lastErr = err // lost leadership before raft took the command
		} else if addr, id := n.raft.LeaderWithID(); addr != "" && string(id) != n.cfg.ID {
			resp, outcome, err := n.forward(ctx, string(addr), string(id), req, changed)
			if outcome == outcomeDone {
				return Result{Index: resp.GetIndex(), Response: resp.GetResult()}, err
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w (%w)", lastErr, ctx.Err())
		case <-n.ctx.Done():
			return Result{}, ErrShutdown
		case <-changed:
			// Another leader, or none: look again at once.
			backoff = retryMin
			continue
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// applyLocal applies cmd on this node, which should be the leader.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) (Result, error) {
	deadline, _ := ctx.Deadline()
	f := n.raft.Apply(cmd, time.Until(deadline))
	if err := n.wait(ctx, f); err != nil {
		return Result{}, err
	}
	res := Result{Index: f.Index()}
	switch r := f.Response().(type) {
	case error:
		if r != nil {
			return res, &rejectedError{err: r}
		}
	case []byte:
		res.Response = r
	}
	return res, nil
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

// readIndexLocal confirms that this node still leads and returns its
// commit index: everything committed before the call is at or below it.
func (n *Node) readIndexLocal(ctx context.Context) (Result, error) {
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return Result{}, err
	}
	return Result{Index: n.raft.CommitIndex()}, nil
}

// ReadIndex returns the leader's commit index, confirmed by the leader
// while it still leads (forwarded from a follower, as Apply is): once this
// node has applied that far, its state is at least as new as the leader's
// was when it answered.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	req := &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_ReadIndex{ReadIndex: &shoalpb.ReadIndexRequest{}}}
	res, err := n.onLeader(ctx, n.readIndexLocal, req)
	return res.Index, err
}
