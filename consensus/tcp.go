package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/transport"
)

// The first byte of every connection on a TCPNetwork's listener says what
// speaks on it (as Consul's RPC types do). Anything else closes the
// connection. With TLS the whole connection is TLS and the byte is the
// first one inside it: nothing, not even the kind of connection, is read
// from a side that has not shown a certificate of its region.
const (
	muxRaft    byte = 0x01 // hashicorp/raft's NetworkTransport protocol
	muxForward byte = 0x02 // one ForwardRequest, one ForwardResponse
)

const (
	// handshakeTimeout bounds the TLS handshake and the wait for the first
	// byte of a connection, for the first bytes of a Raft connection and
	// for a whole forward request to arrive.
	handshakeTimeout = 5 * time.Second
	// maxForwardConns bounds concurrent forward connections; beyond it new
	// ones are closed at once (the sender sees "not sent" and retries).
	maxForwardConns = 256
	// maxConns bounds every connection the listener holds at once (Raft,
	// forwarding and handshakes); beyond it new ones are closed at once.
	maxConns = 1024
	// raftAcceptBacklog is how many raft connections may wait for raft's
	// transport to accept them.
	raftAcceptBacklog = 16
	// transportMaxPool is raft's connection pool per peer.
	transportMaxPool = 3
	// transportTimeout bounds raft's own RPC I/O.
	transportTimeout = 10 * time.Second
	// redialInterval is how often a raft dial tries again a peer that
	// refuses, until transportTimeout (see raftLayer.Dial).
	redialInterval = 50 * time.Millisecond
)

// TCPConfig configures a TCPNetwork.
type TCPConfig struct {
	// BindAddr is the TCP address to listen on, e.g. "127.0.0.1:0" (port 0
	// picks a free port; see Addr).
	BindAddr string
	// AdvertiseAddr is the address other nodes dial; "" means the bound
	// address.
	AdvertiseAddr string
	// TLS, if not nil, puts the whole listener under mutual TLS: every
	// accepted connection must complete a handshake presenting a
	// certificate before its first byte is read, and every connection this
	// side opens presents Certificates and checks the other side. The same
	// config serves both sides, so it must have Certificates, ClientAuth
	// RequireAndVerifyClientCert and, since addresses are dialed, either a
	// ServerName or InsecureSkipVerify with a VerifyConnection that checks
	// the chain (transport's PeerTLSConfig does: same mesh CA, same
	// region). MinVersion is raised to TLS 1.3. nil means plain TCP, open
	// to anyone who can reach the port.
	TLS *tls.Config
	// Logger receives the network's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Validate checks the fields; errors wrap ErrBadConfig.
func (c TCPConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.BindAddr == "":
		return bad("BindAddr is empty: set a host:port such as 127.0.0.1:0")
	case c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil:
		return bad("TLS has no certificate: both sides of a connection present one")
	case c.TLS != nil && c.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return bad("TLS.ClientAuth is %v: the Raft port needs RequireAndVerifyClientCert", c.TLS.ClientAuth)
	case c.TLS != nil && c.TLS.InsecureSkipVerify && c.TLS.VerifyConnection == nil && c.TLS.VerifyPeerCertificate == nil:
		return bad("TLS.InsecureSkipVerify without VerifyConnection would accept any server")
	}
	return nil
}

// TCPNetwork is the production Network: one TCP listener carries both
// Raft (hashicorp/raft's NetworkTransport) and forwarding, told apart by
// the first byte of each connection, optionally under mutual TLS.
type TCPNetwork struct {
	ln        net.Listener
	advertise net.Addr
	log       *slog.Logger
	tls       *tls.Config // server side; nil for plain TCP
	dialTLS   *tls.Config // client side
	trans     *raft.NetworkTransport

	raftConns  chan net.Conn
	raftClosed chan struct{}
	raftOnce   sync.Once

	closed    chan struct{}
	closeOnce sync.Once
	// stopping ends raft dials that wait for a refusing peer, before
	// raft shuts down (it waits for the goroutines that dial).
	stopping chan struct{}
	stopOnce sync.Once
	closeErr error
	wg       sync.WaitGroup
	conns    chan struct{} // one token per open accepted connection
	forwards chan struct{} // one token per running forward handler
	faults   NetFaults
}

var _ Network = (*TCPNetwork)(nil)

// NewTCPNetwork listens on cfg.BindAddr and returns the network; it
// accepts forwarding connections only after ServeForward.
func NewTCPNetwork(cfg TCPConfig) (*TCPNetwork, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("consensus: listen on %s: %w", cfg.BindAddr, err)
	}
	adv, err := advertiseAddr(cfg.AdvertiseAddr, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	var srvTLS, dialTLS *tls.Config
	if cfg.TLS != nil {
		srvTLS = cfg.TLS.Clone()
		srvTLS.MinVersion = max(srvTLS.MinVersion, tls.VersionTLS13)
		dialTLS = srvTLS.Clone()
	}
	n := &TCPNetwork{
		ln:         ln,
		advertise:  adv,
		log:        log,
		tls:        srvTLS,
		dialTLS:    dialTLS,
		raftConns:  make(chan net.Conn, raftAcceptBacklog),
		raftClosed: make(chan struct{}),
		closed:     make(chan struct{}),
		stopping:   make(chan struct{}),
		conns:      make(chan struct{}, maxConns),
		forwards:   make(chan struct{}, maxForwardConns),
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{n},
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  newRaftLogger(log),
	})
	return n, nil
}

