// Package gossip is a peer's membership in its region's gossip pool, built
// on hashicorp/memberlist (SWIM with Lifeguard). Each peer of a region runs
// one Pool; the pool tells it which peers are alive, which failed and which
// left, and carries every peer's metadata (shoalpb.PeerMeta: cluster, zones,
// provider, labels, capacity summary, health, Raft and HTTP addresses). A
// cluster's zones travel as a list and, for peers older than the list, as
// its first zone alone; the format version stays 1, since an added field
// is skipped by older readers.
//
// The contract is a record and a stream. Members returns the record: every
// member seen since the pool started, with its state (alive, dead, left)
// and since when, and its last readable metadata. Events is the stream of
// changes to that record (join, update, failed, left). memberlist calls the
// pool's delegates inline from its network goroutines; they only update the
// record under a short lock and queue the event, never blocking. A slow
// reader of Events sees changes coalesced per member (the latest one wins)
// and never stalls the gossip; the record is always current.
//
// Pools of different regions never merge: memberlist's Label is
// "shoal/<region>", so packets of another region are dropped, and a member
// whose metadata names another region is refused. Metadata from the network
// is decoded defensively: garbage or an unknown format version leaves the
// member tracked with its last readable metadata (or none) and logs a
// warning. With Config.SecretKey all gossip is encrypted and authenticated
// (memberlist keyring); a member without the key cannot join.
//
// Nothing from the network reaches memberlist unchecked. memberlist v0.6.0
// decompresses without limit and allocates from length prefixes, so the
// pool always puts a guard between memberlist and its transport (around
// Config.Transport when one is given). The guard reads memberlist's framing
// (label, decryption with the pool's key, compression, message headers) on
// a copy and drops whatever is over a cap or that memberlist would refuse,
// counting it in Pool.InboundStats and logging a warning at most every
// 10 s. The caps: a packet is at most 64 KiB and what its compressed
// messages expand to at most 1 MiB in all; a stream message is at most
// 4 MiB as it arrives and 4 MiB decompressed, a push/pull at most 4,096
// node states; every length prefix must be backed by the bytes that
// follow. A stream message is read whole before memberlist sees any of
// it.
//
// A pool that makes its own sockets runs them under a FaultTransport with
// nothing set (Pool.Faults), so that a running peer's gossip can be cut,
// delayed or made lossy towards chosen members for chaos tests.
//
// memberlist stops talking to a member once it has declared it dead, so a
// healed partition would stay split; the pool therefore keeps joining a
// random failed (not left) member every Config.ReconnectInterval, for
// Config.ReconnectTimeout after the failure, as Serf does.
//
// A graceful Leave is told apart from a failure by a leave announcement sent
// to every member before memberlist's own leave message, because memberlist
// v0.6.0 does not tell its users which of the two happened. Anyone who can
// gossip can announce anyone's leave, so an announcement only counts if
// memberlist reports that very member gone within 2 × BroadcastTimeout of
// it (or at most BroadcastTimeout before it, when memberlist's message
// overtook it); otherwise it expires, and a forged announcement for a live
// member has no lasting effect. memberlist does not report suspicion
// either, so StateSuspect is never reported.
//
// Timing comes from a profile: DefaultLANConfig (a killed peer is dead in
// about 2 s), DefaultEdgeConfig (tens of seconds, for flapping links) and
// DefaultLocalConfig (one machine, tests).
package gossip
