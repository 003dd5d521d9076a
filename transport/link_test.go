package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// The behaviour every Link shares is tested once, against each
// implementation in turn.

// linkMaker adds links that can reach each other, all of one mesh.
type linkMaker func(t *testing.T, id Identity) Link

type linkImpl struct {
	name   string
	newNet func(t *testing.T) linkMaker
}

func linkImpls() []linkImpl {
	return []linkImpl{
		{"inmem", func(t *testing.T) linkMaker {
			n := NewInmemNetwork()
			var seq atomic.Int64
			return func(t *testing.T, id Identity) Link {
				l := n.Add(fmt.Sprintf("inmem-%d", seq.Add(1)), id)
				t.Cleanup(func() { l.Close() })
				return l
			}
		}},
		{"quic", func(t *testing.T) linkMaker {
			ca, caPEM := newTestCA(t, "prod")
			return func(t *testing.T, id Identity) Link {
				return newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, id)))
			}
		}},
	}
}

func forEachImpl(t *testing.T, f func(t *testing.T, add linkMaker)) {
	for _, impl := range linkImpls() {
		t.Run(impl.name, func(t *testing.T) { f(t, impl.newNet(t)) })
	}
}

// testQUICConfig is a link on a free loopback port with short timeouts.
func testQUICConfig(t *testing.T, m *Material) QUICConfig {
	cfg := DefaultQUICConfig()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.TLS = m
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.BackoffMin = time.Millisecond
	cfg.BackoffMax = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

func newTestQUIC(t *testing.T, cfg QUICConfig) *QUICLink {
	t.Helper()
	l, err := NewQUICLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

var (
	euID = PeerIdentity("prod", "eu", "eu-1")
	usID = PeerIdentity("prod", "us", "us-1")
)

func ping(payload string) *shoalpb.WanMessage {
	return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Ping{Ping: &shoalpb.Ping{Payload: []byte(payload)}}}
}

// recorder is a handler that answers a Ping with a Pong of the same
// payload and records who called.
type recorder struct {
	mu    sync.Mutex
	calls []recorded
}

type recorded struct {
	from  Peer
	early bool
}

func (r *recorder) handle(_ context.Context, from Peer, req *shoalpb.WanMessage, early bool) (*shoalpb.WanMessage, error) {
	r.mu.Lock()
	r.calls = append(r.calls, recorded{from, early})
	r.mu.Unlock()
	p := req.GetPing()
	if p == nil {
		return nil, Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "want a ping")
	}
	ans := &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Pong{Pong: &shoalpb.Pong{Payload: p.Payload}}}
	// The caller's copy must not change with the handler's.
	p.Payload = []byte("scribbled")
	return ans, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) last() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1]
}

func serving(t *testing.T, add linkMaker, id Identity) (Link, *recorder) {
	l := add(t, id)
	r := &recorder{}
	l.Serve(r.handle)
	return l, r
}

func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// callPing calls addr with a ping and checks the pong.
func callPing(t *testing.T, l Link, addr string, opts CallOptions) (Peer, error) {
	t.Helper()
	ans, peer, err := l.Call(within(t, 10*time.Second), addr, ping("hello"), opts)
	if err != nil {
		return peer, err
	}
	if got := string(ans.GetPong().GetPayload()); got != "hello" {
		t.Fatalf("answer %v, want pong hello", ans)
	}
	return peer, nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLinkCallAnswersWithIdentities(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us, rec := serving(t, add, usID)
		req := ping("hello")
		ans, peer, err := eu.Call(within(t, 10*time.Second), us.Addr(), req, CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(ans.GetPong().GetPayload()); got != "hello" {
			t.Errorf("answer %v", ans)
		}
		if string(req.GetPing().GetPayload()) != "hello" {
			t.Errorf("the handler changed the caller's request: %v", req)
		}
		if peer != (Peer{Identity: usID, Addr: us.Addr()}) {
			t.Errorf("answering peer %+v", peer)
		}
		got := rec.last()
		if got.from != (Peer{Identity: euID, Addr: eu.Addr()}) || got.early {
			t.Errorf("handler saw %+v", got)
		}
	})
}

