package deploy

import (
	"errors"
	"fmt"
	"maps"

	"github.com/shoalmesh/shoal/api"
)

// The switches a test or the HTTP API flips on a SimCluster: its nodes'
// readiness and their capacity, both kept in Dir with the objects; and,
// in memory only, a workload that fails on this cluster alone and the
// status fields its copy reports.

// SetFailing makes the copy of key on this cluster fail (a crash loop, an
// image this cluster cannot pull): none of its replicas is Ready and it is
// Unhealthy with reason, until SetFailing(key, "") mends it. It may be set
// before the object exists. It signals Changed.
func (s *SimCluster) SetFailing(key api.ObjectKey, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		delete(s.failing, key)
	} else {
		if s.failing == nil {
			s.failing = map[api.ObjectKey]string{}
		}
		s.failing[key] = reason
	}
	s.signal()
}

// SetStatusFields sets fields that the copy of key reports in its status
// besides replicas and readyReplicas (the state a controller writes there,
// e.g. a job id); nil clears them. It signals Changed.
func (s *SimCluster) SetStatusFields(key api.ObjectKey, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fields == nil {
		delete(s.statusFields, key)
	} else {
		if s.statusFields == nil {
			s.statusFields = map[api.ObjectKey]map[string]any{}
		}
		s.statusFields[key] = maps.Clone(fields)
	}
	s.signal()
}

// SetReady sets whether the cluster's nodes are Ready (see SimCluster for
// what NotReady means) and signals Changed. With Dir set, the switch is
// written first; it fails, changing nothing, if that write fails or the
// cluster is closed.
func (s *SimCluster) SetReady(ready bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("set ready: %w", errSimClosed)
	}
	if s.ready == ready {
		return nil
	}
	if s.store != nil {
		if err := s.store.setReady(ready); err != nil {
			return fmt.Errorf("set ready: %w", err)
		}
	}
	s.ready = ready
	if ready {
		readyAt := s.cfg.Clock.Now().Add(s.cfg.ReadyDelay)
		for _, o := range s.order {
			for _, r := range o.replicas {
				if r.node >= 0 {
					r.readyAt = readyAt
				}
			}
		}
		s.wake(readyAt)
		s.placePending()
	}
	s.signal()
	return nil
}

// ErrBadPercent is returned by SetCapacityPercent for a percent outside 0
// to 100.
var ErrBadPercent = errors.New("capacity percent must be from 0 to 100")

// SetCapacityPercent scales every node's allocatable to pct percent (0 to
// 100; see SimCluster) and signals Changed. With Dir set, the percent is
// written first; it fails, changing nothing, if that write fails, the
// cluster is closed or pct is out of range (ErrBadPercent).
func (s *SimCluster) SetCapacityPercent(pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("set capacity: %w, got %d", ErrBadPercent, pct)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("set capacity: %w", errSimClosed)
	}
	if s.capacityPct == pct {
		return nil
	}
	if s.store != nil {
		if err := s.store.setCapacityPercent(pct); err != nil {
			return fmt.Errorf("set capacity: %w", err)
		}
	}
	grown := pct > s.capacityPct
	s.capacityPct = pct
	if grown {
		s.placePending()
	}
	s.signal()
	return nil
}

// CapacityPercent is the percent of every node's allocatable the cluster
// offers (100 unless SetCapacityPercent lowered it).
func (s *SimCluster) CapacityPercent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capacityPct
}
