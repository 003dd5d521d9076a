// Package client is the Go client of a Shoal peer's HTTP API (v1), as the
// CLI uses it: one method per endpoint, the JSON shapes of package api,
// and an *APIError carrying the status and message of every error a peer
// answers.
//
// It imports only package api and the standard library, so that a program
// that talks to peers links neither Raft, memberlist nor client-go; a test
// enforces it. Any peer of a region answers every call: reads come from
// that peer's copy of the region state, writes are forwarded to the leader
// and answered once committed and applied on that peer.
package client
