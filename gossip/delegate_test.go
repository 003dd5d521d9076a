package gossip

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"google.golang.org/protobuf/proto"
)

// bareP returns a Pool without memberlist, enough to drive its delegate
// directly.
func bareP(t testing.TB) *Pool {
	cfg := DefaultLocalConfig()
	cfg.Name, cfg.Region = "eu-1", "eu-west"
	p := &Pool{
		cfg:      cfg,
		log:      newTestLogger(t),
		events:   newEventQueue(cfg.EventBuffer),
		members:  make(map[string]*record),
		reclaims: make(map[string]bool),
	}
	t.Cleanup(p.events.close)
	return p
}

func node(name string, meta []byte) *memberlist.Node {
	return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta}
}

func encoded(t testing.TB, m *shoalpb.PeerMeta) []byte {
	t.Helper()
	buf, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestGarbageMetaDoesNotPanic(t *testing.T) {
	p := bareP(t)
	p.log = slog.New(slog.DiscardHandler) // thousands of expected warnings
	d := delegate{p: p}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		buf := make([]byte, rng.IntN(600))
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		n := node("eu-2", buf)
		_ = d.NotifyAlive(n)
		if i%2 == 0 {
			d.NotifyJoin(n)
		} else {
			d.NotifyUpdate(n)
		}
		d.NotifyMsg(buf)
	}
	m, ok := member(p, "eu-2")
	if !ok || m.State != StateAlive {
		t.Fatalf("member with garbage meta not tracked alive: %v %v", m, ok)
	}
	if m.Meta != nil {
		t.Fatalf("garbage decoded to %v", m.Meta)
	}
}

func TestRemoteMetaDecodedDefensively(t *testing.T) {
	p := bareP(t)
	d := delegate{p: p}

	good := wantMeta("eu-2")
	d.NotifyJoin(node("eu-2", encoded(t, good)))
	if m, _ := member(p, "eu-2"); !metaEqual(m.Meta, good) {
		t.Fatalf("good meta decoded to %v", m.Meta)
	}

	for name, buf := range map[string][]byte{
		"garbage":       {0xff, 0xff, 0xff},
		"empty":         nil,
		"newer version": encoded(t, &shoalpb.PeerMeta{Version: 2, Region: "eu-west", Cluster: "eu-2"}),
		"no version":    encoded(t, &shoalpb.PeerMeta{Region: "eu-west", Cluster: "eu-2"}),
		"other cluster": encoded(t, &shoalpb.PeerMeta{Version: 1, Region: "eu-west", Cluster: "eu-9"}),
	} {
		d.NotifyUpdate(node("eu-2", buf))
		if m, _ := member(p, "eu-2"); !metaEqual(m.Meta, good) || m.State != StateAlive {
			t.Errorf("%s: member is %s with meta %v, want alive with the last good meta", name, m.State, m.Meta)
		}
	}

	newer := wantMeta("eu-2")
	newer.Health = shoalpb.Health_HEALTH_NOT_READY
	d.NotifyUpdate(node("eu-2", encoded(t, newer)))
	if m, _ := member(p, "eu-2"); !metaEqual(m.Meta, newer) {
		t.Errorf("readable meta after garbage not taken: %v", m.Meta)
	}
}

func TestForeignRegionIgnored(t *testing.T) {
	p := bareP(t)
	d := delegate{p: p}
	foreign := wantMeta("us-1")
	foreign.Region = "us-east"
	n := node("us-1", encoded(t, foreign))

	if err := d.NotifyAlive(n); err == nil {
		t.Error("NotifyAlive accepted a member of another region")
	}
	d.NotifyJoin(n)
	d.NotifyLeave(n)
	if _, ok := member(p, "us-1"); ok {
		t.Error("member of another region is tracked")
	}
	// Unreadable metadata is not a reason to refuse a member.
	if err := d.NotifyAlive(node("eu-2", []byte{0xff})); err != nil {
		t.Errorf("NotifyAlive refused a member with unreadable meta: %v", err)
	}
	if err := d.NotifyAlive(node("eu-2", encoded(t, wantMeta("eu-2")))); err != nil {
		t.Errorf("NotifyAlive refused a member of our region: %v", err)
	}
}

