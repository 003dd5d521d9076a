package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/transport"
)

// handleFault injects a fault into this peer's traffic or clock (POST
// /v1/agent/faults, scope admin): what the chaos harness uses to cut,
// slow or flap links of any mesh through the transports' own hooks —
// memberlist's, Raft's and the QUIC links' — and to skew a peer's clock,
// unprivileged.
func (p *Peer) handleFault(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	var f api.Fault
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("fault: %v", err))
		return
	}
	if err := p.applyFault(f); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	p.logger.Warn("fault injected", "layer", f.Layer, "action", f.Action, "region", f.Region, "cluster", f.Cluster,
		"addr", f.Addr, "delay", f.Delay, "jitter", f.Jitter, "probability", f.Probability, "offset", f.Offset)
	writeJSON(w, http.StatusOK, f)
}

// faultSpec is a checked fault.
type faultSpec struct {
	api.Fault
	delay, jitter, offset time.Duration
}

// healsClock reports whether the fault sets the clock back to real time:
// a heal or heal-all of the clock layer, a heal-all of every layer, or a
// heal of every layer with no target (a targeted heal is about links).
func (s faultSpec) healsClock() bool {
	switch s.Layer {
	case "clock":
		return s.Action == "heal" || s.Action == "heal-all"
	case "", "all":
		return s.Action == "heal-all" || s.Action == "heal" && s.Region == "" && s.Cluster == "" && s.Addr == ""
	}
	return false
}

func checkFault(f api.Fault) (faultSpec, error) {
	s := faultSpec{Fault: f}
	duration := func(what, v string) (time.Duration, error) {
		if v == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("fault: %s %q: want a duration such as 50ms", what, v)
		}
		return d, nil
	}
	var err error
	if s.delay, err = duration("delay", f.Delay); err != nil {
		return s, err
	}
	if s.jitter, err = duration("jitter", f.Jitter); err != nil {
		return s, err
	}
	switch f.Layer {
	case "", "all", "wan", "gossip", "raft":
	case "clock":
		return checkClockFault(s)
	default:
		return s, fmt.Errorf("fault: unknown layer %q; use wan, gossip, raft, clock or all", f.Layer)
	}
	switch f.Action {
	case "cut", "cut-one-way", "heal", "heal-all":
	case "delay":
		if s.delay == 0 && s.jitter == 0 {
			return s, errors.New("fault: delay needs a delay (and optionally a jitter)")
		}
	case "loss":
		if f.Probability <= 0 || f.Probability > 1 {
			return s, fmt.Errorf("fault: loss needs a probability in (0, 1], got %v", f.Probability)
		}
	case "skew":
		return s, errors.New(`fault: skew is an action of the clock layer: {"layer": "clock", "action": "skew", "offset": "-2s"}`)
	default:
		return s, fmt.Errorf("fault: unknown action %q; use cut, cut-one-way, delay, loss, heal or heal-all (skew: layer clock)", f.Action)
	}
	if f.Offset != "" {
		return s, errors.New("fault: offset goes with the clock layer's skew only")
	}
	if f.Layer == "raft" && (f.Action == "delay" || f.Action == "loss") {
		return s, fmt.Errorf("fault: the raft layer takes cut, cut-one-way, heal and heal-all (TCP connections are not lossy)")
	}
	if f.Layer == "gossip" && f.Addr != "" {
		return s, errors.New("fault: the gossip layer selects peers by cluster, not address")
	}
	return s, nil
}

