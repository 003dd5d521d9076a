package deploy

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// queue is a deduplicating, rate-limited work queue of keys with the
// semantics of client-go's typed workqueue: a key is held at most once while
// waiting; a key added while it is being processed is handed out again once
// Done is called, never to two workers at once; AddRateLimited re-adds a key
// after a per-key exponential backoff that Forget resets; Nudge adds a key
// unless it is waiting out a backoff that must not be cut short.
type queue[K comparable] struct {
	clock    clock.WithDelayedExecution
	minDelay time.Duration
	maxDelay time.Duration

	mu   sync.Mutex
	cond *sync.Cond
	// items[head:] wait, oldest first; the slice is reused once drained, so
	// that a burst of keys does not grow a new one every time.
	items      []K
	head       int
	dirty      map[K]struct{}
	processing map[K]struct{}
	failures   map[K]int
	patient    map[K]struct{} // keys whose backoff Nudge must not cut short
	shutdown   bool
}

func newQueue[K comparable](clock clock.WithDelayedExecution, minDelay, maxDelay time.Duration) *queue[K] {
	q := &queue[K]{
		clock:      clock,
		minDelay:   minDelay,
		maxDelay:   maxDelay,
		dirty:      make(map[K]struct{}),
		processing: make(map[K]struct{}),
		failures:   make(map[K]int),
		patient:    make(map[K]struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues k unless it is already waiting. It never blocks for long.
func (q *queue[K]) Add(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if _, ok := q.dirty[k]; ok {
		return
	}
	q.dirty[k] = struct{}{}
	if _, ok := q.processing[k]; ok {
		return // Done re-queues it
	}
	q.push(k)
}

// push appends k to the waiting keys and wakes a worker; q.mu is held.
func (q *queue[K]) push(k K) {
	if q.head > 0 && len(q.items) == cap(q.items) && q.head >= len(q.items)/2 {
		// Move the waiting keys to the front instead of growing.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, k)
	q.cond.Signal()
}

// Nudge adds k, unless k failed with patient set since the last Forget. It
// reports whether it added k.
func (q *queue[K]) Nudge(k K) bool {
	q.mu.Lock()
	_, wait := q.patient[k]
	q.mu.Unlock()
	if !wait {
		q.Add(k)
	}
	return !wait
}

// AddRateLimited queues k after its backoff: minDelay doubled for every
// failure since the last Forget, at most maxDelay. It returns the delay.
// With patient, Nudge leaves k alone until Forget: the retry waits for the
// backoff (or for an Add).
func (q *queue[K]) AddRateLimited(k K, patient bool) time.Duration {
	q.mu.Lock()
	if patient {
		q.patient[k] = struct{}{}
	} else {
		delete(q.patient, k)
	}
	q.failures[k]++
	d := backoff(q.minDelay, q.maxDelay, q.failures[k])
	q.mu.Unlock()
	q.clock.AfterFunc(d, func() { q.Add(k) })
	return d
}

// Forget resets k's backoff.
func (q *queue[K]) Forget(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, k)
	delete(q.patient, k)
}

// Get waits for a key and marks it being processed; the caller must call
// Done with it. It returns false once the queue is shut down.
func (q *queue[K]) Get() (K, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.shutdown {
		q.cond.Wait()
	}
	var k, zero K
	if q.shutdown {
		return k, false
	}
	k, q.items[q.head] = q.items[q.head], zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.processing[k] = struct{}{}
	delete(q.dirty, k)
	return k, true
}

// Done ends the processing of k, re-queueing it if it was added meanwhile.
func (q *queue[K]) Done(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, k)
	if _, ok := q.dirty[k]; ok && !q.shutdown {
		q.push(k)
	}
}

// Len returns how many keys wait (not counting those being processed or
// waiting out a backoff).
func (q *queue[K]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// ShutDown makes Get return false and Add do nothing.
func (q *queue[K]) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.cond.Broadcast()
}
