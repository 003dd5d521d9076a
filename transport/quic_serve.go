package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// acceptLoop accepts connections until the link closes. The listener
// hands connections over before their handshake completes, so that 0-RTT
// requests can be read.
func (l *QUICLink) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.CloseWithError(connClosing, "link closed")
			return
		}
		l.accepted[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serveConn(c)
	}
}

// serveConn serves each stream of c in its own goroutine; quic-go caps
// the streams in flight at MaxStreams.
func (l *QUICLink) serveConn(c *quic.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.accepted, c)
		l.mu.Unlock()
	}()
	for {
		str, err := c.AcceptStream(l.ctx)
		if err != nil {
			return
		}
		l.wg.Add(1)
		go l.serveStream(c, str)
	}
}

// serveStream reads one request, has it handled and writes the answer. A
// malformed or oversized request is answered BAD_REQUEST and its stream
// closed; the connection goes on serving.
func (l *QUICLink) serveStream(c *quic.Conn, str *quic.Stream) {
	defer l.wg.Done()
	// The handler's context ends when the caller resets the stream (it
	// gave up), the connection closes or the link closes.
	ctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	defer context.AfterFunc(str.Context(), cancel)()
	abort := func(code quic.StreamErrorCode) {
		str.CancelRead(code)
		str.CancelWrite(code)
	}

	_ = str.SetReadDeadline(time.Now().Add(l.cfg.CallTimeout))
	br := bufio.NewReader(str)
	req, err := ReadFrame(br, l.cfg.MaxFrame)
	if err == nil {
		if _, err = br.ReadByte(); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = fmt.Errorf("%w: data after the request", ErrFrame)
		}
	}
	// Before the handshake completes, the server can only read 0-RTT data.
	early := !handshakeDone(c)
	if err != nil {
		if !errors.Is(err, ErrFrame) {
			abort(streamCanceled)
			return
		}
		str.CancelRead(streamBadFrame)
		l.answer(str, errorAnswer(Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "%v", err)))
		return
	}

	from := Peer{Addr: c.RemoteAddr().String()}
	if from.Identity, err = l.caller(ctx, c); err != nil {
		abort(streamCanceled)
		return
	}
	v := l.faults.inbound(from.Identity, from.Addr)
	if v.drop {
		// Never answered: the caller times out and resets the stream.
		<-ctx.Done()
		abort(streamDropped)
		return
	}
	if sleepCtx(ctx, v.delay) != nil {
		abort(streamCanceled)
		return
	}
	ans := handle(ctx, l.handler.Load(), from, req, early)
	if l.ctx.Err() != nil {
		abort(streamCanceled) // closing: no answer born of a cancelled context
		return
	}
	l.answer(str, ans)
}

// answer writes the answer frame and closes the stream.
func (l *QUICLink) answer(str *quic.Stream, ans *shoalpb.WanMessage) {
	_ = str.SetWriteDeadline(time.Now().Add(l.cfg.CallTimeout))
	if _, err := str.Write(encodeAnswer(ans, l.cfg.MaxFrame)); err != nil {
		str.CancelWrite(streamCanceled)
		return
	}
	_ = str.Close()
}

// caller returns the verified identity of the peer that dialled c.
//
// Before the handshake completes (a request in 0-RTT data) that is the
// identity of the resumed session. crypto/tls restores the client's
// certificates and verified chains from the session ticket, which only
// this server could have sealed, checks them again (chain to the mesh CA
// and WANTLSConfig's VerifyConnection) and only then, its first flight
// sent, hands quic-go the keys that open the 0-RTT data, which are
// derived from that session's secret. So the identity is as verified as
// after a full handshake; what 0-RTT data lacks is protection against
// replay, hence the early flag. Without verified chains (no resumption),
// caller waits for the handshake.
func (l *QUICLink) caller(ctx context.Context, c *quic.Conn) (Identity, error) {
	if l.cfg.Insecure {
		return Identity{}, nil
	}
	cs := c.ConnectionState().TLS
	if len(cs.VerifiedChains) == 0 {
		if err := awaitHandshake(ctx, c); err != nil {
			return Identity{}, err
		}
		cs = c.ConnectionState().TLS
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: %s has no verified certificate", ErrIdentity, c.RemoteAddr())
	}
	return IdentityOf(cs.VerifiedChains[0][0])
}
