package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Forwarding wire format: on a forwarding connection the follower writes
// one frame holding a shoalpb.ForwardRequest; the leader answers with one
// frame holding a shoalpb.ForwardResponse and closes the connection. A frame
// is a 4-byte big-endian length followed by that many bytes of protobuf.
// One request per connection keeps the outcome unambiguous when a
// connection cannot be opened: nothing was sent.

// MaxFrameSize is the largest forward frame accepted, in bytes. Apply
// refuses larger commands with ErrTooLarge on every node, leader included,
// so that a command's acceptance does not depend on where it was sent.
const MaxFrameSize = 4 << 20

// frameOverhead is room for the request envelope around a command.
const frameOverhead = 64

// MaxCommandSize is the largest command Apply accepts, in bytes.
const MaxCommandSize = MaxFrameSize - frameOverhead

// maxServerIDLen bounds server IDs in remove requests.
const maxServerIDLen = 256

// maxBootstrapVoters bounds the candidates of a bootstrap query.
const maxBootstrapVoters = 64

// maxForwardTimeout caps the time a follower may ask the leader to spend.
const maxForwardTimeout = 5 * time.Minute

// errBadRequest marks a request the leader refuses to carry out; it travels
// as CODE_BAD_REQUEST.
var errBadRequest = errors.New("consensus: bad request")

// rejectedError carries the FSM's error for a committed command. It
// matches ErrRejected with errors.Is and unwraps to the FSM's error.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string        { return ErrRejected.Error() + ": " + e.err.Error() }
func (e *rejectedError) Is(target error) bool { return target == ErrRejected }
func (e *rejectedError) Unwrap() error        { return e.err }

// writeFrame writes m as one length-prefixed frame, prefix byte first if
// prefix is not zero, in a single write.
func writeFrame(w io.Writer, prefix byte, m proto.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if len(body) > MaxFrameSize {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrTooLarge, len(body), MaxFrameSize)
	}
	buf := make([]byte, 0, 5+len(body))
	if prefix != 0 {
		buf = append(buf, prefix)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one length-prefixed frame of at most MaxFrameSize bytes;
// the length is checked first, and memory grows only with the bytes
// that actually arrive.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrBadFrame, n, MaxFrameSize)
	}
	// Read what arrives rather than allocate what the prefix claims.
	body, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(body) != int(n) {
		return nil, io.ErrUnexpectedEOF
	}
	return body, nil
}

// readForwardRequest reads and validates one ForwardRequest frame. Any
// malformed input is an error wrapping ErrBadFrame or an I/O error; it never
// panics.
func readForwardRequest(r io.Reader) (*shoalpb.ForwardRequest, error) {
	body, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	return decodeForwardRequest(body)
}

func decodeForwardRequest(body []byte) (*shoalpb.ForwardRequest, error) {
	req := &shoalpb.ForwardRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if req.GetTimeoutMs() < 0 {
		return nil, fmt.Errorf("%w: negative timeout_ms %d", ErrBadFrame, req.GetTimeoutMs())
	}
	switch r := req.GetRequest().(type) {
	case *shoalpb.ForwardRequest_Apply:
		if r.Apply == nil {
			return nil, fmt.Errorf("%w: empty apply request", ErrBadFrame)
		}
	case *shoalpb.ForwardRequest_RemoveServer:
		id := r.RemoveServer.GetId()
		if id == "" || len(id) > maxServerIDLen {
			return nil, fmt.Errorf("%w: remove_server id of %d bytes", ErrBadFrame, len(id))
		}
	case *shoalpb.ForwardRequest_ReadIndex:
		if r.ReadIndex == nil {
			return nil, fmt.Errorf("%w: empty read-index request", ErrBadFrame)
		}
	case *shoalpb.ForwardRequest_BootstrapQuery:
		q := r.BootstrapQuery
		if q == nil || q.GetFrom() == "" || len(q.GetFrom()) > maxServerIDLen || len(q.GetCandidates()) > maxBootstrapVoters {
			return nil, fmt.Errorf("%w: malformed bootstrap query", ErrBadFrame)
		}
		for _, c := range q.GetCandidates() {
			if c == "" || len(c) > maxServerIDLen {
				return nil, fmt.Errorf("%w: bootstrap candidate id of %d bytes", ErrBadFrame, len(c))
			}
		}
	default:
		return nil, fmt.Errorf("%w: no request kind set", ErrBadFrame)
	}
	return req, nil
}

