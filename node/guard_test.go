package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

const guardedLedger = `apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec: {containers: [{name: ledger, image: postgres}]}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: ledger
  namespace: default
  annotations: {shoal.io/partition-guard: majority}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: ledger}]
  placement:
    replicaScheduling: {replicaSchedulingType: Divided}
`

var ledgerKey = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "ledger"}

// Found by the chaos harness (partition-and-heal): the peers never gave
// their leader the mesh's view of which regions it hears, so the
// partition guard could not fence, and a region cut from the two others
// took over the share it believed dead while the others did the same:
// the guarded workload ran twice.
func TestRegionsPartitionGuardFencesTheMinorityInRealPeers(t *testing.T) {
	rs := newRegions(t, "eu", "us", "ap")
	eventually(t, "every region knows the others", rs.knowsAll)
	rs.apply("eu", guardedLedger)
	var home string
	eventually(t, "the ledger runs once", func() error {
		home = ""
		var total int32
		for _, n := range rs.order {
			if r := rs.replicas(n, ledgerKey); r > 0 {
				home, total = n, total+r
			}
		}
		if total != 1 {
			return fmt.Errorf("ledger runs %s", rs.split(ledgerKey))
		}
		return nil
	})
	for _, n := range rs.order {
		if n != home {
			rs.wan.CutRegions(home, n)
		}
	}
	// Six grace periods: the minority fences, the majority finds it dead
	// and starts the ledger. Never two copies at once.
	end := time.Now().Add(6 * rs.cfgs["eu"].RegionGrace)
	for time.Now().Before(end) {
		var total int32
		for _, n := range rs.order {
			total += max(rs.replicas(n, ledgerKey), 0)
		}
		if total > 1 {
			t.Fatalf("the guarded ledger runs twice during the partition: %s", rs.split(ledgerKey))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := rs.replicas(home, ledgerKey); r != 0 {
		t.Fatalf("the region cut from the majority (%s) still runs the ledger: %s", home, rs.split(ledgerKey))
	}
	rs.wan.Heal()
}
