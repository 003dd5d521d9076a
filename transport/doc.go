// Package transport holds what crosses the network between peers. Today
// that is the mesh's identity: its certificate authority and the
// identities it vouches for, used for mutual TLS on the Raft port and the
// HTTPS API. The QUIC links between regions (framing, reconnect, fault
// hooks) come here next and use the same identities.
//
// The mesh CA and the identities it vouches for. One CA per mesh (InitCA writes ca.crt and ca.key); the CA
// certificate names the mesh with the URI shoal://MESH. Every certificate
// it issues carries exactly one URI naming who holds it:
//
//	shoal://MESH/REGION/CLUSTER   a peer (server and client authentication)
//	shoal://MESH/client/NAME      a CLI user (client authentication only)
//
// The contract for the transports: a peer's Material (LoadPeer) builds the
// tls.Config of the Raft port (PeerTLSConfig: mutual TLS 1.3, the other
// side must be a peer of the same mesh AND region, chain verified against
// the mesh CA, never by host name) and of the HTTPS API (ServerTLSConfig:
// a client certificate is verified if given; MeshIdentity says whether a
// request's certificate belongs to the mesh). Nothing here reads flags or
// talks to the network.
package transport
