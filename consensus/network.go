package consensus

import (
	"context"
	"net"

	"github.com/hashicorp/raft"

	"github.com/shoalmesh/shoal/transport"
)

// Peer is who is at the other end of a connection.
type Peer struct {
	// Identity is what the peer's certificate names; zero without TLS.
	Identity transport.Identity
	// Verified is true when a certificate of the region's mesh CA proved
	// Identity (TCPNetwork with TLS; InmemNetwork with an identity given).
	// Without it nothing is known of the caller: the network is insecure.
	Verified bool
	// Addr is the remote address, for logs.
	Addr string
}

// String names the peer for logs.
func (p Peer) String() string {
	if !p.Verified {
		return "unverified peer at " + p.Addr
	}
	return p.Identity.String() + " at " + p.Addr
}

// Network connects the nodes of a region. It carries Raft's own RPCs
// through a raft.Transport and, beside them, forwarding connections: one
// request and one answer each (see forward.go). TCPNetwork is the
// production one (plain TCP or mutual TLS on one port); InmemNetwork's
// transports connect nodes in one process and can be partitioned.
//
// A Node takes ownership of its Network and closes it on Shutdown.
type Network interface {
	// Raft returns the transport Raft uses. It must implement
	// raft.WithPreVote.
	Raft() raft.Transport
	// Addr is the address other nodes dial: the RaftAddr gossip publishes.
	Addr() string
	// DialForward opens a forwarding connection to the node at addr; Peer
	// says who answered. A refused certificate (on either side) gives an
	// error wrapping ErrRefused; any other error means nothing was sent.
	DialForward(ctx context.Context, addr string) (net.Conn, Peer, error)
	// ServeForward starts handing accepted forwarding connections to
	// handle, each in its own goroutine; handle owns the connection and
	// must close it. It is called once, before any connection can arrive
	// that matters.
	ServeForward(handle func(conn net.Conn, from Peer))
	// Identify returns who listens at addr: with TLS, the identity its
	// certificate proves (Verified); on an insecure network an unverified
	// Peer. It is how the leader checks that a gossip member is the
	// cluster it claims to be before making it a voter.
	Identify(ctx context.Context, addr string) (Peer, error)
	// Close stops accepting, closes Raft's transport and every
	// connection, and waits for the handlers it started.
	Close() error
}

// dialStopper is a Network whose raft dials may wait for a node that
// refuses (TCPNetwork). Raft's shutdown waits for the goroutines that
// dial, so Node.Shutdown ends those waits first.
type dialStopper interface{ stopDialing() }
