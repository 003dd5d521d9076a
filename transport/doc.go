// Package transport holds what crosses the network between peers: the
// mesh's identity (its certificate authority and the identities it vouches
// for, used for mutual TLS on the Raft port, the HTTPS API and the links
// between regions) and the links between regions themselves.
//
// # Identity
//
// One CA per mesh (InitCA writes ca.crt and ca.key); the CA certificate
// names the mesh with the URI shoal://MESH. Every certificate it issues
// carries exactly one URI naming who holds it:
//
//	shoal://MESH/REGION/CLUSTER   a peer (server and client authentication)
//	shoal://MESH/client/NAME      a CLI user (client authentication only)
//
// A peer's Material (LoadFiles) builds the tls.Config of the Raft port
// (PeerTLSConfig: mutual TLS 1.3, the other side must be a peer of the
// same mesh AND region, chain verified against the mesh CA, never by host
// name), of the links between regions (WANTLSConfig: the same, but any
// region of the mesh, ALPN WANProtocol) and of the HTTPS API
// (ServerTLSConfig: a client certificate is verified if given;
// MeshIdentity says whether a request's certificate belongs to the mesh).
//
// # Links between regions
//
// A Link is one peer's end of the links between regions. QUICLink is the
// production one; InmemLink, on an InmemNetwork, is its in-memory twin for
// tests of what runs on top. Both keep the same contract:
//
//   - One request, one answer. Call opens a stream per request, writes one
//     frame and half-closes, then reads one frame. A frame is a uvarint
//     length and a protobuf WanMessage (WriteFrame, ReadFrame), at most
//     MaxFrameSize bytes or the link's MaxFrame; a reader refuses a larger
//     length before allocating. The link looks only at the error field: a
//     LinkError answer comes back from Call as a *LinkErr, and a handler
//     chooses the code by returning one (Refuse). A malformed or oversized
//     request is answered BAD_REQUEST and only its stream is closed.
//   - Identity. Both ends present their peer certificate and verify the
//     other's against the mesh CA; a certificate of another CA or mesh, or a
//     CLI certificate, fails the handshake (ErrIdentity, ErrUnreachable).
//     The handler sees the caller's verified identity in Peer, Call returns
//     the answering one, and CallOptions.Region refuses to send to a peer of
//     another region.
//   - Outcomes. ErrUnreachable and ErrIdentity mean the request was not
//     handled. A timeout (the context's error) or ErrBroken is ambiguous:
//     the request may or may not have been handled, so what travels on a
//     link should be safe to repeat.
//   - Connections. QUICLink keeps one connection per remote address, shared
//     by concurrent calls, kept open by keep-alives well inside the idle
//     timeout. When a connection is lost or a dial fails, the address waits
//     an exponential backoff with full jitter (BackoffMin doubling up to
//     BackoffMax, reset by an answer) before the next dial; calls meanwhile
//     fail at once with ErrUnreachable.
//   - 0-RTT. A second connection to a server resumes the TLS session. With
//     QUICConfig.ZeroRTT (edge links), a request marked Idempotent goes out
//     in 0-RTT data, before the handshake completes; others wait for it. A
//     request the server read before its handshake completed reaches the
//     handler with early set: it may be a replay, so only idempotent
//     requests may be acted on. Its identity is still verified: it is the
//     resumed session's, whose certificates crypto/tls checks again (with
//     WANTLSConfig's VerifyConnection) before quic-go can read the 0-RTT
//     data, which only a holder of that session's secret can have sealed.
//     A request read after the handshake completed is never a replay: who
//     replays 0-RTT packets cannot complete the handshake.
//   - Faults. Each end has Faults to cut, delay or drop traffic by region,
//     cluster or address, both ways or one way. A call this end drops fails
//     at once with ErrUnreachable; a request it drops on arrival is never
//     answered, and its caller times out. InmemNetwork adds partitions and
//     region cuts across the whole network.
//
// Handlers are called concurrently and must return once their context is
// done: Close waits for them. Nothing here reads flags.
package transport
