package deploy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

// recordingClock records the delays of AfterFunc calls; the fake clock
// underneath is never stepped, so no call happens.
type recordingClock struct {
	*testingclock.FakeClock
	delays []time.Duration
}

func newRecordingClock() *recordingClock {
	return &recordingClock{FakeClock: testingclock.NewFakeClock(time.Time{})}
}

func (c *recordingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.delays = append(c.delays, d)
	return c.FakeClock.AfterFunc(d, f)
}

func TestQueueDeduplicates(t *testing.T) {
	q := newQueue[string](newRecordingClock(), time.Second, time.Minute)
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", q.Len())
	}
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("Get() = %q, want a", k)
	}
	q.Add("a") // while processing: held back until Done
	if q.Len() != 1 {
		t.Fatalf("Len() = %d while a is processed, want 1", q.Len())
	}
	if k, _ := q.Get(); k != "b" {
		t.Fatalf("Get() = %q, want b", k)
	}
	q.Done("a")
	if k, _ := q.Get(); k != "a" {
		t.Fatalf("Get() = %q, want a again after Done", k)
	}
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get() after ShutDown returned a key")
	}
}

func TestQueueBackoff(t *testing.T) {
	clock := newRecordingClock()
	q := newQueue[string](clock, time.Second, 4*time.Second)
	for range 4 {
		q.AddRateLimited("a", true)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, d := range want {
		if clock.delays[i] != d {
			t.Fatalf("delays = %v, want %v", clock.delays, want)
		}
	}
	if q.Nudge("a") {
		t.Fatal("Nudge cut a patient backoff short")
	}
	q.Forget("a")
	if !q.Nudge("a") {
		t.Fatal("Nudge after Forget did not add")
	}
	q.AddRateLimited("b", false)
	if clock.delays[len(clock.delays)-1] != time.Second {
		t.Fatalf("first delay of b = %s, want 1s", clock.delays[len(clock.delays)-1])
	}
	if !q.Nudge("b") {
		t.Fatal("Nudge did not cut an impatient backoff short")
	}
}

// TestQueueNeverHandsOutAKeyTwice has workers take keys while other
// goroutines keep adding the same few keys: no key may be held by two
// workers at once (client-go workqueue's guarantee), and no add may be
// lost: once the queue drains, each key was last taken after its last add.
func TestQueueNeverHandsOutAKeyTwice(t *testing.T) {
	q := newQueue[int](newRecordingClock(), time.Second, time.Minute)
	const keys, workers, adders, adds = 4, 8, 4, 5000
	var (
		mu        sync.Mutex
		holding   [keys]int
		added     [keys]int // adds so far
		seen      [keys]int // adds so far when a worker last took the key
		violation atomic.Int64
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				mu.Lock()
				holding[k]++
				if holding[k] > 1 {
					violation.Add(1)
				}
				seen[k] = added[k]
				mu.Unlock()
				runtime.Gosched() // let another worker try to take k
				mu.Lock()
				holding[k]--
				mu.Unlock()
				q.Done(k)
			}
		})
	}
	var adding sync.WaitGroup
	for a := range adders {
		adding.Go(func() {
			for i := range adds {
				k := (i + a) % keys
				mu.Lock()
				added[k]++
				mu.Unlock()
				q.Add(k)
			}
		})
	}
	adding.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !queueIdle(q) {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not drain")
		}
		runtime.Gosched()
	}
	q.ShutDown()
	wg.Wait()
	if n := violation.Load(); n > 0 {
		t.Fatalf("a key was held by two workers at once, %d times", n)
	}
	if seen != added {
		t.Fatalf("adds lost: last taken after %v adds, added %v", seen, added)
	}
}

// queueIdle reports whether no key waits or is being processed.
func queueIdle[K comparable](q *queue[K]) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0 && len(q.processing) == 0
}
