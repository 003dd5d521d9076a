// Package api holds Shoal's user-facing types: Karmada-compatible
// PropagationPolicy and ClusterPropagationPolicy of policy.karmada.io/v1alpha1,
// their decoding from YAML, defaulting and validation, and the reading of
// resource templates (kind, name, replicas, per-replica requests).
//
// Policies written for Karmada are accepted unchanged. Decoding is strict:
// a field Karmada does not have is an error, and a Karmada field Shoal does
// not implement yet is returned as a warning, never silently ignored.
//
// Clusters are matched as Karmada matches them (ClusterAffinity.Matches over
// ClusterFacts); a cluster may sit in several zones, as Karmada's
// spec.zones, and zones.go reads them from records that carry a list or,
// from older peers, one zone, and checks the zones a peer is given.
//
// The wire and log messages live in the sub-package shoalpb, generated from
// the .proto files beside them.
package api
