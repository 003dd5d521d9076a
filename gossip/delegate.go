package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"google.golang.org/protobuf/proto"
)

// record is the pool's view of one member.
type record struct {
	m Member
	// leaveIntent is when an announcement that the member is leaving
	// arrived (zero: none). It counts only if memberlist reports the member
	// gone within leaveIntentWindow; then the departure is a graceful leave,
	// not a failure.
	leaveIntent time.Time
}

// leaveIntentWindow is how long a leave announcement waits for memberlist
// to report the member gone. Leave announces for at most BroadcastTimeout
// before memberlist's own leave message, which then spreads within a few
// gossip rounds; an announcement that is not followed by the member's
// departure (forged, or a Leave that never finished) expires, so that a
// failure of the member afterwards is reported as one.
func (c Config) leaveIntentWindow() time.Duration { return 2 * c.BroadcastTimeout }

// leaveIntentPending says whether the member named has announced a leave
// that has not expired.
func (p *Pool) leaveIntentPending(name string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.members[name]
	return ok && r.intentPending(now, p.cfg.leaveIntentWindow())
}

func (r *record) intentPending(now time.Time, window time.Duration) bool {
	return !r.leaveIntent.IsZero() && now.Sub(r.leaveIntent) <= window
}

// User message types sent between pools with memberlist's SendReliable.
const (
	// msgLeaveIntent announces that the member named in the rest of the
	// message is about to leave. memberlist v0.6.0 does not tell
	// NotifyLeave whether a member left or failed (its Node.State is always
	// alive there; hashicorp/memberlist#293), so a leaving pool says so
	// first, as Serf does with its leave intent. Anyone who can gossip can
	// send one naming anyone: it is only believed when memberlist sees that
	// member go shortly after (see leaveIntentWindow).
	msgLeaveIntent byte = 1
)

// encodeLeaveIntent returns the leave intent message for name.
func encodeLeaveIntent(name string) []byte {
	return append([]byte{msgLeaveIntent}, name...)
}

// delegate implements memberlist's Delegate, EventDelegate and
// AliveDelegate for a Pool. memberlist calls these inline from its network
// and timer goroutines, often with its own locks held: every method only
// takes the pool's mutex briefly and never blocks (events go through the
// non-blocking eventQueue).
type delegate struct {
	p *Pool
}

var (
	_ memberlist.Delegate         = delegate{}
	_ memberlist.EventDelegate    = delegate{}
	_ memberlist.AliveDelegate    = delegate{}
	_ memberlist.ConflictDelegate = delegate{}
)

// NodeMeta returns the local metadata. It is called by memberlist when it
// announces this member; it must not block.
func (d delegate) NodeMeta(limit int) []byte {
	p := d.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.localMeta) > limit {
		// New and UpdateMeta check the size, so this cannot happen unless
		// memberlist lowers its limit; gossip no metadata rather than
		// letting memberlist panic.
		p.log.Error("local metadata exceeds memberlist's limit; gossiping none", "size", len(p.localMeta), "limit", limit)
		return nil
	}
	return append([]byte(nil), p.localMeta...)
}

// NotifyMsg handles a user message from another member. It must not block
// and must not keep buf.
func (d delegate) NotifyMsg(buf []byte) {
	if len(buf) == 0 {
		return
	}
	switch buf[0] {
	case msgLeaveIntent:
		d.p.leaveIntent(string(buf[1:]))
	default:
		d.p.log.Warn("ignoring gossip message of unknown type", "type", buf[0], "size", len(buf))
	}
}

