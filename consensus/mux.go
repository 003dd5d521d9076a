package consensus

import (
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
// connection.
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

	raftConns  chan net.Conn
	raftClosed chan struct{}
	raftOnce   sync.Once

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	sem       chan struct{}
}

func newMux(ln net.Listener, advertise net.Addr, log *slog.Logger) *mux {
	return &mux{
		ln:         ln,
		advertise:  advertise,
		log:        log,
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
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
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

// Dial opens a raft connection to another node.
func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", string(address))
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
