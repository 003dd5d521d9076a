package transport

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

type countingSessions struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func (c *countingSessions) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// A second connection to the same server resumes the TLS session. An
// idempotent request goes out as 0-RTT data, which the server reads
// before its handshake is done and hands over as early, with the client's
// verified identity; other requests wait for the handshake.
func TestQUICResumesSessionsWith0RTT(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	server := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, usID)))
	seen := make(chan recorded, 10)
	server.Serve(func(ctx context.Context, from Peer, req *shoalpb.WanMessage, early bool) (*shoalpb.WanMessage, error) {
		seen <- recorded{from, early}
		return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Pong{Pong: &shoalpb.Pong{Payload: req.GetPing().GetPayload()}}}, nil
	})
	proxy := newUDPProxy(t, server.Addr())

	clk := testingclock.NewFakePassiveClock(time.Now())
	cfg := testQUICConfig(t, material(t, ca, caPEM, euID))
	sessions := &countingSessions{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	cfg.SessionCache, cfg.Clock, cfg.ZeroRTT = sessions, clk, true
	client := newTestQUIC(t, cfg)
	addr := proxy.Addr()

	if _, err := callPing(t, client, addr, CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got.early || got.from.Identity != euID {
		t.Errorf("first connection: handler saw %+v", got)
	}
	if clientConn(t, client, addr).ConnectionState().TLS.DidResume {
		t.Error("the first connection resumed a session")
	}
	eventually(t, "the client stores the session ticket", func() bool { return sessions.puts.Load() > 0 })

	// An idempotent call on a new connection: 0-RTT. The proxy holds back
	// the server's answers until the server has read the request, so the
	// client cannot have completed the handshake before sending it. (That
	// also keeps the client's stream from opening while quic-go applies
	// the server's transport parameters: quic-go issue 4303.)
	dropConn(t, client, addr)
	clk.SetTime(clk.Now().Add(time.Minute))
	proxy.hold(0)
	errc := make(chan error, 1)
	go func() {
		_, err := callPing(t, client, addr, CallOptions{Idempotent: true, Region: "us"})
		errc <- err
	}()
	select {
	case got := <-seen:
		if !got.early || got.from.Identity != euID {
			t.Errorf("0-RTT request: handler saw %+v, want early from %v", got, euID)
		}
	case <-time.After(10 * time.Second):
		t.Error("the server did not read the request before the handshake completed")
	}
	proxy.release()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	state := clientConn(t, client, addr).ConnectionState()
	if !state.TLS.DidResume || !state.Used0RTT {
		t.Errorf("second connection: resumed %v, 0-RTT %v; want both", state.TLS.DidResume, state.Used0RTT)
	}

	// A request that is not idempotent waits for the handshake, even on a
	// resumed session.
	dropConn(t, client, addr)
	clk.SetTime(clk.Now().Add(time.Minute))
	if _, err := callPing(t, client, addr, CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got.early || got.from.Identity != euID {
		t.Errorf("resumed, not idempotent: handler saw %+v", got)
	}
	if !clientConn(t, client, addr).ConnectionState().TLS.DidResume {
		t.Error("the third connection did not resume")
	}
	if n := client.dials.Load(); n != 3 {
		t.Errorf("%d dials, want 3", n)
	}
}
