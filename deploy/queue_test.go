package deploy

import (
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
