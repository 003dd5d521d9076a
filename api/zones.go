package api

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"
)

// A cluster sits in zero or more zones, as Karmada's Cluster spec.zones
// (the single spec.zone is deprecated there). The records and gossip
// metadata peers exchange carry both a list of zones and, for peers older
// than the list, a single zone: the list's first entry.

// ZonesOf gives a cluster's zones from what a record or gossip metadata
// carries: the list when it has one, otherwise the single zone of an older
// peer (as Karmada's migrateZoneToZones turns spec.zone into spec.zones),
// otherwise none. Empty entries and repeats in the list are dropped, the
// first occurrence keeping its place. The result is a new slice.
func ZonesOf(zone string, zones []string) []string {
	var out []string
	for _, z := range zones {
		if z != "" && !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	if len(out) == 0 && zone != "" {
		return []string{zone}
	}
	return out
}

// FirstZone is the zone a record gives peers that read only one: the first
// of zones, or "".
func FirstZone(zones []string) string {
	if len(zones) == 0 {
		return ""
	}
	return zones[0]
}

// CheckZones checks the zones a cluster is configured with, as Karmada
// validates spec.zones: each must be a valid Kubernetes label value
// (letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit, at most 63 characters). Shoal also refuses an empty zone and a zone
// given twice, which Karmada lets through. The error names each bad zone
// and what to do.
func CheckZones(zones []string) error {
	var errs []error
	seen := make(map[string]bool, len(zones))
	for _, z := range zones {
		switch {
		case z == "":
			errs = append(errs, errors.New("zone: empty name; give each zone a name (--zone a --zone b, or --zone a,b)"))
		case seen[z]:
			errs = append(errs, fmt.Errorf("zone %q given twice; give each zone once", z))
		default:
			if len(validation.IsValidLabelValue(z)) > 0 {
				errs = append(errs, fmt.Errorf("zone %q: not a Kubernetes label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", z))
			}
		}
		seen[z] = true
	}
	return errors.Join(errs...)
}