// handleForwardConn serves one forward connection from the peer from.
func (n *Node) handleForwardConn(conn net.Conn, from Peer) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	req, err := readForwardRequest(conn)
	if err != nil {
		n.log.Warn("bad forward request; closing connection", "from", from.String(), "err", err)
		return
	}
	resp := n.serveForward(req, from)
	_ = conn.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if err := writeFrame(conn, 0, resp); err != nil {
		n.log.Warn("writing forward response failed", "from", from.String(), "err", err)
	}
}

// serveForward carries out a decoded request from the peer from. Commands
// and server removals need this node to be the leader; it never forwards
// again: a non-leader answers CODE_NOT_LEADER.
func (n *Node) serveForward(req *shoalpb.ForwardRequest, from Peer) *shoalpb.ForwardResponse {
	if n.ctx.Err() != nil {
		return &shoalpb.ForwardResponse{Code: shoalpb.Code_CODE_SHUTDOWN}
	}
	if q, ok := req.GetRequest().(*shoalpb.ForwardRequest_BootstrapQuery); ok {
		return &shoalpb.ForwardResponse{Code: shoalpb.Code_CODE_OK, Bootstrap: n.answerBootstrap(q.BootstrapQuery, from)}
	}
	if !n.IsLeader() {
		return &shoalpb.ForwardResponse{Code: shoalpb.Code_CODE_NOT_LEADER}
	}
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	if timeout <= 0 {
		timeout = n.cfg.ApplyTimeout
	}
	timeout = min(timeout, maxForwardTimeout)
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()

	var res Result
	var err error
	switch r := req.GetRequest().(type) {
	case *shoalpb.ForwardRequest_Apply:
		cmd := r.Apply.GetCommand()
		if len(cmd) > MaxCommandSize {
			err = fmt.Errorf("%w: command of %d bytes", errBadRequest, len(cmd))
			break
		}
		if n.cfg.Authorize != nil {
			if aerr := n.cfg.Authorize(from, cmd); aerr != nil {
				n.log.Warn("refused a forwarded command", "from", from.String(), "err", aerr)
				err = fmt.Errorf("%w: %v", ErrForbidden, aerr)
				break
			}
		}
		res, err = n.applyLocal(ctx, cmd)
	case *shoalpb.ForwardRequest_ReadIndex:
		res, err = n.readIndexLocal(ctx)
	case *shoalpb.ForwardRequest_RemoveServer:
		id := r.RemoveServer.GetId()
		if from.Verified && from.Identity.Cluster != id {
			n.log.Warn("refused a forwarded server removal: a peer may only remove itself", "from", from.String(), "server", id)
			err = fmt.Errorf("%w: %s may not remove server %q", ErrForbidden, from.Identity, id)
			break
		}
		res.Index, err = n.removeServerLocal(ctx, id)
	}
	return responseFor(res, err)
}

// responseFor turns a local outcome into a wire code.
func responseFor(res Result, err error) *shoalpb.ForwardResponse {
	resp := &shoalpb.ForwardResponse{Index: res.Index, Result: res.Response}
	var rej *rejectedError
	switch {
	case err == nil:
		resp.Code = shoalpb.Code_CODE_OK
	case errors.As(err, &rej):
		resp.Code = shoalpb.Code_CODE_REJECTED
		resp.ResultError = rej.err.Error()
	case errors.Is(err, ErrForbidden):
		resp.Code = shoalpb.Code_CODE_FORBIDDEN
	case errors.Is(err, ErrNotLeader):
		resp.Code = shoalpb.Code_CODE_NOT_LEADER
	case errors.Is(err, errBadRequest):
		resp.Code = shoalpb.Code_CODE_BAD_REQUEST
	case errors.Is(err, ErrTimeout):
		resp.Code = shoalpb.Code_CODE_TIMEOUT
	default:
		resp.Code = shoalpb.Code_CODE_UNKNOWN
	}
	if err != nil {
		resp.Message = err.Error()
	}
	return resp
}

// forwardOutcome says whether a forward attempt may be retried: only when
// nothing was done on the leader.
type forwardOutcome int

const (
	outcomeDone  forwardOutcome = iota // final: success or an error to return
	outcomeRetry                       // nothing was done: try again
)

// dialForward opens a forwarding connection to addr within ctx, giving up
// when abandon is closed first.
func (n *Node) dialForward(ctx context.Context, addr string, abandon <-chan struct{}) (net.Conn, Peer, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-abandon:
			cancel()
		case <-done:
		}
	}()
	conn, peer, err := n.net.DialForward(dctx, addr)
	if err != nil && ctx.Err() == nil && dctx.Err() != nil {
		err = fmt.Errorf("gave up dialing %s: the leader changed: %w", addr, err)
	}
	return conn, peer, err
}

