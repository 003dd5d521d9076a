package gossip

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"google.golang.org/protobuf/proto"
)

// MetaVersion is the format version of the PeerMeta this package gossips.
// Metadata with another version is not read (the member is still tracked).
const MetaVersion = 1

var (
	// ErrMetaTooLarge is returned (wrapped) by New and UpdateMeta when the
	// encoded metadata exceeds memberlist's limit (memberlist.MetaMaxSize,
	// 512 bytes). The message gives the size; use fewer or shorter labels
	// or zones.
	ErrMetaTooLarge = errors.New("gossip: metadata too large")
	// ErrBadMeta is returned (wrapped) by New and UpdateMeta when the
	// metadata is nil or names another cluster or region than the Config,
	// and by the decoder for remote metadata that cannot be read.
	ErrBadMeta = errors.New("gossip: bad metadata")
)

// prepareMeta checks a local peer's metadata against cfg and returns the
// bytes to gossip. It does not modify meta: Region and Cluster are filled in
// from cfg when empty and Version is set to MetaVersion on a copy.
func prepareMeta(cfg Config, meta *shoalpb.PeerMeta) (*shoalpb.PeerMeta, []byte, error) {
	if meta == nil {
		return nil, nil, fmt.Errorf("%w: metadata is nil", ErrBadMeta)
	}
	m := proto.Clone(meta).(*shoalpb.PeerMeta)
	if m.Region == "" {
		m.Region = cfg.Region
	}
	if m.Cluster == "" {
		m.Cluster = cfg.Name
	}
	if m.Region != cfg.Region {
		return nil, nil, fmt.Errorf("%w: metadata names region %q but the pool is region %q", ErrBadMeta, m.Region, cfg.Region)
	}
	if m.Cluster != cfg.Name {
		return nil, nil, fmt.Errorf("%w: metadata names cluster %q but the pool member is %q", ErrBadMeta, m.Cluster, cfg.Name)
	}
	m.Version = MetaVersion
	buf, err := encodeMeta(m)
	if err != nil {
		return nil, nil, err
	}
	return m, buf, nil
}

// encodeMeta marshals meta deterministically (labels in key order, so that
// unchanged metadata encodes to unchanged bytes and memberlist does not see
// a change) and checks memberlist's size limit.
func encodeMeta(meta *shoalpb.PeerMeta) ([]byte, error) {
	buf, err := proto.MarshalOptions{Deterministic: true}.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	if len(buf) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: metadata of cluster %q encodes to %d bytes but memberlist allows at most %d: use fewer or shorter labels or zones (%d labels, %d zones now)",
			ErrMetaTooLarge, meta.GetCluster(), len(buf), memberlist.MetaMaxSize, len(meta.GetLabels()), len(meta.GetZones()))
	}
	return buf, nil
}

// decodeMeta reads the metadata a remote member gossips. Anything from the
// network may be garbage: every failure is an error wrapping ErrBadMeta,
// never a panic. name is the member's memberlist name, which the metadata
// must agree with.
func decodeMeta(name string, buf []byte) (*shoalpb.PeerMeta, error) {
	if len(buf) == 0 {
		return nil, fmt.Errorf("%w: member %q gossips no metadata", ErrBadMeta, name)
	}
	if len(buf) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: member %q gossips %d bytes of metadata, more than %d", ErrBadMeta, name, len(buf), memberlist.MetaMaxSize)
	}
	var m shoalpb.PeerMeta
	if err := proto.Unmarshal(buf, &m); err != nil {
		return nil, fmt.Errorf("%w: member %q: %v", ErrBadMeta, name, err)
	}
	if m.Version != MetaVersion {
		return nil, fmt.Errorf("%w: member %q gossips metadata version %d; this peer reads version %d", ErrBadMeta, name, m.Version, MetaVersion)
	}
	if m.Cluster != name {
		return nil, fmt.Errorf("%w: member %q gossips metadata of cluster %q", ErrBadMeta, name, m.Cluster)
	}
	return &m, nil
}
