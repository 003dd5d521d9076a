package transport

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Connection close codes.
const (
	// connClosing: the link at this end closed.
	connClosing quic.ApplicationErrorCode = 0
	// connRefused: the other end's verified certificate names no usable
	// identity.
	connRefused quic.ApplicationErrorCode = 1
)

// Stream reset codes (CancelRead, CancelWrite).
const (
	// streamCanceled: the caller gave up, or the link is closing.
	streamCanceled quic.StreamErrorCode = 1
	// streamBadFrame: the request was malformed or too large.
	streamBadFrame quic.StreamErrorCode = 2
	// streamDropped: a fault dropped the request.
	streamDropped quic.StreamErrorCode = 3
)

// QUICLink is one peer's end of the links between regions over QUIC: one
// UDP socket to listen and dial from, one connection per remote address,
// one stream per request. See the package documentation for the contract.
type QUICLink struct {
	cfg    QUICConfig
	log    *slog.Logger
	faults *Faults
	addr   string

	udp *net.UDPConn
	tr  *quic.Transport
	ln  *quic.EarlyListener

	clientTLS  *tls.Config
	clientQUIC *quic.Config
	sessions   tls.ClientSessionCache

	handler atomic.Pointer[Handler]

	// ctx is cancelled by Close: handlers, dials and accept loops stop.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine of the link; Close waits for them.
	wg sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	dests    map[string]*dest
	accepted map[*quic.Conn]struct{}

	// dials counts the connections dialled (tests check reuse with it).
	dials atomic.Uint64
}

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

