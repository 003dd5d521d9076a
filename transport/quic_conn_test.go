package transport

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

func TestQUICKeepAliveOutlivesIdleTimeout(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	short := func(id Identity) QUICConfig {
		cfg := testQUICConfig(t, material(t, ca, caPEM, id))
		cfg.IdleTimeout = time.Second
		cfg.KeepAlive = 200 * time.Millisecond
		return cfg
	}
	client := newTestQUIC(t, short(euID))
	server := newTestQUIC(t, short(usID))
	server.Serve((&recorder{}).handle)
	if _, err := callPing(t, client, server.Addr(), CallOptions{}); err != nil {
		t.Fatal(err)
	}
	c := clientConn(t, client, server.Addr())
	// Idle for three idle timeouts: only the keep-alives hold it open.
	select {
	case <-c.Context().Done():
		t.Fatalf("the idle connection closed: %v", context.Cause(c.Context()))
	case <-time.After(3 * time.Second):
	}
	if _, err := callPing(t, client, server.Addr(), CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := client.dials.Load(); n != 1 {
		t.Errorf("%d dials, want the one connection kept alive", n)
	}
}

// clientConn is the connection client holds to addr.
func clientConn(t *testing.T, client *QUICLink, addr string) *quic.Conn {
	t.Helper()
	client.mu.Lock()
	defer client.mu.Unlock()
	if d := client.dests[addr]; d != nil && d.conn != nil {
		return d.conn
	}
	t.Fatalf("no connection to %s", addr)
	return nil
}

// dropConn closes client's connection to addr, as a network failure
// would, and waits until the link has noticed.
func dropConn(t *testing.T, client *QUICLink, addr string) {
	t.Helper()
	clientConn(t, client, addr).CloseWithError(0, "the test drops the connection")
	eventually(t, "the link forgets the dropped connection", func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return client.dests[addr].conn == nil
	})
}

func TestQUICReconnectsAfterBackoff(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	clk := testingclock.NewFakePassiveClock(time.Now())
	cfg := testQUICConfig(t, material(t, ca, caPEM, euID))
	cfg.Clock = clk
	cfg.BackoffMin = time.Second
	cfg.BackoffMax = 8 * time.Second
	cfg.HandshakeTimeout = time.Second
	cfg.ZeroRTT = true
	client := newTestQUIC(t, cfg)

	serverCfg := testQUICConfig(t, material(t, ca, caPEM, usID))
	server := newTestQUIC(t, serverCfg)
	server.Serve((&recorder{}).handle)
	serverCfg.BindAddr = server.Addr()
	proxy := newUDPProxy(t, server.Addr())
	addr := proxy.Addr()
	if _, err := callPing(t, client, addr, CallOptions{}); err != nil {
		t.Fatal(err)
	}
	// closeServer closes the server and waits until the client knows.
	closeServer := func() {
		t.Helper()
		if err := server.Close(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the client notices that the server closed", func() bool {
			_, err := callPing(t, client, addr, CallOptions{})
			return errors.Is(err, ErrUnreachable)
		})
	}
	closeServer()

	// The clock stands still: the address stays in its backoff, and calls
	// fail without dialling.
	dials := client.dials.Load()
	for range 3 {
		if _, err := callPing(t, client, addr, CallOptions{}); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("in backoff: %v, want ErrUnreachable", err)
		}
	}
	if got := client.dials.Load(); got != dials {
		t.Fatalf("%d dials during the backoff", got-dials)
	}

	// The server comes back on the same port; past the backoff, calls
	// succeed again. The idempotent call goes out as 0-RTT data of the old
	// server's session, which the new server cannot resume: it drops the
	// data, and the call sends the request again after the handshake.
	// (The proxy holds the new server's answers until the request has left
	// in 0-RTT packets, so that the client's stream does not open while
	// quic-go applies the server's transport parameters: quic-go issue
	// 4303.)
	server = newTestQUIC(t, serverCfg)
	rec := &recorder{}
	server.Serve(rec.handle)
	clk.SetTime(clk.Now().Add(time.Minute))
	big := ping(strings.Repeat("x", 1000))
	proxy.hold(800)
	if _, _, err := client.Call(within(t, 10*time.Second), addr, big, CallOptions{Idempotent: true}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if st := clientConn(t, client, addr).ConnectionState(); st.TLS.DidResume || st.Used0RTT {
		t.Errorf("resumed a session of the previous server: %+v", st)
	}
	if got := rec.count(); got != 1 || rec.last().early {
		t.Errorf("the new server handled %d requests (last %+v), want 1 after the handshake", got, rec.last())
	}
	client.mu.Lock()
	failures := client.dests[addr].failures
	client.mu.Unlock()
	if failures != 0 {
		t.Errorf("%d failures counted after an answer", failures)
	}

	// Past the backoff, a dial to the dead address fails, and the next
	// backoff is longer.
	closeServer()
	clk.SetTime(clk.Now().Add(time.Minute))
	if _, err := callPing(t, client, addr, CallOptions{}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dialling a closed port: %v, want ErrUnreachable", err)
	}
	client.mu.Lock()
	d := client.dests[addr]
	failures, wait := d.failures, d.retryAt.Sub(clk.Now())
	client.mu.Unlock()
	if failures != 2 || wait < cfg.BackoffMin || wait > 2*cfg.BackoffMin {
		t.Errorf("after %d failures the backoff is %v, want 2 failures and [1s, 2s]", failures, wait)
	}
}

func TestQUICBackoffFullJitter(t *testing.T) {
	cfg := DefaultQUICConfig()
	cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, 10*time.Second
	for failures := 1; failures <= 12; failures++ {
		ceil := min(cfg.BackoffMin<<(failures-1), cfg.BackoffMax)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := cfg.backoff(failures)
			if d < cfg.BackoffMin || d > ceil {
				t.Fatalf("after %d failures: %v outside [%v, %v]", failures, d, cfg.BackoffMin, ceil)
			}
			seen[d] = true
		}
		if failures > 1 && len(seen) < 2 {
			t.Errorf("after %d failures every wait is the same", failures)
		}
	}
}

// Closing every link ends every goroutine they started, handlers
// included.
func TestQUICCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ca, caPEM := newTestCA(t, "prod")
		a, err := NewQUICLink(testQUICConfig(t, material(t, ca, caPEM, euID)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewQUICLink(testQUICConfig(t, material(t, ca, caPEM, usID)))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		a.Serve(rec.handle)
		started := make(chan struct{}, 1)
		b.Serve(func(ctx context.Context, _ Peer, req *shoalpb.WanMessage, _ bool) (*shoalpb.WanMessage, error) {
			if string(req.GetPing().GetPayload()) == "block" {
				started <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return rec.handle(ctx, Peer{}, req, false)
		})
		if _, err := callPing(t, a, b.Addr(), CallOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := callPing(t, b, a.Addr(), CallOptions{}); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Call(within(t, 30*time.Second), b.Addr(), ping("block"), CallOptions{})
		}()
		<-started
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		<-done
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after closing:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
