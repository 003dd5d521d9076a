package deploy

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// What the workers record per key, under r.smu. A key is synced by one
// worker at a time (the queue hands it to no other until Done), so the
// entries of one key never race; the lock only guards the maps.

// setErr records k's last apply, delete or release error ("" clears it)
// and returns the one it replaces.
func (r *Reconciler) setErr(k api.ObjectKey, msg string) (prev string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	prev = r.errs[k]
	if msg == "" {
		delete(r.errs, k)
	} else {
		r.errs[k] = msg
	}
	return prev
}

func (r *Reconciler) errOf(k api.ObjectKey) string {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.errs[k]
}

// setApplied records the digest of the manifest last applied for k; nil
// forgets it.
func (r *Reconciler) setApplied(k api.ObjectKey, sum *[sha256.Size]byte) {
	r.smu.Lock()
	defer r.smu.Unlock()
	if sum == nil {
		delete(r.applied, k)
	} else {
		r.applied[k] = *sum
	}
}

// manifestChanged reports whether a manifest was applied for k since this
// Reconciler started and its digest differs from sum.
func (r *Reconciler) manifestChanged(k api.ObjectKey, sum [sha256.Size]byte) bool {
	r.smu.Lock()
	defer r.smu.Unlock()
	last, ok := r.applied[k]
	return ok && last != sum
}

// setWithheld records the change the hold keeps from being made to k ("" if
// none) and returns the one recorded before.
func (r *Reconciler) setWithheld(k api.ObjectKey, op string) (prev string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	prev = r.withheld[k]
	if op == "" {
		delete(r.withheld, k)
	} else {
		r.withheld[k] = op
	}
	return prev
}

// setStatus queues st for the next report if it differs from the last one.
func (r *Reconciler) setStatus(k api.ObjectKey, st Status) {
	st.Key, st.Drifted = k, false
	r.mu.Lock()
	r.held[k] = struct{}{}
	r.mu.Unlock()
	r.smu.Lock()
	defer r.smu.Unlock()
	if last, ok := r.reported[k]; ok && sameStatus(last, st) {
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
	r.smu.Lock()
	defer r.smu.Unlock()
	delete(r.errs, k)
	_, reported := r.reported[k]
	if !held && !reported {
		return
	}
	delete(r.reported, k)
	delete(r.batch, k)
	r.batchRemoved[k] = struct{}{}
}

// flush hands the pending statuses to Report, sorted by key, in batches of
// at most maxBatch: all of them, or with all false only full batches.
// Report calls are made one at a time, in the order their batches were
// taken, so that a later status of a key never overtakes an earlier one.
// A worker that finds another reporting leaves its statuses to it rather
// than wait and report a batch of its own: the one reporting looks again
// before it stops.
func (r *Reconciler) flush(all bool) {
	if all {
		r.flushAll.Store(true)
	}
	r.flushWanted.Store(true)
	for r.flushWanted.Load() {
		if !r.flushMu.TryLock() {
			return // the holder sees flushWanted before it lets go
		}
		r.flushWanted.Store(false)
		all := r.flushAll.Swap(false)
		for {
			statuses, removed := r.takeBatch(all)
			if len(statuses) == 0 && len(removed) == 0 {
				break
			}
			byKey := func(a, b api.ObjectKey) int { return strings.Compare(a.String(), b.String()) }
			slices.SortFunc(statuses, func(a, b Status) int { return byKey(a.Key, b.Key) })
			slices.SortFunc(removed, byKey)
			r.report(statuses, removed)
		}
		r.flushMu.Unlock()
	}
}

// takeBatch takes at most maxBatch statuses and removed keys out of the
// pending batch; unless all, nothing if fewer are pending.
func (r *Reconciler) takeBatch(all bool) ([]Status, []api.ObjectKey) {
	r.smu.Lock()
	defer r.smu.Unlock()
	if !all && len(r.batch)+len(r.batchRemoved) < maxBatch {
		return nil, nil
	}
	statuses := make([]Status, 0, min(len(r.batch), maxBatch))
	for k, st := range r.batch {
		if len(statuses) == maxBatch {
			break
		}
		statuses = append(statuses, st)
		delete(r.batch, k)
	}
	removed := make([]api.ObjectKey, 0, min(len(r.batchRemoved), maxBatch-len(statuses)))
	for k := range r.batchRemoved {
		if len(statuses)+len(removed) == maxBatch {
			break
		}
		removed = append(removed, k)
		delete(r.batchRemoved, k)
	}
	return statuses, removed
}
