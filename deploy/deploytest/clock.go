package deploytest

import (
	"sync"
	"time"

	"github.com/shoalmesh/shoal/deploy"
)

// FakeClock is a deploy.Clock whose time moves only when Advance is called.
// It is safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*fakeTimer]struct{}
}

var _ deploy.Clock = (*FakeClock)(nil)

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, timers: make(map[*fakeTimer]struct{})}
}

type fakeTimer struct {
	c    *FakeClock
	when time.Time
	seq  uint64 // orders timers with the same deadline by creation
	f    func()
}

// Now implements deploy.Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements deploy.Clock. f runs in the goroutine that calls
// Advance past its deadline, with no lock of the clock held.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) deploy.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers[t] = struct{}{}
	return t
}

// Stop implements deploy.Timer.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.timers[t]
	delete(t.c.timers, t)
	return ok
}

// Advance moves the clock forward by d, running every timer that falls due
// in deadline order, each with Now reading its deadline; timers those calls
// start are run too if they fall due within d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for t := range c.timers {
			if t.when.After(target) {
				continue
			}
			if next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		delete(c.timers, next)
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending returns how many timers are waiting to fire.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next returns how long until the earliest pending timer falls due, and
// false if none is pending.
func (c *FakeClock) Next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *fakeTimer
	for t := range c.timers {
		if next == nil || t.when.Before(next.when) {
			next = t
		}
	}
	if next == nil {
		return 0, false
	}
	return next.when.Sub(c.now), true
}