// forward sends req to the node at addr, which this node believes is the
// leader with server ID leaderID, and waits for its answer within ctx
// (which must have a deadline). With TLS the answering node must prove it
// is that server. While the connection is still being opened, a close of
// abandon gives up on addr (outcomeRetry, nothing was sent): a leader
// whose host is gone may leave the dial hanging long after another was
// elected.
func (n *Node) forward(ctx context.Context, addr, leaderID string, req *shoalpb.ForwardRequest, abandon <-chan struct{}) (*shoalpb.ForwardResponse, forwardOutcome, error) {
	deadline, _ := ctx.Deadline()
	// Ask the leader to answer a little before our own deadline, so that we
	// hear its verdict rather than time out ourselves.
	remaining := time.Until(deadline)
	req.TimeoutMs = max(1, (remaining - remaining/10).Milliseconds())

	conn, peer, err := n.dialForward(ctx, addr, abandon)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, outcomeDone, err
		}
		return nil, outcomeRetry, fmt.Errorf("%w: leader %s unreachable: %v", ErrNoLeader, addr, err)
	}
	defer conn.Close()
	if peer.Verified && leaderID != "" && peer.Identity.Cluster != leaderID {
		return nil, outcomeRetry, fmt.Errorf("%w: %s answered at the address of leader %s", ErrNoLeader, peer.Identity, leaderID)
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	if err := writeFrame(conn, 0, req); err != nil {
		// A partly written frame is never decoded, so nothing was done.
		if errors.Is(err, ErrTooLarge) {
			return nil, outcomeDone, err
		}
		if refusedByTLS(err) {
			return nil, outcomeDone, fmt.Errorf("%w: leader %s refused this node's certificate: %v", ErrRefused, addr, err)
		}
		return nil, outcomeRetry, fmt.Errorf("%w: sending to leader %s: %v", ErrNoLeader, addr, err)
	}
	body, err := readFrame(conn)
	if err != nil {
		if refusedByTLS(err) {
			// The leader refused the handshake: it never read the request.
			return nil, outcomeDone, fmt.Errorf("%w: leader %s refused this node's certificate: %v", ErrRefused, addr, err)
		}
		if ctx.Err() != nil {
			return nil, outcomeDone, fmt.Errorf("%w: waiting for leader %s: %w", ErrTimeout, addr, ctx.Err())
		}
		return nil, outcomeDone, fmt.Errorf("%w: connection to leader %s broke: %v", ErrLeadershipLost, addr, err)
	}
	resp := &shoalpb.ForwardResponse{}
	if err := proto.Unmarshal(body, resp); err != nil {
		return nil, outcomeDone, fmt.Errorf("%w: undecodable answer from leader %s: %v", ErrLeadershipLost, addr, err)
	}
	switch resp.GetCode() {
	case shoalpb.Code_CODE_OK:
		return resp, outcomeDone, nil
	case shoalpb.Code_CODE_NOT_LEADER:
		return nil, outcomeRetry, fmt.Errorf("%w: %s", ErrNotLeader, addr)
	case shoalpb.Code_CODE_SHUTDOWN:
		return nil, outcomeRetry, fmt.Errorf("%w: leader %s is shutting down", ErrNoLeader, addr)
	case shoalpb.Code_CODE_REJECTED:
		return resp, outcomeDone, &rejectedError{err: errors.New(resp.GetResultError())}
	case shoalpb.Code_CODE_FORBIDDEN:
		return nil, outcomeDone, fmt.Errorf("%w: leader %s: %s", ErrForbidden, addr, resp.GetMessage())
	case shoalpb.Code_CODE_BAD_REQUEST:
		return nil, outcomeDone, fmt.Errorf("%w: leader %s: %s", errBadRequest, addr, resp.GetMessage())
	case shoalpb.Code_CODE_TIMEOUT:
		return nil, outcomeDone, fmt.Errorf("%w: leader %s: %s", ErrTimeout, addr, resp.GetMessage())
	default: // CODE_UNKNOWN and codes from newer peers
		if ctx.Err() != nil {
			return nil, outcomeDone, fmt.Errorf("%w: leader %s: %s", ErrTimeout, addr, resp.GetMessage())
		}
		return nil, outcomeDone, fmt.Errorf("%w: leader %s: %s", ErrLeadershipLost, addr, resp.GetMessage())
	}
}