// NewQUICLink opens the UDP socket at cfg.BindAddr and starts serving on
// it (requests are answered UNAVAILABLE until Serve).
func NewQUICLink(cfg QUICConfig) (*QUICLink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	serverTLS, clientTLS, err := linkTLS(cfg)
	if err != nil {
		return nil, err
	}
	udp, err := listenUDP(cfg.BindAddr, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("transport: listening on %s: %w", cfg.BindAddr, err)
	}
	l := &QUICLink{
		cfg:       cfg,
		log:       cfg.Logger,
		faults:    &Faults{},
		addr:      cfg.AdvertiseAddr,
		udp:       udp,
		tr:        &quic.Transport{Conn: udp},
		clientTLS: clientTLS,
		sessions:  cfg.SessionCache,
		clientQUIC: &quic.Config{
			HandshakeIdleTimeout:  cfg.HandshakeTimeout,
			MaxIdleTimeout:        cfg.IdleTimeout,
			KeepAlivePeriod:       cfg.KeepAlive,
			MaxIncomingStreams:    -1, // the server end never opens streams
			MaxIncomingUniStreams: -1,
		},
		dests:    make(map[string]*dest),
		accepted: make(map[*quic.Conn]struct{}),
	}
	if l.addr == "" {
		l.addr = udp.LocalAddr().String()
	}
	if l.sessions == nil {
		l.sessions = tls.NewLRUClientSessionCache(256)
	}
	l.ln, err = l.tr.ListenEarly(serverTLS, &quic.Config{
		HandshakeIdleTimeout:  cfg.HandshakeTimeout,
		MaxIdleTimeout:        cfg.IdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlive,
		MaxIncomingStreams:    int64(cfg.MaxStreams),
		MaxIncomingUniStreams: -1,
		Allow0RTT:             true,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("transport: listening on %s: %w", cfg.BindAddr, err), l.tr.Close(), udp.Close())
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr is the advertised address.
func (l *QUICLink) Addr() string { return l.addr }

// Faults are this end's fault hooks.
func (l *QUICLink) Faults() *Faults { return l.faults }

// Serve sets the handler for incoming requests.
func (l *QUICLink) Serve(h Handler) { l.handler.Store(&h) }

// Close closes the listener, every connection (the peers learn at once)
// and the socket, after the running handlers have returned. Calls then
// fail with ErrClosed.
func (l *QUICLink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var conns []*quic.Conn
	for _, d := range l.dests {
		if d.conn != nil {
			conns = append(conns, d.conn)
		}
	}
	for c := range l.accepted {
		conns = append(conns, c)
	}
	l.mu.Unlock()

	// Connections first, so that the handlers' callers see the link
	// break instead of answers born of a cancelled context.
	err := l.ln.Close()
	for _, c := range conns {
		_ = c.CloseWithError(connClosing, "link closed")
	}
	l.cancel()
	l.wg.Wait()
	return errors.Join(err, l.tr.Close(), l.udp.Close())
}

// Call sends req to the peer at addr, as Link.Call describes. With
// opts.Idempotent and a session to resume, the request goes out as 0-RTT
// data; if the server rejects 0-RTT it dropped that data, and Call sends
// the request again once the handshake is done.
func (l *QUICLink) Call(ctx context.Context, addr string, req *shoalpb.WanMessage, opts CallOptions) (*shoalpb.WanMessage, Peer, error) {
	if l.ctx.Err() != nil {
		return nil, Peer{Addr: addr}, ErrClosed
	}
	frame, err := encodeFrame(req, l.cfg.MaxFrame)
	if err != nil {
		return nil, Peer{Addr: addr}, fmt.Errorf("transport: call %s: %w", addr, err)
	}
	ctx, cancel := withCallTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	ans, peer, retry, err := l.call(ctx, addr, frame, opts, opts.Idempotent)
	if retry {
		ans, peer, _, err = l.call(ctx, addr, frame, opts, false)
	}
	if err != nil && l.ctx.Err() != nil {
		err = ErrClosed
	}
	return ans, peer, err
}

// call makes one attempt; retry is true when 0-RTT was rejected before
// the request could be handled.
func (l *QUICLink) call(ctx context.Context, addr string, frame []byte, opts CallOptions, mayEarly bool) (ans *shoalpb.WanMessage, peer Peer, retry bool, err error) {
	peer = Peer{Addr: addr}
	known, isKnown := l.knownPeer(addr)
	if v := l.faults.outbound(known, addr); v.drop {
		return nil, peer, false, fmt.Errorf("%w: %s: %s", ErrUnreachable, addr, v.why)
	} else if err := sleepCtx(ctx, v.delay); err != nil {
		return nil, peer, false, fmt.Errorf("transport: call %s: %w", addr, err)
	}
	c, err := l.conn(ctx, addr)
	if err != nil {
		return nil, peer, false, err
	}
	// 0-RTT data goes to whoever holds the session; with a region to
	// check, only if the last verified handshake named that region.
	early := mayEarly && !handshakeDone(c) && (opts.Region == "" || (isKnown && known.Region == opts.Region))
	if !early {
		if peer.Identity, err = l.verifiedServer(ctx, addr, c); err != nil {
			return nil, peer, false, err
		}
		if !isKnown {
			if v := l.faults.outbound(peer.Identity, addr); v.drop {
				return nil, peer, false, fmt.Errorf("%w: %s: %s", ErrUnreachable, addr, v.why)
			}
		}
		if err := checkRegion(opts, addr, peer.Identity); err != nil {
			return nil, peer, false, err
		}
	}
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		if errors.Is(err, quic.Err0RTTRejected) {
			return nil, peer, true, err
		}
		return nil, peer, false, l.failure(ctx, addr, c, err, false)
	}
	defer context.AfterFunc(ctx, func() {
		str.CancelRead(streamCanceled)
		str.CancelWrite(streamCanceled)
	})()
	ans, err = exchange(str, frame, l.cfg.MaxFrame)
	if err != nil {
		str.CancelRead(streamCanceled)
		str.CancelWrite(streamCanceled)
		if errors.Is(err, quic.Err0RTTRejected) {
			return nil, peer, true, err
		}
		return nil, peer, false, l.failure(ctx, addr, c, err, true)
	}
	if early {
		if peer.Identity, err = l.verifiedServer(ctx, addr, c); err != nil {
			return nil, peer, false, err
		}
		if err := checkRegion(opts, addr, peer.Identity); err != nil {
			return nil, peer, false, err
		}
	}
	l.succeeded(addr, c)
	ans, err = answerOf(ans)
	return ans, peer, false, err
}

// exchange writes the request frame, half-closes the stream and reads the
// answer frame up to the end of the stream.
func exchange(str *quic.Stream, frame []byte, limit int) (*shoalpb.WanMessage, error) {
	if _, err := str.Write(frame); err != nil {
		return nil, err
	}
	if err := str.Close(); err != nil {
		return nil, err
	}
	br := bufio.NewReader(str)
	ans, err := ReadFrame(br, limit)
	if err != nil {
		return nil, err
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		str.CancelRead(streamBadFrame) // more than one answer: keep the first
	}
	return ans, nil
}

// verifiedServer waits for c's handshake and returns the identity its
// server's certificate names.
func (l *QUICLink) verifiedServer(ctx context.Context, addr string, c *quic.Conn) (Identity, error) {
	if err := awaitHandshake(ctx, c); err != nil {
		return Identity{}, l.failure(ctx, addr, c, err, false)
	}
	if l.cfg.Insecure {
		return Identity{}, nil
	}
	certs := c.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		return Identity{}, fmt.Errorf("%w: %w: %s presented no certificate", ErrUnreachable, ErrIdentity, addr)
	}
	// WANTLSConfig's VerifyConnection checked the chain and the identity.
	return IdentityOf(certs[0])
}

