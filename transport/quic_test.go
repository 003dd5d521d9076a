package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// rawConn dials addr with quic-go directly, from a loopback socket, as a
// misbehaving or foreign client would.
func rawConn(t *testing.T, addr string, tlsConf *tls.Config) *quic.Conn {
	t.Helper()
	c, err := rawDial(t, addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawDial(t *testing.T, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.Dial(within(t, 10*time.Second), ua, tlsConf, &quic.Config{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c, nil
}

// rawRefused checks that a client dialling by hand with tlsConf is
// refused: by the handshake, or when it sends its first request (in TLS
// 1.3 the client may finish before the server has checked it).
func rawRefused(t *testing.T, addr string, tlsConf *tls.Config) {
	t.Helper()
	c, err := rawDial(t, addr, tlsConf)
	if err != nil {
		return
	}
	if ans, err := rawExchange(t, c, frameBytes(t, ping("x"))); err == nil {
		t.Errorf("answered %v", ans)
	}
}

// rawExchange sends raw bytes on a new stream and reads one answer frame.
func rawExchange(t *testing.T, c *quic.Conn, request []byte) (*shoalpb.WanMessage, error) {
	t.Helper()
	ctx := within(t, 10*time.Second)
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer context.AfterFunc(ctx, func() { str.CancelRead(0); str.CancelWrite(0) })()
	if _, err := str.Write(request); err != nil {
		return nil, err
	}
	if err := str.Close(); err != nil {
		return nil, err
	}
	return ReadFrame(bufio.NewReader(str), MaxFrameSize)
}

func TestQUICRefusesCertificatesOutsideTheMesh(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	other, otherPEM := newTestCA(t, "prod")
	server := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, usID)))
	rec := &recorder{}
	server.Serve(rec.handle)

	t.Run("client of another CA", func(t *testing.T) {
		rogue := material(t, other, otherPEM, euID)
		// A link refuses the server first: it is not of its CA.
		link := newTestQUIC(t, testQUICConfig(t, rogue))
		_, err := callPing(t, link, server.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("link: got %v, want ErrIdentity and ErrUnreachable", err)
		}
		// A client that does not check the server is refused by it.
		conf := rogue.WANTLSConfig()
		conf.VerifyConnection = nil
		rawRefused(t, server.Addr(), conf)
	})
	t.Run("client without a certificate", func(t *testing.T) {
		cfg := testQUICConfig(t, nil)
		cfg.Insecure = true
		link := newTestQUIC(t, cfg)
		_, err := callPing(t, link, server.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("got %v, want ErrIdentity (refused by the server) and ErrUnreachable", err)
		}
	})
	t.Run("server of another CA", func(t *testing.T) {
		rogue := newTestQUIC(t, testQUICConfig(t, material(t, other, otherPEM, usID)))
		rogue.Serve(rec.handle)
		client := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, euID)))
		_, err := callPing(t, client, rogue.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("got %v, want ErrIdentity and ErrUnreachable", err)
		}
	})
	t.Run("CLI client certificate", func(t *testing.T) {
		alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
		if _, err := NewQUICLink(testQUICConfig(t, alice)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("NewQUICLink with a client certificate: %v, want ErrBadConfig", err)
		}
		// A client that dials by hand with it is refused by the server.
		conf := alice.WANTLSConfig()
		conf.Certificates = []tls.Certificate{alice.Cert}
		rawRefused(t, server.Addr(), conf)
	})
	if rec.count() != 0 {
		t.Errorf("%d requests from outside the mesh handled", rec.count())
	}
}

func TestQUICBadFramesAreAnsweredAndTheConnectionGoesOn(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	server := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, usID)))
	rec := &recorder{}
	server.Serve(rec.handle)
	c := rawConn(t, server.Addr(), material(t, ca, caPEM, euID).WANTLSConfig())

	valid := frameBytes(t, ping("hello"))
	tests := []struct {
		name string
		in   []byte
	}{
		{"length over MaxFrame", binary.AppendUvarint(nil, MaxFrameSize+1)},
		{"huge length", binary.AppendUvarint(nil, 1<<62)},
		{"not a WanMessage", []byte{3, 0xff, 0xff, 0xff}},
		{"truncated", valid[:len(valid)-1]},
		{"empty", nil},
		{"two frames", append(append([]byte{}, valid...), valid...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := rawExchange(t, c, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if code := ans.GetError().GetCode(); code != shoalpb.LinkCode_LINK_CODE_BAD_REQUEST {
				t.Errorf("answer %v, want BAD_REQUEST", ans)
			}
		})
	}
	ans, err := rawExchange(t, c, valid)
	if err != nil || string(ans.GetPong().GetPayload()) != "hello" {
		t.Fatalf("a valid request on the same connection: %v, %v", ans, err)
	}
	if rec.count() != 1 {
		t.Errorf("%d requests handled, want 1", rec.count())
	}
}

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

