package deploy

import (
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// setStatus queues st for the next report if it differs from the last one.
func (r *Reconciler) setStatus(k api.ObjectKey, st Status) {
	st.Key, st.Drifted = k, false
	r.mu.Lock()
	r.held[k] = struct{}{}
	r.mu.Unlock()
	if last, ok := r.reported[k]; ok && last == st {
		return
	}
	r.reported[k] = st
	r.batch[k] = st
	delete(r.batchRemoved, k)
}

// setRemoved queues k for the next report as no longer held, if it was
// held or reported.
func (r *Reconciler) setRemoved(k api.ObjectKey) {
	r.mu.Lock()
	_, held := r.held[k]
	delete(r.held, k)
	r.mu.Unlock()
	delete(r.errs, k)
	_, reported := r.reported[k]
	if !held && !reported {
		return
	}
	delete(r.reported, k)
	delete(r.batch, k)
	r.batchRemoved[k] = struct{}{}
}

// flush hands the pending batch to Report, sorted by key.
func (r *Reconciler) flush() {
	if len(r.batch) == 0 && len(r.batchRemoved) == 0 {
		return
	}
	byKey := func(a, b api.ObjectKey) int { return strings.Compare(a.String(), b.String()) }
	statuses := make([]Status, 0, len(r.batch))
	for _, st := range r.batch {
		statuses = append(statuses, st)
	}
	slices.SortFunc(statuses, func(a, b Status) int { return byKey(a.Key, b.Key) })
	removed := make([]api.ObjectKey, 0, len(r.batchRemoved))
	for k := range r.batchRemoved {
		removed = append(removed, k)
	}
	slices.SortFunc(removed, byKey)
	clear(r.batch)
	clear(r.batchRemoved)
	r.report(statuses, removed)
}
