package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte of every connection on the node's one TCP listener says
// what speaks on it (as Consul's RPC types do). Anything else closes the
// connection. With Config.TLS the whole connection is TLS and the byte is
// the first one inside it: nothing, not even the kind of connection, is
// read from a side that has not shown a certificate of its region.
const (
	muxRaft    byte = 0x01 // hashicorp/raft's NetworkTransport protocol
	muxForward byte = 0x02 // one ForwardRequest, one ForwardResponse
)

const (
	// handshakeTimeout bounds the wait for the first byte of a connection
	// and for a whole forward request to arrive.
	handshakeTimeout = 5 * time.Second
	// maxForwardConns bounds concurrent forward connections; beyond it new
	// ones are closed at once (the sender sees "not sent" and retries).
	maxForwardConns = 256
	// raftAcceptBacklog is how many raft connections may wait for raft's
	// transport to accept them.
	raftAcceptBacklog = 16
)

// mux owns the node's TCP listener and dispatches connections by their
// first byte: raft connections go to raftLayer.Accept, forward connections
// to the forward handler, each in its own goroutine.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	log       *slog.Logger
	tls       *tls.Config // server side; nil for plain TCP
	dialTLS   *tls.Config // client side

	raftConns  chan net.Conn
	raftClosed chan struct{}
	raftOnce   sync.Once

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	sem       chan struct{}
}

func newMux(ln net.Listener, advertise net.Addr, tlsCfg *tls.Config, log *slog.Logger) *mux {
	var dialTLS *tls.Config
	if tlsCfg != nil {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.MinVersion = max(tlsCfg.MinVersion, tls.VersionTLS13)
		dialTLS = tlsCfg.Clone()
	}
	return &mux{
		ln:         ln,
		advertise:  advertise,
		log:        log,
		tls:        tlsCfg,
		dialTLS:    dialTLS,
		raftConns:  make(chan net.Conn, raftAcceptBacklog),
		raftClosed: make(chan struct{}),
		closed:     make(chan struct{}),
		sem:        make(chan struct{}, maxForwardConns),
	}
}

// serve starts accepting connections; forward connections are handed to
// handle, which owns (and must close) the connection.
func (m *mux) serve(handle func(net.Conn)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		backoff := 5 * time.Millisecond
		for {
			conn, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				m.log.Warn("accept failed", "err", err)
				select {
				case <-m.closed:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			backoff = 5 * time.Millisecond
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.dispatch(conn, handle)
			}()
		}
	}()
}

func (m *mux) dispatch(conn net.Conn, handle func(net.Conn)) {
	var b [1]byte
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tconn := tls.Server(conn, m.tls)
		if err := tconn.Handshake(); err != nil {
			m.log.Warn("refused a connection: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
			conn.Close()
			return
		}
		conn = tconn
	}
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	switch b[0] {
	case muxRaft:
		_ = conn.SetDeadline(time.Time{})
		select {
		case m.raftConns <- conn:
		case <-m.raftClosed:
			conn.Close()
		case <-m.closed:
			conn.Close()
		}
	case muxForward:
		select {
		case m.sem <- struct{}{}:
		default:
			m.log.Warn("too many forward connections; closing one", "remote", conn.RemoteAddr().String())
			conn.Close()
			return
		}
		defer func() { <-m.sem }()
		handle(conn)
	default:
		m.log.Warn("unknown connection type; closing", "remote", conn.RemoteAddr().String(), "first_byte", b[0])
		conn.Close()
	}
}

// Close stops the listener and waits for the connection handlers.
func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
		m.wg.Wait()
		// Raft connections accepted but never taken by the transport.
		for {
			select {
			case c := <-m.raftConns:
				c.Close()
			default:
				return
			}
		}
	})
	return err
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

// Accept returns the next raft connection.
func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.raftClosed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; the listener itself is closed by mux.Close.
func (l raftLayer) Close() error {
	l.m.raftOnce.Do(func() { close(l.m.raftClosed) })
	return nil
}

// Addr is the advertised address, which raft uses as this node's address.
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

// dial opens a connection to another node's mux, with a completed TLS
// handshake when the node uses TLS. With TLS 1.3 a refusal of this node's
// certificate shows only on the first read.
func (m *mux) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || m.dialTLS == nil {
		return conn, err
	}
	cfg := m.dialTLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tconn, nil
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

// Dial opens a raft connection to another node.
func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := l.m.dial(ctx, string(address))
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
