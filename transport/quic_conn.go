package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// The connections a QUICLink dials: one per remote address, its redial
// backoff, and what the last handshake said about the peer.

// dest is what the link knows of one remote address. Guarded by
// QUICLink.mu.
type dest struct {
	// conn is the connection in use; nil if none.
	conn *quic.Conn
	// dialing is closed when the running dial ends; nil if none runs.
	dialing chan struct{}
	// failures counts consecutive lost connections and failed dials; an
	// answered call resets it.
	failures int
	// retryAt is when the next dial may start; lastErr says why the last
	// connection or dial failed.
	retryAt time.Time
	lastErr error
	// peer is the verified identity of the last completed handshake with
	// the address (faults and 0-RTT region checks use it).
	peer  Identity
	known bool
}

// conn returns the connection to addr, dialling one if there is none and
// the address is not in its backoff.
func (l *QUICLink) conn(ctx context.Context, addr string) (*quic.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	d := l.dests[addr]
	if d == nil {
		d = &dest{}
		l.dests[addr] = d
	}
	if c := d.conn; c != nil && c.Context().Err() != nil {
		l.lostLocked(addr, d, c, markRefused(context.Cause(c.Context())))
	}
	if c := d.conn; c != nil {
		l.mu.Unlock()
		return c, nil
	}
	ch := d.dialing
	if ch == nil {
		if now := l.cfg.Clock.Now(); now.Before(d.retryAt) {
			err := fmt.Errorf("%w: %s: no redial for %v after: %w", ErrUnreachable, addr, d.retryAt.Sub(now).Round(time.Millisecond), d.lastErr)
			l.mu.Unlock()
			return nil, err
		}
		ch = make(chan struct{})
		d.dialing = ch
		l.wg.Add(1)
		go l.dial(addr, d, ch)
	}
	l.mu.Unlock()

	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: dialling: %w", ErrUnreachable, addr, ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := d.conn; c != nil {
		return c, nil
	}
	if l.closed {
		return nil, ErrClosed
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, d.lastErr)
}

// dial runs one dial to addr for every caller waiting on done.
func (l *QUICLink) dial(addr string, d *dest, done chan struct{}) {
	defer l.wg.Done()
	defer close(done)
	c, err := l.dialConn(addr)
	l.mu.Lock()
	d.dialing = nil
	switch {
	case err != nil:
		l.failLocked(d, err)
		l.log.Debug("dial failed", "addr", addr, "failures", d.failures, "err", err)
	case l.closed:
		l.mu.Unlock()
		_ = c.CloseWithError(connClosing, "link closed")
		return
	default:
		d.conn = c
		l.wg.Add(1)
		go l.watch(addr, d, c)
	}
	l.mu.Unlock()
}

func (l *QUICLink) dialConn(addr string) (*quic.Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	tlsConf := l.clientTLS.Clone()
	tlsConf.ClientSessionCache = addrSessions{l.sessions, addr}
	dial := l.tr.Dial
	if l.cfg.ZeroRTT {
		dial = l.tr.DialEarly // returns before the handshake when it can resume
	}
	l.dials.Add(1)
	c, err := dial(ctx, ua, tlsConf, l.clientQUIC)
	if err != nil {
		return nil, markRefused(err)
	}
	return c, nil
}

// watch follows a dialled connection: it learns the server's identity
// when the handshake completes and forgets the connection when it closes.
func (l *QUICLink) watch(addr string, d *dest, c *quic.Conn) {
	defer l.wg.Done()
	select {
	case <-c.HandshakeComplete():
		// After a rejected 0-RTT attempt quic-go refuses new streams until
		// told that the application knows; the handshake is done, so it
		// returns at once. (Streams sent in 0-RTT are retried by Call.)
		_, _ = c.NextConnection(l.ctx)
		if id, err := l.verifiedServer(l.ctx, addr, c); err != nil {
			_ = c.CloseWithError(connRefused, err.Error())
		} else {
			l.mu.Lock()
			d.peer, d.known = id, true
			l.mu.Unlock()
		}
	case <-c.Context().Done():
	}
	<-c.Context().Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lostLocked(addr, d, c, markRefused(context.Cause(c.Context())))
}

// lostLocked forgets d's connection c, if still in use, and starts the
// backoff.
func (l *QUICLink) lostLocked(addr string, d *dest, c *quic.Conn, cause error) {
	if d.conn != c {
		return
	}
	d.conn = nil
	if !l.closed {
		l.failLocked(d, cause)
		l.log.Debug("connection lost", "addr", addr, "failures", d.failures, "err", cause)
	}
}

func (l *QUICLink) failLocked(d *dest, err error) {
	d.failures++
	d.retryAt = l.cfg.Clock.Now().Add(l.cfg.backoff(d.failures))
	d.lastErr = err
}

// succeeded resets addr's backoff after an answer on c.
func (l *QUICLink) succeeded(addr string, c *quic.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.dests[addr]; d != nil && d.conn == c {
		d.failures = 0
	}
}

// knownPeer is the identity of the last completed handshake with addr.
func (l *QUICLink) knownPeer(addr string) (Identity, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.dests[addr]; d != nil {
		return d.peer, d.known
	}
	return Identity{}, false
}

// after0RTTRejected makes c usable again after the server rejected 0-RTT
// (quic-go refuses new streams until told that the application knows).
// The server dropped what was sent in 0-RTT, so it is safe to send again.
func after0RTTRejected(ctx context.Context, c *quic.Conn, err error) error {
	if _, nerr := c.NextConnection(ctx); nerr != nil {
		return nerr
	}
	return err
}

func handshakeDone(c *quic.Conn) bool {
	select {
	case <-c.HandshakeComplete():
		return true
	default:
		return false
	}
}

// awaitHandshake waits for c's handshake (HandshakeComplete is only
// closed on success).
func awaitHandshake(ctx context.Context, c *quic.Conn) error {
	select {
	case <-c.HandshakeComplete():
		return nil
	case <-c.Context().Done():
		return context.Cause(c.Context())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addrSessions keeps one TLS session cache apart per address: quic-go
// keys sessions by host only, and peers on one host differ by port.
type addrSessions struct {
	cache tls.ClientSessionCache
	addr  string
}

func (s addrSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return s.cache.Get(s.addr + " " + key)
}

func (s addrSessions) Put(key string, cs *tls.ClientSessionState) {
	s.cache.Put(s.addr+" "+key, cs)
}
