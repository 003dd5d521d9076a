package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrBadConfig is returned (wrapped) by Config.Validate and New when a
// Config field is missing, out of range or inconsistent with another field.
var ErrBadConfig = errors.New("gossip: bad config")

// Profile names a timing profile of the pool.
type Profile string

// The timing profiles. Every peer of a region must use the same one: the
// failure detector's timeouts only mean something when both ends agree.
const (
	// ProfileLAN is for the peers of a region that share a low-latency
	// network (one data centre or cloud region). See DefaultLANConfig.
	ProfileLAN Profile = "lan"
	// ProfileEdge is for edge sites behind slow or flapping links.
	// See DefaultEdgeConfig.
	ProfileEdge Profile = "edge"
	// ProfileLocal is for pools on one machine (tests, `shoal dev`).
	// See DefaultLocalConfig.
	ProfileLocal Profile = "local"
)

// labelPrefix is prepended to the region to form memberlist's Label, so that
// the pools of two regions reject each other's packets.
const labelPrefix = "shoal/"

// Config configures a Pool. Start from DefaultLANConfig, DefaultEdgeConfig
// or DefaultLocalConfig, set the identity and addresses, and leave the
// timings alone unless a measurement says otherwise.
type Config struct {
	// Name is the peer's cluster name. It must be unique within the region;
	// a restarted peer reuses it to take its old place.
	Name string
	// Region is the region whose pool this is. Pools of different regions
	// never merge: Region is used as memberlist's Label ("shoal/<region>")
	// and members whose metadata names another region are ignored.
	Region string

	// BindAddr is the IP address to listen on for gossip (UDP and TCP).
	// Ignored when Transport is set.
	BindAddr string
	// BindPort is the port to listen on; 0 picks a free port, which
	// Pool.LocalAddr then reports. Ignored when Transport is set.
	BindPort int
	// AdvertiseAddr is the IP address other members use to reach this one.
	// Empty means BindAddr (or a private address of the host if BindAddr is
	// unspecified); with a Transport, the address the transport reports.
	AdvertiseAddr string
	// AdvertisePort is the port other members use; 0 means the bound port.
	// With a Transport, AdvertiseAddr and AdvertisePort are set together or
	// not at all: the pool cannot know which port the transport is bound to.
	AdvertisePort int

	// Transport, if set, carries the pool's gossip instead of a memberlist
	// NetTransport bound to BindAddr:BindPort: this is how tests and the
	// chaos harness inject faults (see FaultTransport). The transport must
	// already be listening; BindAddr and BindPort are then ignored, and
	// AdvertiseAddr and AdvertisePort are handed to its FinalAdvertiseAddr.
	// Join addresses without a port default to the port it advertises. The
	// pool owns the transport from New on: Shutdown, or a New that fails,
	// shuts it down. Its methods are called from memberlist's goroutines
	// and must be safe for concurrent use, as memberlist requires.
	Transport memberlist.NodeAwareTransport

	// Profile records which profile the timings below came from. It is
	// informational: the timings are what counts.
	Profile Profile

	// SecretKey, if set, encrypts and authenticates all gossip with
	// AES-GCM. It must be 16, 24 or 32 bytes long. Members with a different
	// key (or none) cannot join.
	SecretKey []byte

	// Logger receives the pool's and memberlist's log lines. Nil means
	// slog.Default().
	Logger *slog.Logger

	// ProbeInterval is how often each member probes one other member
	// (round robin) to check that it is alive.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for the ack of a direct probe before
	// asking others to probe indirectly. It must be shorter than
	// ProbeInterval and longer than the round trip time of the network.
	ProbeTimeout time.Duration
	// IndirectChecks is how many other members are asked to probe a member
	// that did not answer a direct probe.
	IndirectChecks int
	// SuspicionMult sets how long a suspect member has to refute the
	// suspicion before it is declared dead:
	// SuspicionMult * max(1, log10(members)) * ProbeInterval.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion timeout when no other
	// member confirms the suspicion: at most SuspicionMaxTimeoutMult times
	// the timeout above. Confirmations from others shorten it back to the
	// timeout above.
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often state changes are gossiped to GossipNodes
	// random members.
	GossipInterval time.Duration
	// GossipNodes is the number of members gossiped to per GossipInterval.
	GossipNodes int
	// GossipToTheDeadTime is how long dead members keep receiving gossip,
	// so that they learn they were declared dead and can refute it.
	GossipToTheDeadTime time.Duration
	// RetransmitMult sets how many times a state change is retransmitted:
	// RetransmitMult * log(members+1).
	RetransmitMult int
	// PushPullInterval is how often a full state exchange with one random
	// member happens (anti-entropy; also heals partitions).
	PushPullInterval time.Duration
	// TCPTimeout bounds TCP exchanges: push/pull, joins and fallback probes.
	TCPTimeout time.Duration
	// DeadNodeReclaimTime is how long a dead member must stay dead before a
	// member with the same name but a different address may take its
	// place (a peer restarted on a new pod IP). A member that left
	// gracefully can be replaced at once. The pool then contacts the new
	// address itself, so a peer restarted on a new address is back about
	// DeadNodeReclaimTime + ProbeInterval after it was declared dead. 0
	// means never, which makes a restarted peer unable to rejoin from a new
	// address.
	DeadNodeReclaimTime time.Duration

	// ReconnectInterval is how often the pool tries to reach one member it
	// saw fail (not leave), picked at random, by joining its last address:
	// memberlist itself stops talking to dead members, so without this a
	// healed partition stays split. 0 disables it.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long after a member failed the pool keeps
	// trying to reach it.
	ReconnectTimeout time.Duration

	// BroadcastTimeout bounds how long UpdateMeta and Leave wait for their
	// message to be sent to at least one other member.
	BroadcastTimeout time.Duration
	// EventBuffer is the capacity of the Events channel. Events that do not
	// fit are coalesced per member (see Pool.Events).
	EventBuffer int
}

