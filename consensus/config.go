package consensus

import (
	"fmt"
	"log/slog"
	"time"

	"k8s.io/utils/clock"
)

// Config configures one peer's membership in its region's Raft group.
// Build it from DefaultConfig and change what differs; New calls Validate.
type Config struct {
	// ID is the Raft server ID: the peer's cluster name, unique in the region.
	ID string
	// BootstrapExpect is the number of peers that form the group the first
	// time (Consul-style). 0 never bootstraps: the peer waits to be added by
	// an existing leader. 1 bootstraps alone at once (dev mode). A peer with
	// existing Raft state never bootstraps again.
	BootstrapExpect int
	// MaxVoters is the number of voters the leader keeps; further members
	// join as non-voters and are promoted when a voter goes away.
	MaxVoters int
	// DeadServerGrace is how long a member must have been Dead in the gossip
	// view before the leader removes it from the Raft configuration.
	DeadServerGrace time.Duration
	// ReconcileInterval is how often the leader reconciles the Raft
	// configuration with the gossip view even when the view did not change
	// (to notice grace periods running out and to retry failed changes).
	ReconcileInterval time.Duration

	// Raft timing (hashicorp/raft's Config has the details). A follower
	// that has heard nothing from the leader for HeartbeatTimeout (checked
	// at random intervals of one to two HeartbeatTimeouts) stands for
	// election; the leader sends heartbeats every HeartbeatTimeout/10. A
	// candidate that wins no majority tries again after ElectionTimeout
	// (randomised the same way). A leader that has not heard from a quorum
	// for LeaderLeaseTimeout steps down; Validate keeps it at most half the
	// HeartbeatTimeout, so that a leader cut off from the others steps down
	// before they can elect another. CommitTimeout is how long the leader
	// waits without new entries before it tells the followers the commit
	// index anyway (also randomised up to twice as long): a write
	// acknowledged through a follower waits for it.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotInterval is how often raft checks whether to snapshot;
	// SnapshotThreshold is how many new log entries trigger one;
	// TrailingLogs is how many entries are kept behind a snapshot so that a
	// slightly lagging follower does not need the whole snapshot.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int

	// ApplyTimeout bounds Apply, Barrier and membership changes when the
	// context carries no deadline.
	ApplyTimeout time.Duration

	// Authorize, if set, is asked on the leader about every command a
	// follower forwards, with the peer that forwarded it (its verified
	// identity with TLS): a non-nil error refuses the command
	// (ErrForbidden on the follower) and is logged with the caller. It is
	// how a peer is kept to speaking for itself and leader-only commands
	// to the leader's own loop. It is called concurrently and must not
	// block. nil accepts everything.
	Authorize func(from Peer, cmd []byte) error

	// Clock is the time source of the node's own rules (grace periods);
	// nil means the real clock. Raft keeps its own time.
	Clock clock.PassiveClock

	// Logger receives the node's structured logs and raft's own (raft's
	// "info" is logged at slog Info, its "debug" and "trace" at Debug).
	// nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the profile for the peers of a region on one
// low-latency network (the LAN and local gossip profiles), and the region
// defaults: at most 5 voters, dead members removed after 5 minutes. ID must
// still be set.
//
// Raft timing: 400 ms heartbeat and election timeout, 200 ms leader lease.
// Most of a leader failover is the heartbeat timeout: a follower notices
// the silence after one to three timeouts (its check runs at random
// intervals of one to two), and in a group of three both survivors must
// have noticed before either wins a vote (a follower that still hears of a
// leader refuses to vote). Measured with shoal-bench's leader-failover
// scenario (3 peers on one 2-CPU machine, SIGKILL of the leader to the
// next acknowledged write; runs of 20 trials, p99 being the largest of
// 20; the lease half the heartbeat timeout):
//
//	heartbeat  median          p99
//	1 s        1.70 s          1.98 s          (hashicorp/raft's default; 1 run)
//	500 ms     0.78 s, 0.82 s  1.29 s, 1.54 s
//	400 ms     0.68 s, 0.68 s  0.76 s, 1.06 s
//	300 ms     0.50 s, 0.54 s  0.81 s, 0.87 s
//
// 400 ms keeps p99 within the 1.5 s the region aims for with room to
// spare, without going lower than needed: the shorter the timeouts, the
// likelier a spurious election on a loaded machine (the race-detector
// suites of consensus and node run with these timings on 2 CPUs). The lease
// is half the heartbeat timeout, as Consul keeps it: heartbeats go out
// every 40-80 ms, so a leader steps down only after several in a row went
// unanswered, and always before the followers could elect another.
func DefaultConfig() Config {
	return Config{
		BootstrapExpect:    0,
		MaxVoters:          5,
		DeadServerGrace:    5 * time.Minute,
		ReconcileInterval:  2 * time.Second,
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   120 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		ApplyTimeout:       10 * time.Second,
	}
}

// DefaultEdgeConfig returns DefaultConfig with the Raft timing of peers
// whose links are slow, lossy or briefly down (the edge gossip profile):
// hashicorp/raft's defaults, 1 s heartbeat and election timeout and a
// 500 ms leader lease (about 2 s to a new leader on a LAN, 3 s at worst),
// which is what every peer ran before the LAN profile was tightened.
// Heartbeats every 100-200 ms ride out a lost packet or two where 40-80 ms
// would not. It was not measured over real edge links.
func DefaultEdgeConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 1000 * time.Millisecond
	c.ElectionTimeout = 1000 * time.Millisecond
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	return c
}