func TestLinkErrorAnswers(t *testing.T) {
	huge := &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Pong{Pong: &shoalpb.Pong{Payload: make([]byte, MaxFrameSize)}}}
	tests := []struct {
		name    string
		handler Handler
		want    LinkErr
	}{
		{"not serving", nil, LinkErr{Code: shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, Msg: "not serving requests yet"}},
		{"refused with a code", func(context.Context, Peer, *shoalpb.WanMessage, bool) (*shoalpb.WanMessage, error) {
			return nil, &LinkErr{Code: shoalpb.LinkCode_LINK_CODE_NOT_LEADER, Msg: "ask the leader", LeaderAddr: "127.0.0.1:9"}
		}, LinkErr{Code: shoalpb.LinkCode_LINK_CODE_NOT_LEADER, Msg: "ask the leader", LeaderAddr: "127.0.0.1:9"}},
		{"plain error", func(context.Context, Peer, *shoalpb.WanMessage, bool) (*shoalpb.WanMessage, error) {
			return nil, errors.New("disk full")
		}, LinkErr{Code: shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, Msg: "disk full"}},
		{"no answer", func(context.Context, Peer, *shoalpb.WanMessage, bool) (*shoalpb.WanMessage, error) {
			return nil, nil
		}, LinkErr{Code: shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, Msg: "the handler gave no answer"}},
		{"answer too large", func(context.Context, Peer, *shoalpb.WanMessage, bool) (*shoalpb.WanMessage, error) {
			return huge, nil
		}, LinkErr{Code: shoalpb.LinkCode_LINK_CODE_UNAVAILABLE}},
	}
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu, us := add(t, euID), add(t, usID)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.handler != nil {
					us.Serve(tt.handler)
				}
				ans, peer, err := eu.Call(within(t, 10*time.Second), us.Addr(), ping("x"), CallOptions{})
				var le *LinkErr
				if !errors.As(err, &le) || ans != nil {
					t.Fatalf("got %v, %v; want a *LinkErr", ans, err)
				}
				if le.Code != tt.want.Code || le.LeaderAddr != tt.want.LeaderAddr || (tt.want.Msg != "" && le.Msg != tt.want.Msg) {
					t.Errorf("got %+v, want %+v", *le, tt.want)
				}
				if peer.Identity != usID {
					t.Errorf("peer %+v", peer)
				}
			})
		}
	})
}

func TestLinkRefusesTooLargeRequest(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us, rec := serving(t, add, usID)
		req := &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Ping{Ping: &shoalpb.Ping{Payload: make([]byte, MaxFrameSize)}}}
		if _, _, err := eu.Call(within(t, 10*time.Second), us.Addr(), req, CallOptions{}); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
		if rec.count() != 0 {
			t.Error("the handler was called")
		}
	})
}

func TestLinkRegionOption(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us, rec := serving(t, add, usID)
		if _, err := callPing(t, eu, us.Addr(), CallOptions{Region: "us"}); err != nil {
			t.Fatalf("the right region: %v", err)
		}
		for _, opts := range []CallOptions{{Region: "ap"}, {Region: "ap", Idempotent: true}} {
			if _, err := callPing(t, eu, us.Addr(), opts); !errors.Is(err, ErrIdentity) {
				t.Errorf("%+v: got %v, want ErrIdentity", opts, err)
			}
		}
		if rec.count() != 1 {
			t.Errorf("the handler ran %d times, want once", rec.count())
		}
	})
}

