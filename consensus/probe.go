package consensus

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// SendForward sends one request over a forwarding connection of n to the
// node at addr and returns its answer as it came, without following a
// CODE_NOT_LEADER answer, retrying or mapping codes to errors: it is for
// probes that check what a node accepts from whom (the chaos harness's
// forged-identity probe), not for writing. Peer says who answered. A
// refused certificate (on either side) gives an error wrapping ErrRefused;
// any other error means no answer arrived, and the outcome of a command
// sent is then unknown. ctx bounds the whole exchange (without a deadline
// the node's own default applies).
func SendForward(ctx context.Context, n Network, addr string, req *shoalpb.ForwardRequest) (*shoalpb.ForwardResponse, Peer, error) {
	conn, peer, err := n.DialForward(ctx, addr)
	if err != nil {
		return nil, peer, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		req.TimeoutMs = max(1, time.Until(deadline).Milliseconds())
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(conn, 0, req); err != nil {
		if refusedByTLS(err) {
			return nil, peer, fmt.Errorf("%w: %s refused this node's certificate: %v", ErrRefused, addr, err)
		}
		return nil, peer, fmt.Errorf("sending to %s: %w", addr, err)
	}
	body, err := readFrame(conn)
	if err != nil {
		if refusedByTLS(err) {
			return nil, peer, fmt.Errorf("%w: %s refused this node's certificate: %v", ErrRefused, addr, err)
		}
		return nil, peer, fmt.Errorf("waiting for %s: %w", addr, err)
	}
	resp := &shoalpb.ForwardResponse{}
	if err := proto.Unmarshal(body, resp); err != nil {
		return nil, peer, fmt.Errorf("undecodable answer from %s: %w", addr, err)
	}
	return resp, peer, nil
}
