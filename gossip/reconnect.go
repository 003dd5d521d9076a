package gossip

import (
	"errors"
	"math/rand/v2"
	"time"
)

// memberlist stops talking to a member it declared dead: it probes and
// push/pulls only live members, and gossips to the dead only for
// GossipToTheDeadTime and only while it has news. After a partition heals,
// both sides would therefore stay split for good. Like Serf's reconnect,
// the pool keeps trying to join one failed (not left) member at random
// every Config.ReconnectInterval, for Config.ReconnectTimeout after it
// failed; one successful push/pull merges the two sides, and each side
// refutes the other's verdict on it.

// reconnectLoop runs on its own goroutine until stop is closed.
func (p *Pool) reconnectLoop(stop <-chan struct{}) {
	t := time.NewTicker(p.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		name, addr, ok := p.reconnectTarget(time.Now())
		if !ok {
			continue
		}
		// The name lets the transport attribute the dial to the member.
		if _, err := p.Join([]string{name + "/" + addr}); err != nil {
			if errors.Is(err, ErrShutdown) {
				return
			}
			p.log.Debug("failed member still unreachable", "member", name, "addr", addr, "err", err)
			continue
		}
		p.log.Info("reached a failed member again", "member", name, "addr", addr)
	}
}

// reconnectTarget picks a random member that failed less than
// ReconnectTimeout ago, unless this pool is leaving.
func (p *Pool) reconnectTarget(now time.Time) (name, addr string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leaving {
		return "", "", false
	}
	var dead []Member
	for _, r := range p.members {
		if r.m.State == StateDead && r.m.Addr != "" && now.Sub(r.m.Since) <= p.cfg.ReconnectTimeout {
			dead = append(dead, r.m)
		}
	}
	if len(dead) == 0 {
		return "", "", false
	}
	m := dead[rand.IntN(len(dead))]
	return m.Name, m.Addr, true
}
