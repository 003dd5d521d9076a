package node

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// The leader loop is bound to leadership: it runs while the peer leads,
// stops on loss, and a lost-and-regained leadership (one more true while
// it runs) stops the old loop and starts a new one, which begins again
// with its Barrier.
func TestLeaderLoopIsBoundToLeadership(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	leaderCh := make(chan bool)
	var mu sync.Mutex
	starts, running := 0, 0
	var current context.Context
	run := func(lctx context.Context) error {
		mu.Lock()
		starts++
		running++
		current = lctx
		mu.Unlock()
		<-lctx.Done()
		mu.Lock()
		running--
		mu.Unlock()
		return lctx.Err()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		bindToLeadership(ctx, leaderCh, run, slog.New(slog.DiscardHandler))
	}()
	state := func() (int, int, context.Context) {
		mu.Lock()
		defer mu.Unlock()
		return starts, running, current
	}
	waitState := func(what string, wantStarts, wantRunning int) context.Context {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, r, c := state()
			if s == wantStarts && r == wantRunning {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d starts, %d running; want %d and %d", what, s, r, wantStarts, wantRunning)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	leaderCh <- true
	first := waitState("leadership gained", 1, 1)
	leaderCh <- true // lost and regained, coalesced into one more true
	second := waitState("lost and regained", 2, 1)
	if first.Err() == nil || second.Err() != nil || first == second {
		t.Fatal("a lost-and-regained leadership did not replace the old loop with a new one")
	}
	leaderCh <- false
	waitState("leadership lost", 2, 0)
	if second.Err() == nil {
		t.Fatal("the loop still runs after leadership was lost")
	}
	leaderCh <- false // a loss while not leading changes nothing
	leaderCh <- true
	waitState("leadership gained again", 3, 1)
	cancel()
	<-done
	if _, r, _ := state(); r != 0 {
		t.Fatalf("%d loops still run after shutdown", r)
	}
}
