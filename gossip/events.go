package gossip

import "sync"

// eventQueue delivers events to a consumer without ever blocking the
// producer (memberlist's callbacks). Events wait in a FIFO of member names;
// a new event for a member that already has one waiting replaces it
// (coalescing), so the queue holds at most one event per member and the
// consumer always ends up with each member's latest change. A dispatcher
// goroutine moves events from the queue to the buffered out channel.
type eventQueue struct {
	out  chan Event
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	order     []string
	pending   map[string]Event
	closed    bool
	coalesced uint64
}

func newEventQueue(buffer int) *eventQueue {
	q := &eventQueue{
		out:     make(chan Event, buffer),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[string]Event),
	}
	go q.run()
	return q
}

// push queues ev. It never blocks; after close it does nothing.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	name := ev.Member.Name
	if prev, ok := q.pending[name]; ok {
		q.coalesced++
		// A member the consumer has not yet seen join still has to
		// appear as a join, with its latest metadata.
		if prev.Type == EventJoin && ev.Type == EventUpdate {
			ev.Type = EventJoin
		}
	} else {
		q.order = append(q.order, name)
	}
	q.pending[name] = ev
	q.mu.Unlock()

	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest waiting event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return Event{}, false
	}
	name := q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	ev := q.pending[name]
	delete(q.pending, name)
	return ev, true
}

func (q *eventQueue) run() {
	defer close(q.done)
	defer close(q.out)
	for {
		select {
		case <-q.stop:
			return
		case <-q.wake:
		}
		for {
			ev, ok := q.pop()
			if !ok {
				break
			}
			select {
			case q.out <- ev:
			case <-q.stop:
				return
			}
		}
	}
}

// coalescedCount returns how many events were merged into a later one.
func (q *eventQueue) coalescedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.coalesced
}

// close stops the dispatcher, drops waiting events and closes out. It is
// safe to call more than once.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return
	}
	q.closed = true
	q.order, q.pending = nil, nil
	q.mu.Unlock()
	close(q.stop)
	<-q.done
}