// failure turns an error of connection c into Call's error. sent says
// whether the request may have reached the peer.
func (l *QUICLink) failure(ctx context.Context, addr string, c *quic.Conn, err error, sent bool) error {
	switch {
	case l.ctx.Err() != nil:
		return ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("transport: call %s: %w", addr, ctx.Err())
	}
	if c.Context().Err() != nil {
		err = markRefused(context.Cause(c.Context()))
		l.mu.Lock()
		if d := l.dests[addr]; d != nil {
			l.lostLocked(addr, d, c, err)
		}
		l.mu.Unlock()
		// A refused certificate closes the connection before the server
		// reads any request from it.
		if errors.Is(err, ErrIdentity) {
			sent = false
		}
	}
	if !sent {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBroken, addr, err)
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
	l.dials.Add(1)
	c, err := l.tr.DialEarly(ctx, ua, tlsConf, l.clientQUIC)
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

// markRefused makes an error that says a certificate was refused, by
// this end or by the other, wrap ErrIdentity.
func markRefused(err error) error {
	if err == nil || errors.Is(err, ErrIdentity) {
		return err
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	// The other end's TLS alert, carried as a QUIC crypto error (0x100 +
	// alert).
	var terr *quic.TransportError
	if errors.As(err, &terr) && terr.ErrorCode >= 0x100 && terr.ErrorCode < 0x200 {
		switch terr.ErrorCode - 0x100 {
		case 42, 43, 44, 45, 46, 48, 49, 116: // bad, unsupported, revoked, expired, unknown certificate; unknown CA; access denied; certificate required
			return fmt.Errorf("%w: %w", ErrIdentity, err)
		}
	}
	var aerr *quic.ApplicationError
	if errors.As(err, &aerr) && aerr.Remote && aerr.ErrorCode == connRefused {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return err
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

// linkTLS returns the server and client TLS configurations of a link.
func linkTLS(cfg QUICConfig) (server, client *tls.Config, err error) {
	if !cfg.Insecure {
		return cfg.TLS.WANTLSConfig(), cfg.TLS.WANTLSConfig(), nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "shoal insecure link"},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{WANProtocol},
	}
	client = &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // Insecure: for tests and development only
		NextProtos:         []string{WANProtocol},
	}
	return server, client, nil
}