func TestLeaveIntentClassifiesDeparture(t *testing.T) {
	p := bareP(t)
	d := delegate{p: p}
	for _, name := range []string{"eu-2", "eu-3", "eu-4"} {
		d.NotifyJoin(node(name, encoded(t, wantMeta(name))))
	}

	// Announced, then gone: left.
	d.NotifyMsg(encodeLeaveIntent("eu-2"))
	d.NotifyLeave(node("eu-2", nil))
	// Gone without announcement: failed.
	d.NotifyLeave(node("eu-3", nil))
	// Announcement overtaken by the departure: failed, corrected to left.
	d.NotifyLeave(node("eu-4", nil))
	d.NotifyMsg(encodeLeaveIntent("eu-4"))
	// Intents for unknown members or ourselves do nothing.
	d.NotifyMsg(encodeLeaveIntent("nobody"))
	d.NotifyMsg(encodeLeaveIntent("eu-1"))

	want := map[string]State{"eu-2": StateLeft, "eu-3": StateDead, "eu-4": StateLeft}
	for name, s := range want {
		if m, _ := member(p, name); m.State != s {
			t.Errorf("%s is %s, want %s", name, m.State, s)
		}
	}

	// A stale intent does not stick: after a rejoin, a crash is a failure.
	d.NotifyJoin(node("eu-2", encoded(t, wantMeta("eu-2"))))
	d.NotifyLeave(node("eu-2", nil))
	if m, _ := member(p, "eu-2"); m.State != StateDead {
		t.Errorf("eu-2 after rejoin and crash is %s, want dead", m.State)
	}

	// An old failure is not rewritten by a late intent.
	p.mu.Lock()
	p.members["eu-3"].m.Since = time.Now().Add(-time.Hour)
	p.mu.Unlock()
	d.NotifyMsg(encodeLeaveIntent("eu-3"))
	if m, _ := member(p, "eu-3"); m.State != StateDead {
		t.Errorf("eu-3 rewritten to %s by a late intent", m.State)
	}

	// An intent that memberlist does not confirm in time expires: a later
	// departure is a failure.
	d.NotifyJoin(node("eu-5", encoded(t, wantMeta("eu-5"))))
	d.NotifyMsg(encodeLeaveIntent("eu-5"))
	if !p.leaveIntentPending("eu-5", time.Now()) {
		t.Fatal("intent for eu-5 not noted")
	}
	p.mu.Lock()
	p.members["eu-5"].leaveIntent = time.Now().Add(-p.cfg.leaveIntentWindow() - time.Millisecond)
	p.mu.Unlock()
	d.NotifyLeave(node("eu-5", nil))
	if m, _ := member(p, "eu-5"); m.State != StateDead {
		t.Errorf("eu-5 gone after its intent expired is %s, want dead", m.State)
	}
}

func TestEventQueueCoalesces(t *testing.T) {
	q := newEventQueue(1)
	defer q.close()
	ev := func(typ EventType, name, zone string) Event {
		return Event{Type: typ, Member: Member{Name: name, Meta: &shoalpb.PeerMeta{Zone: zone}}}
	}
	// The consumer reads nothing while these arrive.
	q.push(ev(EventJoin, "a", "1"))
	waitFor(t, 5*time.Second, "the first event is buffered", func() error {
		if len(q.out) != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	q.push(ev(EventJoin, "b", "1"))
	waitFor(t, 5*time.Second, "the dispatcher holds b", func() error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(q.order) != 0 {
			return errors.New("not yet")
		}
		return nil
	})
	// Waiting in the queue from here on.
	q.push(ev(EventJoin, "c", "1"))
	q.push(ev(EventUpdate, "c", "2"))
	q.push(ev(EventUpdate, "c", "3"))
	q.push(ev(EventFailed, "d", "1"))
	q.push(ev(EventJoin, "d", "2"))

	want := []string{"join a 1", "join b 1", "join c 3", "join d 2"}
	var got []string
	for range want {
		select {
		case e := <-q.out:
			got = append(got, e.Type.String()+" "+e.Member.Name+" "+e.Member.Meta.Zone)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far: %v, want %v", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
	select {
	case e := <-q.out:
		t.Errorf("extra event %v", e)
	default:
	}
	if n := q.coalescedCount(); n != 3 {
		t.Errorf("coalesced %d events, want 3", n)
	}
}

func TestEventQueueCloseNeverBlocks(t *testing.T) {
	q := newEventQueue(1)
	for range 10 {
		q.push(Event{Member: Member{Name: "a"}})
	}
	q.close()
	q.close()
	q.push(Event{Member: Member{Name: "b"}})
	for range q.out {
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x01})
	good, _ := proto.Marshal(wantMeta("eu-2"))
	f.Add(good)
	newer, _ := proto.Marshal(&shoalpb.PeerMeta{Version: 7, Cluster: "eu-2"})
	f.Add(newer)
	f.Fuzz(func(t *testing.T, buf []byte) {
		m, err := decodeMeta("eu-2", buf)
		if err != nil {
			if m != nil || !errors.Is(err, ErrBadMeta) {
				t.Fatalf("decodeMeta error %v with meta %v", err, m)
			}
			return
		}
		if m.Version != MetaVersion || m.Cluster != "eu-2" {
			t.Fatalf("decodeMeta accepted %v", m)
		}
		// Whatever decodes re-encodes within memberlist's limit.
		if _, err := encodeMeta(m); err != nil && !errors.Is(err, ErrMetaTooLarge) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// FuzzNotifyMsg feeds arbitrary user messages to a pool's delegate.
func FuzzNotifyMsg(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeLeaveIntent("eu-2"))
	f.Add([]byte{9, 1, 2})
	f.Fuzz(func(t *testing.T, buf []byte) {
		p := bareP(t)
		d := delegate{p: p}
		d.NotifyJoin(node("eu-2", nil))
		d.NotifyMsg(buf)
		d.NotifyLeave(node("eu-2", nil))
		if m, _ := member(p, "eu-2"); m.State != StateDead && m.State != StateLeft {
			t.Fatalf("eu-2 is %s after leaving", m.State)
		}
	})
}
