package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/transport"
)

// handleWANFault injects a fault into this peer's links to other regions
// (POST /v1/agent/faults/wan, scope admin): what the chaos harness uses to
// partition, slow or flap regions of any mesh, through the links' own
// hooks, unprivileged.
func (p *Peer) handleWANFault(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	var f api.WANFault
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("fault: %v", err))
		return
	}
	if err := applyWANFault(p.wan.Faults(), f); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	p.logger.Warn("fault injected into the links between regions", "action", f.Action, "region", f.Region,
		"cluster", f.Cluster, "addr", f.Addr, "delay", f.Delay, "jitter", f.Jitter, "probability", f.Probability)
	writeJSON(w, http.StatusOK, f)
}

// applyWANFault checks a fault and sets it on faults.
func applyWANFault(faults *transport.Faults, f api.WANFault) error {
	target := transport.Target{Region: f.Region, Cluster: f.Cluster, Addr: f.Addr}
	duration := func(what, s string) (time.Duration, error) {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("fault: %s %q: want a duration such as 50ms", what, s)
		}
		return d, nil
	}
	switch f.Action {
	case "cut":
		faults.Cut(target)
	case "cut-one-way":
		faults.CutOneWay(target)
	case "delay":
		d, err := duration("delay", f.Delay)
		if err != nil {
			return err
		}
		j, err := duration("jitter", f.Jitter)
		if err != nil {
			return err
		}
		if d == 0 && j == 0 {
			return errors.New("fault: delay needs a delay (and optionally a jitter)")
		}
		faults.Delay(target, d, j)
	case "loss":
		if f.Probability <= 0 || f.Probability > 1 {
			return fmt.Errorf("fault: loss needs a probability in (0, 1], got %v", f.Probability)
		}
		faults.Loss(target, f.Probability)
	case "heal":
		faults.Heal(target)
	case "heal-all":
		faults.HealAll()
	default:
		return fmt.Errorf("fault: unknown action %q; use cut, cut-one-way, delay, loss, heal or heal-all", f.Action)
	}
	return nil
}
