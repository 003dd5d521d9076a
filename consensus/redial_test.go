package consensus

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dialingNetwork is a TCPNetwork to dial from, closed with the test, and
// a loopback address nothing listens on.
func dialingNetwork(t *testing.T) (*TCPNetwork, string) {
	t.Helper()
	n, err := NewTCPNetwork(TCPConfig{BindAddr: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, freeAddr(t)
}

// A follower whose process is down refuses at once; raft would count
// every refusal as a failure and back off for up to 10 s, long after the
// follower is back. The raft dial waits instead and connects the moment
// the follower listens again.
func TestRaftDialWaitsForANodeThatRefuses(t *testing.T) {
	n, addr := dialingNetwork(t)
	accepted := make(chan byte, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the follower comes back later
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listening again on %s: %v", addr, err)
			close(accepted)
			return
		}
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		_, _ = c.Read(b)
		accepted <- b[0]
	}()
	conn, err := raftLayer{n}.Dial(raft.ServerAddress(addr), 20*time.Second)
	if err != nil {
		t.Fatalf("Dial of a node that came back: %v", err)
	}
	defer conn.Close()
	if b, ok := <-accepted; !ok || b != muxRaft {
		t.Fatalf("the node read %v (ok %v), want the raft mux byte", b, ok)
	}
}

// The wait ends: at the timeout, with the refusal, and at once when the
// node shuts down (raft's shutdown waits for the goroutines that dial).
func TestRaftDialGivesUpAtTheTimeoutAndOnShutdown(t *testing.T) {
	n, addr := dialingNetwork(t)
	began := time.Now()
	_, err := raftLayer{n}.Dial(raft.ServerAddress(addr), 400*time.Millisecond)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial of a node that never listens: %v, want connection refused", err)
	}
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Fatalf("Dial gave up after %v, before its timeout", took)
	}

	done := make(chan error, 1)
	go func() {
		_, err := raftLayer{n}.Dial(raft.ServerAddress(addr), time.Hour)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it wait
	n.stopDialing()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Dial succeeded against a node that never listens")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Dial still waits after stopDialing")
	}
}