// GetBroadcasts returns nothing: the pool gossips only metadata.
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState returns nothing: the pool has no state beyond memberlist's.
func (delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores the remote state (there is none).
func (delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyAlive refuses members whose readable metadata names another region,
// so that memberlist does not even add them (belt and braces on top of the
// Label, which keeps other regions' packets out). Members with unreadable
// metadata are accepted and tracked without metadata. Called with
// memberlist's node lock held: must not block.
func (d delegate) NotifyAlive(n *memberlist.Node) error {
	meta, err := decodeMeta(n.Name, n.Meta)
	if err != nil {
		return nil
	}
	if meta.Region != d.p.cfg.Region {
		return fmt.Errorf("member %q is in region %q, not %q", n.Name, meta.Region, d.p.cfg.Region)
	}
	return nil
}

// NotifyJoin records a member that joined or came back. Must not block.
func (d delegate) NotifyJoin(n *memberlist.Node) { d.p.nodeAlive(n, true) }

// NotifyUpdate records new metadata of a live member. Must not block.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.p.nodeAlive(n, false) }

// NotifyLeave records a member that left or failed. Must not block.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.p.nodeGone(n) }

// NotifyConflict is called by memberlist when a member it knows at one
// address announces itself from another: usually a peer restarted on a new
// IP or port. Must not block.
func (d delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.p.conflict(existing.Name, other.Address())
}

// readMeta decodes a member's metadata and checks its region. ok is false
// when the member must be ignored (another region). meta is nil when it
// cannot be read; the reason has been logged.
func (p *Pool) readMeta(n *memberlist.Node) (meta *shoalpb.PeerMeta, ok bool) {
	meta, err := decodeMeta(n.Name, n.Meta)
	if err != nil {
		p.log.Warn("cannot read member metadata; tracking the member without it", "member", n.Name, "addr", n.Address(), "err", err)
		return nil, true
	}
	if meta.Region != p.cfg.Region {
		p.log.Warn("ignoring member of another region", "member", n.Name, "addr", n.Address(), "member_region", meta.Region)
		return nil, false
	}
	return meta, true
}

// nodeAlive handles NotifyJoin (join true) and NotifyUpdate.
func (p *Pool) nodeAlive(n *memberlist.Node, join bool) {
	meta, ok := p.readMeta(n)
	if !ok {
		return
	}
	now := time.Now()

	p.mu.Lock()
	r, known := p.members[n.Name]
	if !known {
		r = &record{m: Member{Name: n.Name}}
		p.members[n.Name] = r
	}
	typ := EventUpdate
	if !known || r.m.State != StateAlive {
		typ = EventJoin
		r.m.State = StateAlive
		r.m.Since = now
		r.leaveIntent = time.Time{}
	}
	changed := typ == EventJoin || r.m.Addr != n.Address()
	r.m.Addr = n.Address()
	if meta != nil && !proto.Equal(meta, r.m.Meta) {
		r.m.Meta = meta
		changed = true
	}
	ev := Event{Type: typ, Member: r.m.clone()}
	p.mu.Unlock()

	if p.learner != nil {
		p.learner.Learn(n.Name, ev.Member.Addr)
	}
	if !changed {
		return
	}
	if typ == EventJoin && !join {
		p.log.Debug("member update made it alive again", "member", n.Name)
	}
	p.log.Info("member "+typ.String(), "member", n.Name, "addr", ev.Member.Addr)
	p.events.push(ev)
}

// nodeGone handles NotifyLeave: a graceful leave if the member announced it
// within leaveIntentWindow (or is ourselves, leaving), a failure otherwise.
func (p *Pool) nodeGone(n *memberlist.Node) {
	now := time.Now()
	p.mu.Lock()
	r, known := p.members[n.Name]
	if !known || r.m.State == StateDead || r.m.State == StateLeft {
		p.mu.Unlock()
		return
	}
	typ := EventFailed
	r.m.State = StateDead
	if r.intentPending(now, p.cfg.leaveIntentWindow()) || (n.Name == p.cfg.Name && p.leaving) {
		typ = EventLeft
		r.m.State = StateLeft
	}
	r.m.Since = now
	r.leaveIntent = time.Time{}
	ev := Event{Type: typ, Member: r.m.clone()}
	p.mu.Unlock()

	if typ == EventFailed {
		p.log.Warn("member failed", "member", n.Name, "addr", ev.Member.Addr)
	} else {
		p.log.Info("member left", "member", n.Name, "addr", ev.Member.Addr)
	}
	p.events.push(ev)
}

// leaveIntent handles a member's announcement that it is leaving: it is
// noted, and believed if memberlist reports the member gone within
// leaveIntentWindow. If the announcement arrives after the member was
// already declared dead (memberlist's leave message overtook it), the
// failure is corrected into a leave as long as it is at most
// BroadcastTimeout old.
func (p *Pool) leaveIntent(name string) {
	if name == p.cfg.Name {
		return
	}
	now := time.Now()
	p.mu.Lock()
	r, known := p.members[name]
	if !known {
		p.mu.Unlock()
		return
	}
	var ev *Event
	switch r.m.State {
	case StateAlive, StateSuspect:
		r.leaveIntent = now
	case StateDead:
		if now.Sub(r.m.Since) <= p.cfg.BroadcastTimeout {
			r.m.State = StateLeft
			r.m.Since = now
			ev = &Event{Type: EventLeft, Member: r.m.clone()}
		}
	}
	p.mu.Unlock()

	if ev != nil {
		p.log.Info("member left (announcement arrived after its failure)", "member", name)
		p.events.push(*ev)
	} else {
		p.log.Debug("member announced it is leaving; believed if it is gone within the window", "member", name, "window", p.cfg.leaveIntentWindow())
	}
}

// maxReclaimChecks bounds how often the pool re-checks a conflicting name
// before leaving it to memberlist's periodic push/pull.
const maxReclaimChecks = 20

// conflict handles a member announcing itself from a new address while the
// old one is still on record. memberlist refuses the new address until the
// old one has been dead for DeadNodeReclaimTime and then waits for the next
// push/pull (up to PushPullInterval) to hear of it again. To bring a
// restarted peer back sooner, the pool joins the new address itself once
// the old record is reclaimable; a live old record (two peers with one
// name, or a restart not yet detected) is re-checked a bounded number of
// times.
func (p *Pool) conflict(name, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reclaims[name] {
		return
	}
	p.log.Warn("member announces itself from a new address; it is taken once the old one is dead for DeadNodeReclaimTime",
		"member", name, "new_addr", addr, "reclaim_after", p.cfg.DeadNodeReclaimTime)
	if p.cfg.DeadNodeReclaimTime <= 0 {
		return
	}
	p.reclaims[name] = true
	p.scheduleReclaim(name, addr, p.cfg.DeadNodeReclaimTime, 0)
}

// scheduleReclaim arranges a reclaim check. Called with p.mu held.
func (p *Pool) scheduleReclaim(name, addr string, after time.Duration, checks int) {
	time.AfterFunc(after+p.cfg.ProbeInterval, func() { p.reclaim(name, addr, checks+1) })
}

// reclaim runs on its own goroutine (a timer): it may block in Join.
func (p *Pool) reclaim(name, addr string, checks int) {
	p.mu.Lock()
	r, ok := p.members[name]
	gone := ok && (r.m.State == StateDead || r.m.State == StateLeft)
	if !ok || r.m.Addr == addr || checks > maxReclaimChecks {
		delete(p.reclaims, name)
		p.mu.Unlock()
		return
	}
	if wait := time.Until(r.m.Since.Add(p.cfg.DeadNodeReclaimTime)); !gone || (r.m.State == StateDead && wait > 0) {
		if !gone {
			wait = p.cfg.DeadNodeReclaimTime
		}
		p.scheduleReclaim(name, addr, max(wait, 0), checks)
		p.mu.Unlock()
		return
	}
	delete(p.reclaims, name)
	p.mu.Unlock()

	if _, err := p.Join([]string{addr}); err != nil {
		p.log.Debug("could not reach the new address of a member", "member", name, "addr", addr, "err", err)
	}
}