// checkClockFault checks a fault of the clock layer: skew with an offset
// of at most MaxClockSkew either way, heal or heal-all, and no target.
func checkClockFault(s faultSpec) (faultSpec, error) {
	f := s.Fault
	if f.Region != "" || f.Cluster != "" || f.Addr != "" {
		return s, errors.New("fault: the clock layer is this peer's own clock: it takes no region, cluster or addr")
	}
	if f.Delay != "" || f.Jitter != "" || f.Probability != 0 {
		return s, errors.New("fault: the clock layer takes an offset, not a delay, jitter or probability")
	}
	switch f.Action {
	case "skew":
	case "heal", "heal-all":
		if f.Offset != "" {
			return s, fmt.Errorf("fault: %s sets the clock back to real time; it takes no offset", f.Action)
		}
		return s, nil
	default:
		return s, fmt.Errorf("fault: the clock layer takes skew, heal or heal-all, not %q", f.Action)
	}
	if f.Offset == "" {
		return s, errors.New(`fault: skew needs an offset, a Go duration such as "-2s" (negative: the clock is behind)`)
	}
	d, err := time.ParseDuration(f.Offset)
	if err != nil {
		return s, fmt.Errorf("fault: offset %q: want a Go duration such as 2s or -500ms", f.Offset)
	}
	if d > MaxClockSkew || d < -MaxClockSkew {
		return s, fmt.Errorf("fault: offset %s is beyond the %s either way that skew allows", d, MaxClockSkew)
	}
	s.offset = d
	return s, nil
}

func (p *Peer) applyFault(f api.Fault) error {
	s, err := checkFault(f)
	if err != nil {
		return err
	}
	switch {
	case f.Action == "skew":
		p.clock.SetOffset(s.offset)
		return nil
	case s.healsClock():
		p.clock.SetOffset(0)
	}
	if f.Layer == "clock" {
		return nil
	}
	layer := func(l string) bool { return f.Layer == "" || f.Layer == "all" || f.Layer == l }
	if layer("wan") {
		applyWANFault(p.wan.Faults(), s)
	}
	// The gossip and Raft peers are of this region: a fault aimed at
	// another region leaves them alone.
	local := f.Region == "" || f.Region == p.cfg.Region
	if layer("gossip") && local && f.Addr == "" {
		g := p.pool.Faults()
		if g == nil {
			if f.Layer == "gossip" {
				return errors.New("fault: this peer's gossip transport has no fault hooks")
			}
		} else if err := applyGossipFault(g, s); err != nil {
			return err
		}
	}
	if layer("raft") && local && f.Action != "delay" && f.Action != "loss" {
		tcp, ok := p.raftNet.(*consensus.TCPNetwork)
		if !ok {
			if f.Layer == "raft" {
				return errors.New("fault: this peer's Raft network has no fault hooks")
			}
		} else {
			applyRaftFault(tcp.Faults(), s)
		}
	}
	return nil
}

func applyWANFault(faults *transport.Faults, s faultSpec) {
	target := transport.Target{Region: s.Region, Cluster: s.Cluster, Addr: s.Addr}
	switch s.Action {
	case "cut":
		faults.Cut(target)
	case "cut-one-way":
		faults.CutOneWay(target)
	case "delay":
		faults.Delay(target, s.delay, s.jitter)
	case "loss":
		faults.Loss(target, s.Probability)
	case "heal":
		faults.Heal(target)
	case "heal-all":
		faults.HealAll()
	}
}

func applyGossipFault(t *gossip.FaultTransport, s faultSpec) error {
	name := s.Cluster // gossip.AllMembers when empty
	switch s.Action {
	case "cut":
		t.Block(name)
	case "cut-one-way":
		t.BlockTo(name)
	case "delay":
		return t.SetDelay(name, s.delay)
	case "loss":
		return t.SetLoss(name, s.Probability)
	case "heal":
		t.Unblock(name)
		if err := t.SetDelay(name, 0); err != nil {
			return err
		}
		return t.SetLoss(name, 0)
	case "heal-all":
		t.Heal()
	}
	return nil
}

func applyRaftFault(f *consensus.NetFaults, s faultSpec) {
	target := consensus.FaultTarget{Cluster: s.Cluster, Addr: s.Addr}
	switch s.Action {
	case "cut":
		f.Cut(target)
	case "cut-one-way":
		f.CutOneWay(target)
	case "heal":
		f.Heal(target)
	case "heal-all":
		f.HealAll()
	}
}
