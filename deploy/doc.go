// Package deploy is everything that touches a member cluster: the Cluster
// interface, its client-go implementation (KubeCluster: server-side apply,
// informers, status per kind, health and capacity), its simulated twin
// (SimCluster) and the Reconciler that keeps one cluster matching the work
// Shoal has bound to it.
//
// The Reconciler follows the sample-controller pattern. Three things produce
// object keys: SetDesired (keys whose desired work changed), the cluster's
// Changed channel (every held or desired key, to re-read its status) and a
// periodic resync (everything the cluster lists plus everything desired).
// Keys go into a deduplicating, rate-limited queue; workers
// (ReconcilerConfig.Workers) take keys from it, never one key twice at a
// time, and run sync(ctx, key), which is idempotent: it reads the object's
// status from the cluster, applies the desired work if the object is
// absent, its generation or replica count differ or the cluster says it
// drifted (Status.Drifted), deletes it if it is held but no longer desired,
// and reports the resulting status if it differs from the last one
// reported. A work with Release set is released (left in the cluster,
// unmanaged) and reported removed; one with RenderError is reported
// Unhealthy and not applied; an apply refused with ErrConflict
// (conflictResolution Abort) is reported and tried again on the next
// resync. A failing sync is retried with per-key exponential backoff.
//
// Nothing is deleted until the first SetDesired call has arrived: before it,
// an empty desired set means "not known yet", never "delete everything".
// And nothing at all is changed while the Reconciler is held
// (SetHold, ReconcilerConfig.StartHeld): a peer restarted while cut off
// from its region keeps its cluster exactly as it is, still reading and
// reporting statuses, until it has caught up; lifting the hold resyncs at
// once. Ready is only reached by a pass that was not held.
//
// Time comes from an injected k8s.io/utils/clock (the clock region,
// consensus and gossip share); tests pass its testing.FakeClock. That fake
// runs AfterFunc callbacks from Step with its own lock held, so every
// callback here only queues a key or signals a channel: none takes a lock
// that is held while the clock is called, and none calls the clock.
//
// Only api and api/shoalpb may be imported here; region and deploy meet in
// node (layering_test.go enforces this).
package deploy
