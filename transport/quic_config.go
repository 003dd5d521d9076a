package transport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"k8s.io/utils/clock"
)

// QUICConfig configures a QUICLink. Start from DefaultQUICConfig (links in
// one data centre or between well-connected regions) or EdgeQUICConfig
// (edge sites on slow or flaky networks) and set what differs; zero fields
// take the DefaultQUICConfig value.
type QUICConfig struct {
	// BindAddr is the UDP host:port to listen on and dial from
	// ("127.0.0.1:0" picks a free port).
	BindAddr string
	// AdvertiseAddr is the host:port other peers dial to reach this end;
	// empty means the bound address. Set it when binding a wildcard
	// address or behind NAT.
	AdvertiseAddr string
	// TLS is this peer's certificate with the mesh CA; it must name a
	// peer. Required unless Insecure.
	TLS *Material
	// Insecure, for tests and development only, uses a throw-away
	// self-signed certificate and verifies nothing: every Peer.Identity is
	// zero.
	Insecure bool

	// KeepAlive is how often an idle connection is pinged so that it
	// stays open (and NATs keep its mapping). Less than IdleTimeout/2.
	KeepAlive time.Duration
	// IdleTimeout closes a connection that heard nothing for that long
	// (the smaller of both ends' values applies).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds a dial, handshake included.
	HandshakeTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before redialling an
	// address whose connection was lost or whose dial failed: the ceiling
	// starts at BackoffMin and doubles with every consecutive failure up to
	// BackoffMax; the wait is drawn uniformly between BackoffMin and the
	// ceiling (full jitter). Calls during the wait fail at once with
	// ErrUnreachable.
	BackoffMin, BackoffMax time.Duration
	// MaxStreams is how many requests a caller may have in flight on one
	// connection; more wait for a stream.
	MaxStreams int
	// MaxFrame is the largest request or answer, in bytes (at most
	// MaxFrameSize).
	MaxFrame int
	// CallTimeout bounds a call whose context has no deadline, and the
	// time a caller may take to send its request.
	CallTimeout time.Duration

	// ZeroRTT lets Call send requests marked Idempotent as 0-RTT data of
	// a resumed session, a round trip earlier (edge links); without it
	// every request waits for the handshake. Sessions are resumed, and
	// 0-RTT requests from others accepted (the handler sees early), either
	// way. Note: quic-go v0.65 reads the server's transport parameters
	// while a 0-RTT stream opens without synchronisation (quic-go issue
	// 4303); the race detector can report it where ZeroRTT is on.
	ZeroRTT bool

	// SessionCache keeps TLS sessions for resumption and 0-RTT, keyed by
	// address; nil means a cache of 256 sessions owned by the link. Share
	// one to resume across link restarts.
	SessionCache tls.ClientSessionCache
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Clock times the redial backoff; nil means the real clock.
	Clock clock.PassiveClock
}

// DefaultQUICConfig is for links in a LAN or between well-connected
// regions: keep-alive 2s, idle timeout 10s, redial backoff 100ms to 10s.
func DefaultQUICConfig() QUICConfig {
	return QUICConfig{
		KeepAlive:        2 * time.Second,
		IdleTimeout:      10 * time.Second,
		HandshakeTimeout: 5 * time.Second,
		BackoffMin:       100 * time.Millisecond,
		BackoffMax:       10 * time.Second,
		MaxStreams:       64,
		MaxFrame:         MaxFrameSize,
		CallTimeout:      defaultCallTimeout,
	}
}

// EdgeQUICConfig is for links to edge sites: connections survive longer
// silences (keep-alive 5s, idle timeout 60s), redials back off further
// (up to 30s) and idempotent requests go out as 0-RTT data.
func EdgeQUICConfig() QUICConfig {
	c := DefaultQUICConfig()
	c.KeepAlive = 5 * time.Second
	c.IdleTimeout = 60 * time.Second
	c.BackoffMax = 30 * time.Second
	c.ZeroRTT = true
	return c
}

// withDefaults fills zero fields from DefaultQUICConfig.
func (c QUICConfig) withDefaults() QUICConfig {
	d := DefaultQUICConfig()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.KeepAlive, d.KeepAlive)
	fill(&c.IdleTimeout, d.IdleTimeout)
	fill(&c.HandshakeTimeout, d.HandshakeTimeout)
	fill(&c.BackoffMin, d.BackoffMin)
	fill(&c.BackoffMax, d.BackoffMax)
	fill(&c.CallTimeout, d.CallTimeout)
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Validate checks ranges and relations between fields (zero fields count
// as their defaults); errors wrap ErrBadConfig and name the field.
func (c QUICConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	c = c.withDefaults()
	switch {
	case c.BindAddr == "":
		return bad("BindAddr is empty: set the UDP host:port to listen on")
	case c.TLS == nil && !c.Insecure:
		return bad("TLS is nil: give the peer's certificate (LoadFiles), or set Insecure for a test")
	case c.TLS != nil && !c.TLS.Identity.IsPeer():
		return bad("TLS: the certificate is for %s, not a peer: issue one with shoal ca issue --region R --cluster C", c.TLS.Identity)
	case c.KeepAlive < 0 || c.IdleTimeout < 0 || c.HandshakeTimeout < 0 || c.CallTimeout < 0:
		return bad("KeepAlive (%v), IdleTimeout (%v), HandshakeTimeout (%v) and CallTimeout (%v) must be positive",
			c.KeepAlive, c.IdleTimeout, c.HandshakeTimeout, c.CallTimeout)
	case c.KeepAlive >= c.IdleTimeout/2:
		return bad("KeepAlive (%v) must be less than half of IdleTimeout (%v), or one lost keep-alive closes the connection", c.KeepAlive, c.IdleTimeout)
	case c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin:
		return bad("BackoffMin (%v) must be positive and at most BackoffMax (%v)", c.BackoffMin, c.BackoffMax)
	case c.MaxStreams < 0:
		return bad("MaxStreams (%d) must be positive", c.MaxStreams)
	case c.MaxFrame < 0 || c.MaxFrame > MaxFrameSize:
		return bad("MaxFrame (%d) must be between 1 and MaxFrameSize (%d)", c.MaxFrame, MaxFrameSize)
	}
	return nil
}

// backoff is the wait before the next dial after failures consecutive
// failures (at least 1).
func (c QUICConfig) backoff(failures int) time.Duration {
	ceil := c.BackoffMin
	for i := 1; i < failures && ceil < c.BackoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, c.BackoffMax)
	return c.BackoffMin + rand.N(ceil-c.BackoffMin+1)
}
