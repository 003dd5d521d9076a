package node

import (
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// MaxClockSkew bounds the offset the clock fault may inject.
const MaxClockSkew = time.Hour

// skewClock is the peer's own clock: the real clock moved by an offset
// that the clock fault (POST /v1/agent/faults, layer clock) injects, zero
// otherwise. Everything the peer judges by its own time reads it — the
// region leader's rules, the mesh's region verdicts and clock-skew check,
// the ages its views show — so that a skewed peer behaves as one on a
// machine whose clock is off. Times that libraries take from the real
// clock themselves (hashicorp/raft's log timestamps, which stamp the
// versions of writes) are not moved. Safe for concurrent use.
type skewClock struct {
	offset atomic.Int64 // nanoseconds
}

var _ clock.PassiveClock = (*skewClock)(nil)

// Now is the real time moved by the offset. It keeps the monotonic
// reading, so durations between two of its times are real durations.
func (c *skewClock) Now() time.Time { return time.Now().Add(c.Offset()) }

// Since is Now().Sub(t).
func (c *skewClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Offset is the injected offset (zero when none).
func (c *skewClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// SetOffset moves the clock by d from real time (0 heals it).
func (c *skewClock) SetOffset(d time.Duration) { c.offset.Store(int64(d)) }
