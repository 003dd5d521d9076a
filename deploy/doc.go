// Package deploy is everything that touches a member cluster: the Cluster
// interface, its simulated implementation (SimCluster) and the Reconciler
// that keeps one cluster matching the work Shoal has bound to it. A client-go
// implementation (KubeCluster) will sit behind the same interface.
//
// The Reconciler follows the sample-controller pattern. Three things produce
// object keys: SetDesired (keys whose desired work changed), the cluster's
// Changed channel (every held or desired key, to re-read its status) and a
// periodic resync (everything the cluster lists plus everything desired).
// Keys go into a deduplicating, rate-limited queue; one worker takes a key
// and runs sync(ctx, key), which is idempotent: it reads the object's status
// from the cluster, applies the desired work if the object is absent or its
// generation or replica count differ, deletes it if it is held but no longer
// desired, and reports the resulting status if it differs from the last one
// reported. A failing sync is retried with per-key exponential backoff.
//
// Nothing is deleted until the first SetDesired call has arrived: before it,
// an empty desired set means "not known yet", never "delete everything".
//
// Only api and api/shoalpb may be imported here; region and deploy meet in
// node (layering_test.go enforces this).
package deploy