func TestQUICInsecure(t *testing.T) {
	cfg := func() QUICConfig {
		c := testQUICConfig(t, nil)
		c.Insecure = true
		return c
	}
	a := newTestQUIC(t, cfg())
	b := newTestQUIC(t, cfg())
	rec := &recorder{}
	b.Serve(rec.handle)
	peer, err := callPing(t, a, b.Addr(), CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if peer.Identity != (Identity{}) || rec.last().from.Identity != (Identity{}) {
		t.Errorf("identities %+v and %+v on an insecure link", peer, rec.last().from)
	}
}

func TestQUICConfigValidate(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	m := material(t, ca, caPEM, euID)
	alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
	good := DefaultQUICConfig()
	good.BindAddr, good.TLS = "127.0.0.1:0", m
	tests := []struct {
		name  string
		edit  func(c *QUICConfig)
		field string // named in the error; "" for a valid config
	}{
		{"default", func(c *QUICConfig) {}, ""},
		{"edge", func(c *QUICConfig) { e := EdgeQUICConfig(); e.BindAddr, e.TLS = c.BindAddr, c.TLS; *c = e }, ""},
		{"zero fields take defaults", func(c *QUICConfig) { *c = QUICConfig{BindAddr: c.BindAddr, TLS: c.TLS} }, ""},
		{"insecure without TLS", func(c *QUICConfig) { c.TLS, c.Insecure = nil, true }, ""},
		{"no bind address", func(c *QUICConfig) { c.BindAddr = "" }, "BindAddr"},
		{"no TLS", func(c *QUICConfig) { c.TLS = nil }, "TLS"},
		{"client certificate", func(c *QUICConfig) { c.TLS = alice }, "TLS"},
		{"keep-alive too long", func(c *QUICConfig) { c.KeepAlive, c.IdleTimeout = 5*time.Second, 10*time.Second }, "KeepAlive"},
		{"negative timeout", func(c *QUICConfig) { c.HandshakeTimeout = -time.Second }, "HandshakeTimeout"},
		{"backoff inverted", func(c *QUICConfig) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second }, "BackoffMin"},
		{"negative streams", func(c *QUICConfig) { c.MaxStreams = -1 }, "MaxStreams"},
		{"frame too large", func(c *QUICConfig) { c.MaxFrame = MaxFrameSize + 1 }, "MaxFrame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want ErrBadConfig naming %s", err, tt.field)
			}
		})
	}
	if e := EdgeQUICConfig(); e.KeepAlive != 5*time.Second || e.IdleTimeout != time.Minute || e.BackoffMax != 30*time.Second {
		t.Errorf("EdgeQUICConfig %+v", e)
	}
}

// quic-go prints its own warning about small UDP buffers with the standard
// logger; the link logs at most one line of its own instead.
func TestQUICBufferWarningOncePerProcess(t *testing.T) {
	var std bytes.Buffer
	log.SetOutput(&std)
	defer log.SetOutput(os.Stderr)
	var logs lockedBuffer
	for range 3 {
		cfg := testQUICConfig(t, nil)
		cfg.Insecure = true
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		newTestQUIC(t, cfg)
	}
	if v := os.Getenv(quicBufferWarningEnv); v != "true" {
		t.Errorf("%s=%q", quicBufferWarningEnv, v)
	}
	if n := strings.Count(logs.String(), "UDP socket buffers"); n > 1 {
		t.Errorf("%d buffer warnings:\n%s", n, logs.String())
	}
	if strings.Contains(std.String(), "buffer") {
		t.Errorf("quic-go printed: %s", std.String())
	}
	if runtime.GOOS == "linux" {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		if recv, send, ok := raiseBuffers(udp); !ok || recv <= 0 || send <= 0 {
			t.Errorf("buffers %d/%d, ok %v", recv, send, ok)
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

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