// DefaultLANConfig returns the profile for the peers of a region on one
// low-latency network: memberlist's LAN profile, tightened so that a peer
// killed without leaving is marked dead by the survivors in about 2 s
// (measured on loopback with 3 to 5 members: see TestTimeToDeadLAN).
//
// Compared with memberlist's LAN profile, probes are twice as frequent
// (500 ms, timeout 250 ms), a suspect has 3 probe intervals instead of 4 to
// refute, and an unconfirmed suspicion lasts at most twice as long instead
// of six times. The price is about twice the probe traffic and a higher
// chance of a false suspicion on an overloaded host; a falsely suspected
// member refutes it and stays alive.
func DefaultLANConfig() Config {
	return Config{
		BindAddr:                "0.0.0.0",
		BindPort:                7946,
		Profile:                 ProfileLAN,
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		GossipToTheDeadTime:     30 * time.Second,
		RetransmitMult:          4,
		PushPullInterval:        30 * time.Second,
		TCPTimeout:              10 * time.Second,
		DeadNodeReclaimTime:     10 * time.Second,
		ReconnectInterval:       5 * time.Second,
		ReconnectTimeout:        24 * time.Hour,
		BroadcastTimeout:        5 * time.Second,
		EventBuffer:             256,
	}
}

// DefaultEdgeConfig returns the profile for edge sites whose links are slow,
// lossy or briefly down: memberlist's WAN profile. A killed peer is marked
// dead after tens of seconds (memberlist's WAN profile measured about 40 s
// with 10 members), so that a flapping uplink does not look like a failure.
func DefaultEdgeConfig() Config {
	return Config{
		BindAddr:                "0.0.0.0",
		BindPort:                7946,
		Profile:                 ProfileEdge,
		ProbeInterval:           5 * time.Second,
		ProbeTimeout:            3 * time.Second,
		IndirectChecks:          3,
		SuspicionMult:           6,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          500 * time.Millisecond,
		GossipNodes:             4,
		GossipToTheDeadTime:     60 * time.Second,
		RetransmitMult:          4,
		PushPullInterval:        60 * time.Second,
		TCPTimeout:              30 * time.Second,
		DeadNodeReclaimTime:     60 * time.Second,
		ReconnectInterval:       30 * time.Second,
		ReconnectTimeout:        72 * time.Hour,
		BroadcastTimeout:        30 * time.Second,
		EventBuffer:             256,
	}
}

// DefaultLocalConfig returns the profile for pools that share one machine
// (tests, `shoal dev`): loopback, a free port, fast gossip and a quick
// reclaim of dead names. Failure detection stays around a second or two so
// that a loaded machine (tests under -race) does not cause false deaths.
func DefaultLocalConfig() Config {
	return Config{
		BindAddr:                "127.0.0.1",
		BindPort:                0,
		Profile:                 ProfileLocal,
		ProbeInterval:           300 * time.Millisecond,
		ProbeTimeout:            150 * time.Millisecond,
		IndirectChecks:          1,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          50 * time.Millisecond,
		GossipNodes:             3,
		GossipToTheDeadTime:     5 * time.Second,
		RetransmitMult:          2,
		PushPullInterval:        5 * time.Second,
		TCPTimeout:              2 * time.Second,
		DeadNodeReclaimTime:     200 * time.Millisecond,
		ReconnectInterval:       250 * time.Millisecond,
		ReconnectTimeout:        10 * time.Minute,
		BroadcastTimeout:        2 * time.Second,
		EventBuffer:             256,
	}
}