// advertiseAddr resolves the address others dial.
func advertiseAddr(advertise string, bound net.Addr) (net.Addr, error) {
	if advertise == "" {
		tcp, ok := bound.(*net.TCPAddr)
		if ok && tcp.IP.IsUnspecified() {
			return nil, fmt.Errorf("%w: bound to %s: set AdvertiseAddr to an address others can dial", ErrBadConfig, bound)
		}
		return bound, nil
	}
	a, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q: %v", ErrBadConfig, advertise, err)
	}
	if a.IP == nil || a.IP.IsUnspecified() {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q is not dialable", ErrBadConfig, advertise)
	}
	return a, nil
}

// Raft implements Network.
func (n *TCPNetwork) Raft() raft.Transport { return n.trans }

// Addr implements Network.
func (n *TCPNetwork) Addr() string { return n.advertise.String() }

// ServeForward implements Network: it starts accepting connections.
func (n *TCPNetwork) ServeForward(handle func(net.Conn, Peer)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		backoff := 5 * time.Millisecond
		for {
			conn, err := n.ln.Accept()
			if err != nil {
				select {
				case <-n.closed:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				n.log.Warn("accept failed", "err", err)
				select {
				case <-n.closed:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			backoff = 5 * time.Millisecond
			select {
			case n.conns <- struct{}{}:
			default:
				n.log.Warn("too many connections; closing one", "remote", conn.RemoteAddr().String(), "limit", maxConns)
				conn.Close()
				continue
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.dispatch(&countedConn{Conn: conn, release: func() { <-n.conns }}, handle)
			}()
		}
	}()
}

// countedConn gives its connection token back once, when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (n *TCPNetwork) dispatch(conn net.Conn, handle func(net.Conn, Peer)) {
	var b [1]byte
	peer := Peer{Addr: conn.RemoteAddr().String()}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if n.tls != nil {
		tconn := tls.Server(conn, n.tls)
		if err := tconn.Handshake(); err != nil {
			n.log.Warn("refused a connection: TLS handshake failed", "remote", peer.Addr, "err", err)
			conn.Close()
			return
		}
		peer = peerOf(tconn, peer.Addr)
		conn = tconn
	}
	conn, err := n.faults.admit(conn, peer, "", false)
	if err != nil {
		return
	}
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	switch b[0] {
	case muxRaft:
		// Raft's first request must start within the handshake timeout
		// too; after that raft's own timeouts apply.
		_ = conn.SetWriteDeadline(time.Time{})
		conn = &firstReadDeadline{Conn: conn}
		select {
		case n.raftConns <- conn:
		case <-n.raftClosed:
			conn.Close()
		case <-n.closed:
			conn.Close()
		}
	case muxForward:
		select {
		case n.forwards <- struct{}{}:
		default:
			n.log.Warn("too many forward connections; closing one", "remote", peer.Addr)
			conn.Close()
			return
		}
		defer func() { <-n.forwards }()
		handle(conn, peer)
	default:
		n.log.Warn("unknown connection type; closing", "remote", peer.Addr, "first_byte", b[0])
		conn.Close()
	}
}

// peerOf reads the verified identity of a TLS connection's other side.
func peerOf(conn *tls.Conn, addr string) Peer {
	p := Peer{Addr: addr}
	cs := conn.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return p
	}
	// The TLS config's VerifyConnection already refused anything that is
	// not a peer of this mesh and region.
	if id, err := transport.IdentityOf(cs.PeerCertificates[0]); err == nil {
		p.Identity, p.Verified = id, true
	}
	return p
}

// firstReadDeadline keeps the handshake deadline on a connection until its
// first read returns data, then lifts it: an idle pooled Raft connection
// may wait forever, one that never starts may not.
type firstReadDeadline struct {
	net.Conn
	started bool
}

func (c *firstReadDeadline) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	if k > 0 && !c.started {
		c.started = true
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	return k, err
}

