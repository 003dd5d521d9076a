// Package chaos is Shoal's chaos harness: it injects faults into a mesh of
// peers, runs scenarios of faults and writes, and checks throughout and at
// the end that Shoal kept its promises.
//
// The pieces:
//
//   - a Driver acts on a mesh: it kills, stops, continues and restarts peer
//     processes of a local mesh (node.Mesh, the mesh of `shoal dev`), and
//     injects network faults, clock skew and cluster faults into any peer
//     through its admin-scoped endpoints (POST /v1/agent/faults and
//     /v1/agent/simulation), which act through the transports' own hooks
//     (memberlist's transport, Raft's, the QUIC links) so that nothing needs
//     privileges; a local mesh some of whose peers drive real member
//     clusters (StartLocalWith) can also stop and start those clusters'
//     API servers (Members, the apiserver-stop fault); an AttachedDriver
//     runs a scenario against a mesh the harness did not start, with the
//     faults through the endpoints only;
//   - a Scenario is a list of steps (apply, delete, wait, fault, heal,
//     writes, bulk, sleep, repeat, random) read from YAML, with parameters
//     and a short variant for CI; the built-in scenarios and the
//     applications they deploy are embedded (List, Load, App). A seed
//     draws the random parts: the fault schedule, the writers' keys and
//     the peers each request goes to, each from its own source, so that
//     the same seed draws the same schedule however the writes go;
//   - the writers retry each write until a peer acknowledges it and record
//     only acknowledged writes (and a delete only when it deleted
//     something): the last acknowledged operation of each key is what
//     every region must end with;
//   - the observer samples every peer's view (status, workloads, clusters
//     and its simulated cluster's objects) on an interval and hands each
//     Sample, and every Event the harness causes, to the Checkers;
//   - each Checker is one invariant, checked online with bounded memory and
//     once more on the Final state after the last heal: no acknowledged
//     write lost, at most one leader per region and term, replicas Ready
//     again within the stated time after each fault, nothing deleted from a
//     cluster merely because it was unreachable or its peer restarted, no
//     churn while an edge link flaps, a guarded workload never running
//     twice, no stale status shown as Ready, no deleted object coming back,
//     and convergence after the last heal;
//   - a Report holds the timeline, the recoveries (after each heal, and
//     for a lost cluster the takeover while the fault holds) and every
//     invariant with its verdict and evidence, printed for a person,
//     written as report.json and drawn as timeline.svg.
//
// A fault between regions names the regions it acts on, a fault of peers
// the peers: the first leaves each region's leader in charge of its own
// clusters, the second cuts clusters off (what NoDeleteWhileCutOff and the
// takeover measure look at).
//
// Checkers take only Samples, Events and the Final state, so each one is
// tested against a planted violation without running a mesh.
// DefaultCheckers builds every invariant from the scenario's bounds
// (CheckParams).
package chaos