func TestLinkConcurrentCalls(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us, rec := serving(t, add, usID)
		const n = 50
		errs := make(chan error, n)
		for i := range n {
			go func() {
				payload := fmt.Sprint(i)
				ans, _, err := eu.Call(within(t, 20*time.Second), us.Addr(), ping(payload), CallOptions{})
				if err == nil && string(ans.GetPong().GetPayload()) != payload {
					err = fmt.Errorf("call %d answered %v", i, ans)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if rec.count() != n {
			t.Errorf("%d requests handled, want %d", rec.count(), n)
		}
		if q, ok := eu.(*QUICLink); ok && q.dials.Load() != 1 {
			t.Errorf("%d connections dialled, want 1", q.dials.Load())
		}
	})
}

func TestLinkClosed(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us, _ := serving(t, add, usID)
		if _, err := callPing(t, eu, us.Addr(), CallOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := us.Close(); err != nil {
			t.Fatal(err)
		}
		// The peer said goodbye; until this end has noticed, a call
		// already on its way may break instead.
		eventually(t, "calls to the closed peer fail with ErrUnreachable", func() bool {
			_, err := callPing(t, eu, us.Addr(), CallOptions{})
			if err != nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrBroken) {
				t.Fatalf("calling a closed peer: %v", err)
			}
			return errors.Is(err, ErrUnreachable)
		})
		if err := eu.Close(); err != nil {
			t.Fatal(err)
		}
		if err := eu.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := callPing(t, eu, us.Addr(), CallOptions{}); !errors.Is(err, ErrClosed) {
			t.Errorf("call on a closed link: %v, want ErrClosed", err)
		}
	})
}

// Close waits for running handlers, which see their context end, and the
// caller learns that the outcome is unknown.
func TestLinkCloseEndsHandlers(t *testing.T) {
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		eu := add(t, euID)
		us := add(t, usID)
		started := make(chan struct{})
		var ended atomic.Bool
		us.Serve(func(ctx context.Context, _ Peer, _ *shoalpb.WanMessage, _ bool) (*shoalpb.WanMessage, error) {
			close(started)
			<-ctx.Done()
			ended.Store(true)
			return nil, ctx.Err()
		})
		errc := make(chan error, 1)
		go func() {
			_, _, err := eu.Call(within(t, 30*time.Second), us.Addr(), ping("x"), CallOptions{})
			errc <- err
		}()
		<-started
		if err := us.Close(); err != nil {
			t.Fatal(err)
		}
		if !ended.Load() {
			t.Error("Close returned before the handler")
		}
		if err := <-errc; !errors.Is(err, ErrBroken) {
			t.Errorf("caller got %v, want ErrBroken", err)
		}
	})
}

// outcome is how a call went, for the fault tables.
type outcome int

const (
	answered outcome = iota
	unreachable
	timedOut
)

func (o outcome) String() string {
	return [...]string{"answered", "unreachable", "timed out"}[o]
}

