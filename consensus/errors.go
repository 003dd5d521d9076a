package consensus

import "errors"

var (
	// ErrBadConfig is returned by Config.Validate and New when the
	// configuration is invalid; the message names the field.
	ErrBadConfig = errors.New("consensus: bad config")

	// ErrNotLeader is returned when an operation needs the leader and the
	// node(s) asked kept answering that they are not it until the deadline.
	// Nothing was committed.
	ErrNotLeader = errors.New("consensus: not the leader")

	// ErrNoLeader is returned when no leader was known before the deadline
	// (an election is running or the group has not bootstrapped yet).
	// Nothing was committed.
	ErrNoLeader = errors.New("consensus: no leader")

	// ErrRejected wraps the error the FSM returned for a committed command.
	// The command is in the log; retrying it gives the same answer. On the
	// leader the FSM's own error is wrapped too; through forwarding only its
	// text survives.
	ErrRejected = errors.New("consensus: command rejected by the state machine")

	// ErrTimeout is returned when the deadline expired after the command was
	// handed to Raft or sent to the leader. The outcome is ambiguous: the
	// command may or may not have been committed.
	ErrTimeout = errors.New("consensus: timed out; the command may or may not have been committed")

	// ErrLeadershipLost is returned when the leader lost leadership (or the
	// connection to it broke) after the command was handed to it. The
	// outcome is ambiguous: the command may or may not have been committed.
	ErrLeadershipLost = errors.New("consensus: leadership lost; the command may or may not have been committed")

	// ErrShutdown is returned by every call on a node that is shut down.
	ErrShutdown = errors.New("consensus: node is shut down")

	// ErrTooLarge is returned by Apply for a command that cannot be
	// forwarded within the maximum frame size (MaxFrameSize).
	ErrTooLarge = errors.New("consensus: command too large")

	// ErrRefused is returned when a TLS handshake with the leader failed
	// on a certificate: the leader refused this node's (another CA, mesh or
	// region) or this node refused the leader's. Nothing was sent, so
	// nothing was done; retrying does not help until the certificates are
	// fixed.
	ErrRefused = errors.New("consensus: certificate refused")

	// ErrForbidden is returned when the leader refused a forwarded request
	// for who sent it (Config.Authorize said no, or a peer asked to remove
	// another server). Nothing was done; retrying does not help.
	ErrForbidden = errors.New("consensus: forbidden")

	// ErrBadFrame is returned by the forwarding decoder for malformed or
	// oversized input from the network.
	ErrBadFrame = errors.New("consensus: malformed forward frame")
)
