package gossip

import (
	"testing"
	"time"
)

func TestReconnectTarget(t *testing.T) {
	p := bareP(t)
	d := delegate{p: p}
	for _, name := range []string{"eu-2", "eu-3", "eu-4", "eu-5"} {
		d.NotifyJoin(node(name, encoded(t, wantMeta(name))))
	}
	d.NotifyLeave(node("eu-2", nil)) // failed: a target
	d.NotifyMsg(encodeLeaveIntent("eu-3"))
	d.NotifyLeave(node("eu-3", nil)) // left: not a target
	d.NotifyLeave(node("eu-4", nil)) // failed too long ago: not a target
	p.mu.Lock()
	p.members["eu-4"].m.Since = time.Now().Add(-p.cfg.ReconnectTimeout - time.Second)
	p.mu.Unlock()

	for range 20 {
		name, addr, ok := p.reconnectTarget(time.Now())
		if !ok || name != "eu-2" || addr != "127.0.0.1:7946" {
			t.Fatalf("reconnect target %q %q %v, want only eu-2", name, addr, ok)
		}
	}
	p.mu.Lock()
	p.leaving = true
	p.mu.Unlock()
	if name, _, ok := p.reconnectTarget(time.Now()); ok {
		t.Errorf("a leaving pool reconnects to %s", name)
	}
}