// callOutcome calls to; a call expected to time out gets a short
// deadline, the others a generous one.
func callOutcome(t *testing.T, from Link, to string, want outcome) outcome {
	t.Helper()
	timeout := 20 * time.Second
	if want == timedOut {
		timeout = 300 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, _, err := from.Call(ctx, to, ping("x"), CallOptions{})
	switch {
	case err == nil:
		return answered
	case errors.Is(err, ErrUnreachable):
		return unreachable
	case errors.Is(err, context.DeadlineExceeded):
		return timedOut
	}
	t.Fatalf("call to %s: %v", to, err)
	return 0
}

func TestLinkFaults(t *testing.T) {
	// eu calls us and us calls eu, with faults on one end.
	tests := []struct {
		name     string
		set      func(eu, us Link)
		euToUS   outcome
		usToEU   outcome
		handled  bool // whether a dropped or delayed request reached us's handler
		healWith func(eu, us Link)
	}{
		{"cut by address", func(eu, us Link) { eu.Faults().Cut(Target{Addr: us.Addr()}) }, unreachable, timedOut, false,
			func(eu, us Link) { eu.Faults().Heal(Target{Addr: us.Addr()}) }},
		{"cut a region", func(eu, us Link) { eu.Faults().Cut(Target{Region: "us"}) }, unreachable, timedOut, false,
			func(eu, us Link) { eu.Faults().Heal(Target{Region: "us"}) }},
		{"cut a cluster on the other end", func(eu, us Link) { us.Faults().Cut(Target{Region: "eu", Cluster: "eu-1"}) }, timedOut, unreachable, false,
			func(eu, us Link) { us.Faults().HealAll() }},
		{"cut one way", func(eu, us Link) { eu.Faults().CutOneWay(Target{Region: "us"}) }, unreachable, answered, false,
			func(eu, us Link) { eu.Faults().HealAll() }},
		{"cut one way on the other end", func(eu, us Link) { us.Faults().CutOneWay(Target{}) }, answered, unreachable, true,
			func(eu, us Link) { us.Faults().HealAll() }},
		{"total loss", func(eu, us Link) { eu.Faults().Loss(Target{Addr: us.Addr()}, 1) }, unreachable, timedOut, false,
			func(eu, us Link) { eu.Faults().HealAll() }},
		{"total loss on the other end", func(eu, us Link) { us.Faults().Loss(Target{Region: "eu"}, 1) }, timedOut, unreachable, false,
			func(eu, us Link) { us.Faults().HealAll() }},
		{"delay longer than the call", func(eu, us Link) { eu.Faults().Delay(Target{}, time.Hour, 0) }, timedOut, timedOut, false,
			func(eu, us Link) { eu.Faults().HealAll() }},
		{"short delay", func(eu, us Link) { eu.Faults().Delay(Target{}, 10*time.Millisecond, 10*time.Millisecond) }, answered, answered, true,
			func(eu, us Link) { eu.Faults().HealAll() }},
		{"no loss", func(eu, us Link) { eu.Faults().Loss(Target{}, 0) }, answered, answered, true,
			func(eu, us Link) { eu.Faults().HealAll() }},
	}
	forEachImpl(t, func(t *testing.T, add linkMaker) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				eu, _ := serving(t, add, euID)
				us, usRec := serving(t, add, usID)
				tt.set(eu, us)
				if got := callOutcome(t, eu, us.Addr(), tt.euToUS); got != tt.euToUS {
					t.Errorf("eu to us: %v, want %v", got, tt.euToUS)
				}
				if got := usRec.count() > 0; got != tt.handled {
					t.Errorf("us handled the request: %v, want %v", got, tt.handled)
				}
				if got := callOutcome(t, us, eu.Addr(), tt.usToEU); got != tt.usToEU {
					t.Errorf("us to eu: %v, want %v", got, tt.usToEU)
				}
				// A Heal of another target changes nothing.
				eu.Faults().Heal(Target{Region: "elsewhere"})
				if got := callOutcome(t, eu, us.Addr(), tt.euToUS); got != tt.euToUS {
					t.Errorf("after healing another target, eu to us: %v, want %v", got, tt.euToUS)
				}
				tt.healWith(eu, us)
				if got := callOutcome(t, eu, us.Addr(), answered); got != answered {
					t.Errorf("healed, eu to us: %v", got)
				}
				if got := callOutcome(t, us, eu.Addr(), answered); got != answered {
					t.Errorf("healed, us to eu: %v", got)
				}
			})
		}
	})
}

func TestFaultsSeededLoss(t *testing.T) {
	draw := func() string {
		f := NewFaults(42)
		f.Loss(Target{}, 0.5)
		var b strings.Builder
		for range 64 {
			if f.outbound(usID, "x").drop {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := draw(), draw()
	if a != b {
		t.Errorf("one seed, two draws:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("loss 0.5 drew %s", a)
	}
	var zero *Faults
	if v := zero.inbound(usID, "x"); v.drop || v.delay != 0 {
		t.Errorf("nil Faults decided %+v", v)
	}
	f := NewFaults(1)
	f.Delay(Target{Region: "us"}, time.Second, time.Second)
	for range 20 {
		if d := f.inbound(usID, "x").delay; d < time.Second || d > 2*time.Second {
			t.Fatalf("delay %v outside [1s, 2s]", d)
		}
	}
	if d := f.inbound(euID, "x").delay; d != 0 {
		t.Errorf("delay %v for another region", d)
	}
}