// Validate checks ranges and relations between fields; errors wrap
// ErrBadConfig and name the field.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.ID == "":
		return bad("ID is empty: set it to the peer's cluster name")
	case c.BootstrapExpect < 0:
		return bad("BootstrapExpect (%d) is negative", c.BootstrapExpect)
	case c.MaxVoters < 1:
		return bad("MaxVoters (%d) must be at least 1", c.MaxVoters)
	case c.BootstrapExpect > c.MaxVoters:
		return bad("BootstrapExpect (%d) is larger than MaxVoters (%d)", c.BootstrapExpect, c.MaxVoters)
	case c.DeadServerGrace <= 0:
		return bad("DeadServerGrace (%v) must be positive", c.DeadServerGrace)
	case c.ReconcileInterval < 10*time.Millisecond:
		return bad("ReconcileInterval (%v) must be at least 10ms", c.ReconcileInterval)
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return bad("HeartbeatTimeout (%v) must be at least 5ms", c.HeartbeatTimeout)
	case c.ElectionTimeout < 5*time.Millisecond:
		return bad("ElectionTimeout (%v) must be at least 5ms", c.ElectionTimeout)
	case c.LeaderLeaseTimeout < 5*time.Millisecond:
		return bad("LeaderLeaseTimeout (%v) must be at least 5ms", c.LeaderLeaseTimeout)
	case 2*c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return bad("LeaderLeaseTimeout (%v) is more than half of HeartbeatTimeout (%v): a leader cut off from the others must step down well before they can elect another",
			c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return bad("ElectionTimeout (%v) is smaller than HeartbeatTimeout (%v)", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.CommitTimeout < time.Millisecond:
		return bad("CommitTimeout (%v) must be at least 1ms", c.CommitTimeout)
	case c.SnapshotInterval < 5*time.Millisecond:
		return bad("SnapshotInterval (%v) must be at least 5ms", c.SnapshotInterval)
	case c.SnapshotThreshold < 1:
		return bad("SnapshotThreshold must be at least 1")
	case c.TrailingLogs < 1:
		return bad("TrailingLogs must be at least 1")
	case c.SnapshotRetain < 1:
		return bad("SnapshotRetain (%d) must be at least 1", c.SnapshotRetain)
	case c.ApplyTimeout <= 0:
		return bad("ApplyTimeout (%v) must be positive", c.ApplyTimeout)
	}
	return nil
}
