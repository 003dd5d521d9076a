package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"k8s.io/client-go/util/jsonpath"

	"github.com/shoalmesh/shoal/api"
)

// sync makes the cluster match the desired work for k and records the
// resulting status. It reports whether it counts towards Ready: synced
// against a known desired set and not held. Held, it reads and records the
// status but withholds any change (see SetHold).
func (r *Reconciler) sync(ctx context.Context, k api.ObjectKey) (counts bool, err error) {
	r.mu.Lock()
	w, want := r.desired[k]
	known := r.haveDesired
	r.mu.Unlock()

	st, err := r.status(ctx, k, w.Preserve)
	// The hold is read after the status, the last moment before a change
	// is decided.
	held := r.onHold.Load()
	counts = known && !held
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return counts, fmt.Errorf("read status: %w", err)
	}
	if !known {
		return false, nil // never delete before the desired set is known
	}
	// Whatever was withheld is decided afresh; withhold records it again.
	withheld := r.setWithheld(k, "")
	if !want {
		if !exists {
			r.setApplied(k, nil)
			r.setRemoved(k)
			return counts, nil
		}
		if held {
			r.withhold(k, "delete", withheld, st, true)
			return false, nil
		}
		r.setApplied(k, nil)
		r.log.Info("deleting object no longer bound here", "key", k.String())
		if err := r.cluster.Delete(ctx, k); err != nil {
			st.Error = "delete: " + err.Error()
			r.setErr(k, st.Error)
			r.setStatus(k, st)
			return counts, fmt.Errorf("delete: %w", err)
		}
		r.setErr(k, "")
		return counts, r.refresh(ctx, k)
	}
	switch {
	case w.Release && held && exists:
		r.withhold(k, "release", withheld, st, true)
		return false, nil
	case w.Release:
		return counts, r.release(ctx, k, st, exists)
	case w.RenderError != "":
		// Leave the object as it is; a new desired work brings the fix.
		if !exists {
			st = Status{}
		}
		st.Health, st.Reason, st.Error = HealthUnhealthy, "overrides could not be rendered for this cluster", w.RenderError
		r.setErr(k, "")
		r.setStatus(k, st)
		return counts, nil
	}
	sum := sha256.Sum256(w.Manifest)
	if exists && !st.Drifted && st.AppliedGeneration == w.Generation && (!w.HasReplicas || st.Replicas == w.Replicas) &&
		!r.manifestChanged(k, sum) {
		r.setErr(k, "")
		r.setStatus(k, st)
		return counts, nil
	}
	if held {
		r.withhold(k, "apply", withheld, st, exists)
		return false, nil
	}
	r.log.Debug("applying", "key", k.String(), "generation", w.Generation, "replicas", w.Replicas)
	if err := r.cluster.Apply(ctx, w); err != nil {
		if errors.Is(err, ErrConflict) {
			// Not retried with backoff: the object stays someone else's
			// until it goes away (the periodic resync tries again) or the
			// policy says Overwrite (a new desired work).
			msg := "apply: " + err.Error()
			if r.setErr(k, msg) != msg {
				r.log.Warn("not applying over an object that is not Shoal's", "key", k.String(), "err", err)
			}
			r.setStatus(k, Status{Health: HealthUnhealthy, Reason: "not applied: conflict with an existing object", Error: msg})
			return counts, nil
		}
		if !exists {
			st = Status{Key: k, Health: HealthUnknown, Reason: "not applied"}
		}
		st.Error = "apply: " + err.Error()
		r.setErr(k, st.Error)
		r.setStatus(k, st)
		return counts, fmt.Errorf("apply: %w", err)
	}
	r.setErr(k, "")
	r.setApplied(k, &sum)
	return counts, r.refresh(ctx, k)
}

// withhold records that k needs a change (op; prev was withheld before)
// that the hold keeps from being made, and records what the cluster holds
// for k: st if it exists, else nothing.
func (r *Reconciler) withhold(k api.ObjectKey, op, prev string, st Status, exists bool) {
	if r.setWithheld(k, op); prev != op {
		r.log.Debug("holding: change withheld", "key", k.String(), "change", op)
	}
	if !exists {
		r.setRemoved(k)
		return
	}
	st.Error = r.errOf(k)
	r.setStatus(k, st)
}

// release stops managing k, leaving the object in the cluster, and reports
// k removed.
func (r *Reconciler) release(ctx context.Context, k api.ObjectKey, st Status, exists bool) error {
	r.setApplied(k, nil)
	if exists {
		r.log.Info("releasing object: its template was deleted with preserveResourcesOnDeletion", "key", k.String())
		if err := r.cluster.Release(ctx, k); err != nil {
			st.Error = "release: " + err.Error()
			r.setErr(k, st.Error)
			r.setStatus(k, st)
			return fmt.Errorf("release: %w", err)
		}
	}
	r.setRemoved(k)
	return nil
}

// refresh reads and records k's status after a change.
func (r *Reconciler) refresh(ctx context.Context, k api.ObjectKey) error {
	r.mu.Lock()
	rules := r.desired[k].Preserve
	r.mu.Unlock()
	st, err := r.status(ctx, k, rules)
	switch {
	case errors.Is(err, ErrNotFound):
		r.setRemoved(k)
		return nil
	case err != nil:
		return fmt.Errorf("read status: %w", err)
	}
	st.Error = r.errOf(k)
	r.setStatus(k, st)
	return nil
}

// status reads k's status from the cluster, with the preserve rules read
// from its live status when there are any.
func (r *Reconciler) status(ctx context.Context, k api.ObjectKey, rules []PreserveRule) (Status, error) {
	st, err := r.cluster.Status(ctx, k)
	if err != nil || len(rules) == 0 {
		return st, err
	}
	ls, ok := r.cluster.(LiveStatuser)
	if !ok {
		st.PreserveError = "this cluster cannot show an object's status"
		return st, nil
	}
	live, err := ls.LiveStatus(ctx, k)
	if err != nil {
		st.PreserveError = "read status: " + err.Error()
		return st, nil
	}
	st.Preserved, st.PreserveError = readPreserved(rules, live)
	return st, nil
}

// readPreserved reads the statePreservation rules from a live status, as
// Karmada does (missing keys are an error: the state is not there yet).
func readPreserved(rules []PreserveRule, live map[string]any) (map[string]string, string) {
	if len(rules) == 0 {
		return nil, ""
	}
	out := make(map[string]string, len(rules))
	for _, rule := range rules {
		j := jsonpath.New(rule.Label)
		j.AllowMissingKeys(false)
		if err := j.Parse(rule.JSONPath); err != nil {
			return nil, fmt.Sprintf("%s: jsonPath %q: %v", rule.Label, rule.JSONPath, err)
		}
		var buf bytes.Buffer
		if err := j.Execute(&buf, live); err != nil {
			return nil, fmt.Sprintf("%s: jsonPath %q on the status: %v", rule.Label, rule.JSONPath, err)
		}
		out[rule.Label] = buf.String()
	}
	return out, ""
}