// Close stops the listener, Raft's transport and every handler, and waits
// for them.
func (n *TCPNetwork) Close() error {
	n.stopDialing()
	n.closeOnce.Do(func() {
		errs := []error{n.trans.Close()}
		close(n.closed)
		errs = append(errs, n.ln.Close())
		n.wg.Wait()
		// Raft connections accepted but never taken by the transport.
		for done := false; !done; {
			select {
			case c := <-n.raftConns:
				c.Close()
			default:
				done = true
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// raftLayer is the raft.StreamLayer over the listener.
type raftLayer struct{ n *TCPNetwork }

var _ raft.StreamLayer = raftLayer{}

// Accept returns the next raft connection.
func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.n.raftConns:
		return c, nil
	case <-l.n.raftClosed:
		return nil, net.ErrClosed
	case <-l.n.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; the listener itself is closed by TCPNetwork.Close.
func (l raftLayer) Close() error {
	l.n.raftOnce.Do(func() { close(l.n.raftClosed) })
	return nil
}

// Addr is the advertised address, which raft uses as this node's address.
func (l raftLayer) Addr() net.Addr { return l.n.advertise }

// dial opens a connection to another node, with a completed TLS handshake
// when the network uses TLS. With TLS 1.3 a refusal of this node's
// certificate shows only on the first read.
func (n *TCPNetwork) dial(ctx context.Context, addr string) (net.Conn, Peer, error) {
	var d net.Dialer
	peer := Peer{Addr: addr}
	if n.faults.refusesDial(addr) {
		return nil, peer, fmt.Errorf("%w: %s", ErrCutByFault, addr)
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return conn, peer, err
	}
	if n.dialTLS == nil {
		conn, err = n.faults.admit(conn, peer, addr, true)
		return conn, peer, err
	}
	cfg := n.dialTLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		if refusedByTLS(err) {
			return nil, peer, fmt.Errorf("%w: TLS handshake with %s: %v", ErrRefused, addr, err)
		}
		return nil, peer, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	peer = peerOf(tconn, addr)
	conn, err = n.faults.admit(tconn, peer, addr, true)
	return conn, peer, err
}

// DialForward implements Network.
func (n *TCPNetwork) DialForward(ctx context.Context, addr string) (net.Conn, Peer, error) {
	conn, peer, err := n.dial(ctx, addr)
	if err != nil {
		return nil, peer, err
	}
	return &prefixConn{Conn: conn, prefix: muxForward}, peer, nil
}

// prefixConn sends its prefix byte with the first write, so that a
// forward request goes out in one write with its mux byte.
type prefixConn struct {
	net.Conn
	prefix byte
	sent   bool
}

func (c *prefixConn) Write(p []byte) (int, error) {
	if c.sent {
		return c.Conn.Write(p)
	}
	buf := append([]byte{c.prefix}, p...)
	k, err := c.Conn.Write(buf)
	if k > 0 {
		c.sent = true
		k--
	}
	return k, err
}

// Identify implements Network: a TLS handshake tells who answers at addr.
func (n *TCPNetwork) Identify(ctx context.Context, addr string) (Peer, error) {
	conn, peer, err := n.dial(ctx, addr)
	if err != nil {
		return peer, err
	}
	conn.Close()
	return peer, nil
}

// refusedByTLS reports whether err is a refusal at the TLS level rather
// than a broken connection: this side refused the other's certificate
// (transport's checks return CertificateVerificationError too), the other side
// answered with a TLS alert (on a fresh connection: it refused this
// side's certificate), or it does not speak TLS at all.
func refusedByTLS(err error) bool {
	var verr *tls.CertificateVerificationError
	var rerr tls.RecordHeaderError
	var op *net.OpError
	return errors.As(err, &verr) || errors.As(err, &rerr) ||
		errors.As(err, &op) && op.Op == "remote error" // how crypto/tls reports a received alert
}

// Dial opens a raft connection to another node. A node that refuses
// (its process is down, or a fault cuts the link) is dialled again every
// redialInterval until timeout. Raft backs off after each failed RPC, up
// to 10 s between tries, and a refusal on loopback or a LAN comes back
// in microseconds: a follower down for a few seconds would otherwise
// wait out seconds of backoff after it came back before the leader sent
// it anything. Waiting here counts up to timeout of an outage as one
// failure, and connects the moment the node listens again.
func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := l.n.dialWaiting(ctx, string(address))
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{muxRaft}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft handshake with %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// dialWaiting dials addr again while it refuses, until ctx ends or the
// network stops dialling. The error is the refusal when the wait ends at
// ctx's deadline, not the timeout of the dial that was cut short by it.
func (n *TCPNetwork) dialWaiting(ctx context.Context, addr string) (net.Conn, error) {
	var refused error
	for {
		conn, _, err := n.dial(ctx, addr)
		switch {
		case err == nil:
			return conn, nil
		case refused != nil && ctx.Err() != nil:
			return nil, refused
		case !refusedDial(err):
			return nil, err
		}
		refused = err
		t := time.NewTimer(redialInterval)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
		case <-n.stopping:
		}
		t.Stop()
		return nil, err
	}
}

// refusedDial reports whether a dial failed because nothing listens at
// the address (or a fault refuses it), as opposed to a timeout or a
// refused certificate.
func refusedDial(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrCutByFault)
}

// stopDialing ends the dials that wait for a refusing node; Node.Shutdown
// calls it before it stops raft.
func (n *TCPNetwork) stopDialing() {
	n.stopOnce.Do(func() { close(n.stopping) })
}
