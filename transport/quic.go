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

// NewQUICLink opens the UDP socket at cfg.BindAddr and starts serving on
// it (requests are answered UNAVAILABLE until Serve). It asks the kernel
// for the socket buffers QUIC wants; if the kernel caps them, one warning
// per process names the sizes reached and the sysctl to raise, and
// quic-go's own warning on standard error is switched off (by setting
// QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING unless it is set already).
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
// QUICConfig.ZeroRTT, opts.Idempotent and a session to resume, the request
// goes out as 0-RTT data; if the server rejects 0-RTT it dropped that
// data, and Call sends the request again once the handshake is done.
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
	// 0-RTT data goes to whoever holds the session: only if this link
	// verified who that is (faults and the region check need it).
	early := mayEarly && l.cfg.ZeroRTT && !handshakeDone(c) && isKnown && (opts.Region == "" || known.Region == opts.Region)
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
			return nil, peer, true, after0RTTRejected(ctx, c, err)
		}
		return nil, peer, false, l.failure(ctx, addr, c, err, false)
	}
	defer context.AfterFunc(ctx, func() {
		str.CancelRead(streamCanceled)
		str.CancelWrite(streamCanceled)
	})()
	ans, err = exchange(str, frame, l.cfg.MaxFrame)
	if err != nil {
		if errors.Is(err, quic.Err0RTTRejected) {
			// Leave the stream alone: after the reset its ID belongs to
			// the next stream opened.
			return nil, peer, true, after0RTTRejected(ctx, c, err)
		}
		str.CancelRead(streamCanceled)
		str.CancelWrite(streamCanceled)
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
		err = context.Cause(c.Context())
		l.mu.Lock()
		if d := l.dests[addr]; d != nil {
			l.lostLocked(addr, d, c, markRefused(err))
		}
		l.mu.Unlock()
	}
	// A refused certificate closes the connection before the server reads
	// any request from it. (A stream may learn of the close before the
	// connection's context does: look at the error itself.)
	if err = markRefused(err); errors.Is(err, ErrIdentity) {
		sent = false
	}
	if !sent {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBroken, addr, err)
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
