package region

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// ErrForbidden is returned by AuthorizeForward for a command a peer may
// not have the leader commit on its behalf.
var ErrForbidden = errors.New("forbidden")

// AuthorizeForward decides, on the leader, whether the peer of cluster
// from may have cmd (an encoded shoalpb.Command) committed on its behalf.
// verified says whether a certificate of the region proved from; without
// it (an insecure region, --insecure) nothing is known of the sender.
//
//   - Commands only the leader's own loop decides (bindings, cluster state
//     and taints, cluster removal, events, and everything learnt from
//     other regions) are refused from any peer,
//     verified or not: a forwarded one is forged or from a deposed leader.
//   - A peer reports health and capacity (ReportCluster), work statuses
//     (ReportStatus) and its leave (LeaveRegion) for its own cluster only.
//     Unverified, these are accepted for any cluster: an insecure region
//     trusts its network.
//   - User writes (ApplyObjects, DeleteObjects, ForgetRegion, Rebalance)
//     are accepted from any peer: the peer authorised the user who sent
//     them.
//   - Commands this version does not know are refused.
func AuthorizeForward(from string, verified bool, cmd []byte) error {
	var c shoalpb.Command
	if err := proto.Unmarshal(cmd, &c); err != nil {
		return fmt.Errorf("%w: undecodable command: %v", ErrForbidden, err)
	}
	own := func(what, cluster string) error {
		if verified && cluster != from {
			return fmt.Errorf("%w: the peer of cluster %q may not %s for cluster %q", ErrForbidden, from, what, cluster)
		}
		return nil
	}
	switch x := c.GetCmd().(type) {
	case *shoalpb.Command_ApplyObjects, *shoalpb.Command_DeleteObjects, *shoalpb.Command_ForgetRegion, *shoalpb.Command_Rebalance, *shoalpb.Command_Migrate:
		return nil
	case *shoalpb.Command_ReportCluster:
		return own("report health and capacity", x.ReportCluster.GetCluster().GetName())
	case *shoalpb.Command_ReportStatus:
		return own("report statuses", x.ReportStatus.GetCluster())
	case *shoalpb.Command_LeaveRegion:
		return own("leave", x.LeaveRegion.GetCluster())
	case *shoalpb.Command_SetBindings, *shoalpb.Command_SetClusterState, *shoalpb.Command_RemoveCluster,
		*shoalpb.Command_RecordEvents, *shoalpb.Command_MergeObjects, *shoalpb.Command_SetRegionSummary,
		*shoalpb.Command_RegionsHeard, *shoalpb.Command_SetRegionState:
		return fmt.Errorf("%w: %T is decided by the region leader's own loop, never forwarded (from the peer of cluster %q)",
			ErrForbidden, x, from)
	case nil:
		return fmt.Errorf("%w: empty command", ErrForbidden)
	default:
		return fmt.Errorf("%w: unknown command %T", ErrForbidden, x)
	}
}