// ProfileConfig returns the default Config of the named profile.
func ProfileConfig(p Profile) (Config, error) {
	switch p {
	case ProfileLAN:
		return DefaultLANConfig(), nil
	case ProfileEdge:
		return DefaultEdgeConfig(), nil
	case ProfileLocal:
		return DefaultLocalConfig(), nil
	}
	return Config{}, fmt.Errorf("%w: unknown profile %q: use %q, %q or %q",
		ErrBadConfig, p, ProfileLAN, ProfileEdge, ProfileLocal)
}

// Validate checks every field's range and the relations between fields. The
// error wraps ErrBadConfig and names the field.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...))
	}

	if c.Name == "" {
		bad("Name is empty: set it to the peer's cluster name")
	} else if len(c.Name) > 128 || strings.ContainsAny(c.Name, " \t\r\n/") {
		bad("Name %q must be at most 128 bytes without spaces or slashes", c.Name)
	}
	if c.Region == "" {
		bad("Region is empty: set it to the peer's region")
	} else if len(labelPrefix+c.Region) > memberlist.LabelMaxSize || strings.ContainsAny(c.Region, " \t\r\n") {
		bad("Region %q must be at most %d bytes without spaces", c.Region, memberlist.LabelMaxSize-len(labelPrefix))
	}
	switch c.Profile {
	case ProfileLAN, ProfileEdge, ProfileLocal:
	default:
		bad("Profile %q is unknown: use %q, %q or %q", c.Profile, ProfileLAN, ProfileEdge, ProfileLocal)
	}
	if c.Transport == nil && net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.Transport != nil && (c.AdvertiseAddr == "") != (c.AdvertisePort == 0) {
		bad("AdvertiseAddr %q and AdvertisePort %d: with a Transport set both (the address others dial) or neither (the transport advertises its own)",
			c.AdvertiseAddr, c.AdvertisePort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort %d is out of range 0..65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort %d is out of range 0..65535", c.AdvertisePort)
	}
	if n := len(c.SecretKey); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("SecretKey is %d bytes: it must be 16, 24 or 32 bytes (AES-128, -192, -256)", n)
	}

	positive := []struct {
		name string
		d    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"GossipToTheDeadTime", c.GossipToTheDeadTime},
		{"PushPullInterval", c.PushPullInterval},
		{"TCPTimeout", c.TCPTimeout},
		{"BroadcastTimeout", c.BroadcastTimeout},
	}
	for _, f := range positive {
		if f.d <= 0 {
			bad("%s is %v: it must be positive", f.name, f.d)
		}
	}
	if c.ReconnectInterval < 0 {
		bad("ReconnectInterval is %v: it must not be negative (0 disables reconnecting)", c.ReconnectInterval)
	}
	if c.ReconnectInterval > 0 && c.ReconnectTimeout <= 0 {
		bad("ReconnectTimeout is %v: it must be positive when ReconnectInterval (%v) is set", c.ReconnectTimeout, c.ReconnectInterval)
	}
	if c.DeadNodeReclaimTime < 0 {
		bad("DeadNodeReclaimTime is %v: it must not be negative", c.DeadNodeReclaimTime)
	}
	if c.ProbeTimeout > 0 && c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout (%v) must be shorter than ProbeInterval (%v)", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.GossipInterval > 0 && c.GossipInterval > c.ProbeInterval {
		bad("GossipInterval (%v) should not be longer than ProbeInterval (%v): suspicions would spread slower than they expire",
			c.GossipInterval, c.ProbeInterval)
	}
	counts := []struct {
		name string
		n    int
		min  int
	}{
		{"IndirectChecks", c.IndirectChecks, 0},
		{"SuspicionMult", c.SuspicionMult, 1},
		{"SuspicionMaxTimeoutMult", c.SuspicionMaxTimeoutMult, 1},
		{"GossipNodes", c.GossipNodes, 1},
		{"RetransmitMult", c.RetransmitMult, 1},
		{"EventBuffer", c.EventBuffer, 1},
	}
	for _, f := range counts {
		if f.n < f.min {
			bad("%s is %d: it must be at least %d", f.name, f.n, f.min)
		}
	}
	return errors.Join(errs...)
}

// label is memberlist's Label for the region's pool.
func (c Config) label() string { return labelPrefix + c.Region }

// memberlistConfig translates c into memberlist's Config. The transport,
// its ports, the delegates and the logger are set by New.
func (c Config) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.Label = c.label()
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	// A region has at most tens of peers: packets stay under memberlist's
	// 1,400-byte budget and a push/pull is tens of KB, so LZW saves little
	// and costs CPU on every send (streams are compressed unconditionally).
	// Off, no legitimate compressed message comes from an up-to-date peer;
	// the inbound guard still accepts them within its caps, for peers that
	// compress during a rolling upgrade.
	mc.EnableCompression = false
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.IndirectChecks = c.IndirectChecks
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.RetransmitMult = c.RetransmitMult
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	return mc
}
