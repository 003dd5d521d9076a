package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

var (
	// ErrUnreachable is returned by Call when there is no connection to
	// the address: the dial failed (the wrapped error says why; a refused
	// certificate wraps ErrIdentity too), the address is in its redial
	// backoff, nothing listens there, or a fault or partition cuts it off.
	// The request was not handled; trying again later may help.
	ErrUnreachable = errors.New("transport: peer unreachable")

	// ErrBroken is returned by Call when the stream or the connection broke
	// after the request was sent (the peer closed, reset the stream or
	// answered garbage). The outcome is ambiguous: the request may or may
	// not have been handled.
	ErrBroken = errors.New("transport: link broke during the call; the request may or may not have been handled")

	// ErrClosed is returned by every call on a closed link, and by a Call
	// that was running when its link closed.
	ErrClosed = errors.New("transport: link closed")

	// ErrBadConfig is returned by QUICConfig.Validate and NewQUICLink; the
	// message names the field.
	ErrBadConfig = errors.New("transport: bad config")
)

// defaultCallTimeout bounds a call whose context has no deadline.
const defaultCallTimeout = 10 * time.Second

// Peer is the verified other end of a link.
type Peer struct {
	// Identity is what the peer's certificate names, verified against the
	// mesh CA (zero on an insecure QUIC link).
	Identity Identity
	// Addr is the address the peer was dialed at (Call) or the address
	// its request came from (Handler).
	Addr string
}

// Handler answers one request. It is called concurrently from many
// goroutines and must be safe for that; it must not keep req after
// returning. ctx is cancelled when the caller gives up or the link closes,
// and Close waits for running handlers, so a handler must return soon
// after ctx is done.
//
// early is true when the request arrived as 0-RTT data of a resumed
// session: it may be a replay, so the handler must only act on idempotent
// requests and refuse the others (Refuse with BAD_REQUEST or UNAVAILABLE;
// the caller may try again after the handshake). from is verified either
// way.
//
// A nil answer with a nil error is answered UNAVAILABLE. An error becomes
// a LinkError answer: a *LinkErr (Refuse) chooses the code, any other error
// is sent as UNAVAILABLE with its text.
type Handler func(ctx context.Context, from Peer, req *shoalpb.WanMessage, early bool) (*shoalpb.WanMessage, error)

// CallOptions tune one Call.
type CallOptions struct {
	// Region, when set, is the region the answering peer's certificate
	// must name; the call fails with an error wrapping ErrIdentity
	// otherwise, and the request is not sent on that connection.
	Region string
	// Idempotent allows the request to be sent as 0-RTT data on a resumed
	// session, where the link does that (QUICConfig.ZeroRTT, for edge
	// links); other requests wait for the handshake. Only set it for
	// requests that are safe to replay.
	Idempotent bool
}

// Link is one peer's end of the links between regions. Every request
// travels on its own stream and gets exactly one answer; see the package
// documentation for the contract. Methods are safe for concurrent use.
type Link interface {
	// Call sends req to the peer listening at addr and waits for its
	// answer, until ctx is done (or the link's call timeout if ctx has no
	// deadline). A LinkError answer is returned as a *LinkErr error with
	// the peer. ErrUnreachable and ErrIdentity mean the request was not
	// handled. Ambiguous outcome: on a timeout (ctx's error) or ErrBroken
	// the request may or may not have been handled.
	Call(ctx context.Context, addr string, req *shoalpb.WanMessage, opts CallOptions) (*shoalpb.WanMessage, Peer, error)
	// Serve sets the handler for incoming requests; before Serve (or
	// after Serve(nil)) requests are answered UNAVAILABLE.
	Serve(h Handler)
	// Addr is the address other peers dial to reach this end.
	Addr() string
	// Faults are the fault hooks of this end.
	Faults() *Faults
	// Close stops serving, breaks every connection and waits for running
	// handlers. Calls then fail with ErrClosed. Closing twice is harmless.
	Close() error
}

// LinkErr is a LinkError answer as a Go error: handlers return one (Refuse)
// to choose the code, Call returns one when the peer answered with it.
type LinkErr struct {
	Code shoalpb.LinkCode
	Msg  string
	// LeaderAddr is the leader's WAN address with NOT_LEADER, when known.
	LeaderAddr string
}

// Error says what the peer answered.
func (e *LinkErr) Error() string {
	s := "transport: peer answered " + e.Code.String()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.LeaderAddr != "" {
		s += " (leader at " + e.LeaderAddr + ")"
	}
	return s
}

// Refuse returns a *LinkErr with code and a formatted message, for
// handlers.
func Refuse(code shoalpb.LinkCode, format string, args ...any) error {
	return &LinkErr{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errorAnswer is the answer that carries a handler's error.
func errorAnswer(err error) *shoalpb.WanMessage {
	le := &shoalpb.LinkError{Code: shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, Message: err.Error()}
	var e *LinkErr
	if errors.As(err, &e) {
		le = &shoalpb.LinkError{Code: e.Code, Message: e.Msg, LeaderAddr: e.LeaderAddr}
	}
	return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Error{Error: le}}
}

// answerOf turns an answer into Call's results: a LinkError answer becomes
// a *LinkErr.
func answerOf(m *shoalpb.WanMessage) (*shoalpb.WanMessage, error) {
	if le := m.GetError(); le != nil {
		return nil, &LinkErr{Code: le.GetCode(), Msg: le.GetMessage(), LeaderAddr: le.GetLeaderAddr()}
	}
	return m, nil
}

// handle runs h (nil: not serving yet) on one request and returns the
// answer, never nil.
func handle(ctx context.Context, h *Handler, from Peer, req *shoalpb.WanMessage, early bool) *shoalpb.WanMessage {
	if h == nil || *h == nil {
		return errorAnswer(Refuse(shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, "not serving requests yet"))
	}
	ans, err := (*h)(ctx, from, req, early)
	switch {
	case err != nil:
		return errorAnswer(err)
	case ans == nil:
		return errorAnswer(Refuse(shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, "the handler gave no answer"))
	}
	return ans
}

// encodeAnswer encodes an answer; one over the limit is replaced by an
// UNAVAILABLE answer that says so.
func encodeAnswer(ans *shoalpb.WanMessage, limit int) []byte {
	b, err := encodeFrame(ans, limit)
	if err != nil {
		b, _ = encodeFrame(errorAnswer(Refuse(shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, "answer: %v", err)), limit)
	}
	return b
}

// checkRegion is the CallOptions.Region check.
func checkRegion(opts CallOptions, addr string, id Identity) error {
	if opts.Region != "" && id.Region != opts.Region {
		return fmt.Errorf("%w: %s answers as %s, the call wants region %q", ErrIdentity, addr, id, opts.Region)
	}
	return nil
}

// withCallTimeout gives ctx a deadline if it has none.
func withCallTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
