package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/examples"
)

const (
	// benchFailbackDelay shortens the time between failover trials; it
	// plays no part in the failover figure itself.
	benchFailbackDelay = "3s"
	// failoverPoll is how often the failover scenarios poll a peer.
	failoverPoll = 20 * time.Millisecond
)

func benchClusterFailover(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	var figs []*benchFigure
	var errs []error
	for _, profile := range []string{"lan", "local"} {
		f, err := clusterFailover(ctx, b, profile)
		if f != nil {
			figs = append(figs, f)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s profile: %w", profile, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return figs, errors.Join(errs...)
}

func clusterFailover(ctx context.Context, b *bencher, profile string) (*benchFigure, error) {
	n := b.failoverTrials()
	title := "Cluster failover, " + profile + " gossip profile"
	if profile == "lan" {
		title += " (headline)"
	}
	f := &benchFigure{
		Title: title, Unit: "ms", Target: "≤ 5 s median",
		Check:   func(s benchStats) bool { return s.Median <= 5000 },
		Compare: "Karmada: failover off by default; when on, 40 s grace before tainting",
	}
	var detect []float64
	b.progress("  starting 3 peer processes (--gossip-profile %s)", profile)
	m, err := startBenchMesh(ctx, b, 3, []string{"--gossip-profile", profile, "--failback-delay", benchFailbackDelay})
	if err != nil {
		return f, err
	}
	defer m.close()
	apply := m.clients[m.names()[0]]
	docs, err := examples.Documents()
	if err != nil {
		return f, err
	}
	if _, err := apply.Apply(ctx, docs); err != nil {
		return f, err
	}
	if _, err := waitWorkloads(ctx, apply, 100*time.Millisecond, 60*time.Second, "the examples Ready", func(ws []api.WorkloadView) bool { return settled(ws, "") }); err != nil {
		return f, err
	}
	for i := 0; i < n; i++ {
		leader, err := m.leader(ctx, "")
		if err != nil {
			return f, err
		}
		var followers []string
		for _, name := range m.names() {
			if name != leader {
				followers = append(followers, name)
			}
		}
		victim := followers[i%len(followers)]
		observer := followers[(i+1)%len(followers)]
		obs := m.clients[observer]

		// Time to detection, seen by the observer, as a breakdown.
		dctx, dcancel := context.WithCancel(ctx)
		detected := make(chan time.Time, 1)
		t0 := time.Now()
		go func() {
			for dctx.Err() == nil {
				if cs, err := obs.Clusters(dctx); err == nil {
					for _, c := range cs {
						if c.Name == victim && c.Health == "Unreachable" {
							detected <- time.Now()
							return
						}
					}
				}
				select {
				case <-dctx.Done():
				case <-time.After(failoverPoll):
				}
			}
		}()
		if err := m.Kill(victim); err != nil {
			dcancel()
			return f, err
		}
		done, err := waitWorkloads(ctx, obs, failoverPoll, 90*time.Second, "failover from "+victim,
			func(ws []api.WorkloadView) bool { return failedOver(ws, victim) })
		dcancel()
		if err != nil {
			return f, err
		}
		sample := ms(done.Sub(t0))
		f.Samples = append(f.Samples, sample)
		det := ""
		select {
		case t := <-detected:
			detect = append(detect, ms(t.Sub(t0)))
			det = fmt.Sprintf(", marked Unreachable after %.2fs", ms(t.Sub(t0))/1000)
		default:
		}
		b.progress("  trial %d/%d: killed %s (leader %s): replicas Ready elsewhere after %.2fs%s", i+1, n, victim, leader, sample/1000, det)

		if err := m.Restart(victim); err != nil {
			return f, err
		}
		if _, err := waitWorkloads(ctx, obs, 100*time.Millisecond, 120*time.Second, "failback to "+victim,
			func(ws []api.WorkloadView) bool { return settled(ws, victim) }); err != nil {
			return f, err
		}
		if err := m.waitHealthy(ctx, 60*time.Second); err != nil {
			return f, err
		}
	}
	ds := summarize(detect)
	f.How = fmt.Sprintf("A region of 3 `shoal agent` processes (`node.StartMesh`, agent flags `--gossip-profile %s "+
		"--failback-delay %s`; the mesh passes `--gossip-profile local` first and Go's flag package keeps the last value, "+
		"so the peers run the %s profile). The examples (`web`: 8 replicas Divided by static weight; `log-agent`: "+
		"a Deployment of 2 replicas and a ConfigMap, Duplicated) are applied and Ready; simulated replicas become "+
		"Ready 200 ms after placement (the default). Each trial kills a follower (never the leader: that is the next "+
		"figure), alternating between the two, with SIGKILL, and polls `GET /v1/workloads` on the other follower every "+
		"20 ms until no workload has a non-evicting placement on the killed cluster, every workload has readyReplicas "+
		"== boundReplicas >= desiredReplicas and every non-evicting placement is Healthy at the current generation. "+
		"The figure is the time from the SIGKILL to the first poll that sees this. Then the peer is restarted with "+
		"its data dir and the next trial waits for failback (every workload on it again and Ready) and for every "+
		"peer to be alive and every cluster Ready. Default tolerations of the unreachable taint are 0 s.",
		profile, benchFailbackDelay, profile)
	if ds.N > 0 {
		f.Details = append(f.Details, fmt.Sprintf("Breakdown: the killed cluster was reported Unreachable (gossip declared "+
			"the peer dead, the leader committed it) after median %.2f s (min %.2f s, max %.2f s, polled on the observer "+
			"every 20 ms); the rest is tainting, rescheduling, the survivors' reconcilers applying the new placement, "+
			"the simulated 200 ms to Ready, and the status reports being committed.", ds.Median/1000, ds.Min/1000, ds.Max/1000))
	}
	if profile == "lan" {
		f.Details = append(f.Details, "",
			"Karmada for comparison (as the issue states it): Karmada leaves cluster failover off by default "+
				"(the `Failover` feature gate); when it is on, a cluster that stops answering is tainted only after a "+
				"40 s grace period (karmada-controller-manager's `--cluster-monitor-grace-period`), so its replicas "+
				"start moving 40 s after the failure at the earliest. Shoal's failover is on by default.")
	}
	return f, nil
}

func benchLeaderFailover(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	n := b.failoverTrials()
	f := &benchFigure{
		Title: "Leader failover: leader killed → next write acknowledged", Unit: "ms", Target: "≤ 1.5 s p99",
		Check:   func(s benchStats) bool { return s.P99 <= 1500 },
		Compare: "–",
	}
	b.progress("  starting 3 peer processes (--gossip-profile lan)")
	m, err := startBenchMesh(ctx, b, 3, []string{"--gossip-profile", "lan"})
	if err != nil {
		return []*benchFigure{f}, err
	}
	defer m.close()
	var attempts []int
	for i := 0; i < n; i++ {
		leader, err := m.leader(ctx, "")
		if err != nil {
			return []*benchFigure{f}, err
		}
		names := slices.DeleteFunc(m.names(), func(s string) bool { return s == leader })
		via := m.clients[names[i%len(names)]]
		t0 := time.Now()
		if err := m.Kill(leader); err != nil {
			return []*benchFigure{f}, err
		}
		tries := 0
		for {
			tries++
			doc := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-leader\n  namespace: default\ndata:\n  trial: %q\n  attempt: %q\n", fmt.Sprint(i), fmt.Sprint(tries))
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := via.Apply(actx, []byte(doc))
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil || time.Since(t0) > 60*time.Second {
				return []*benchFigure{f}, fmt.Errorf("no write acknowledged %s after killing leader %s: %w", time.Since(t0).Round(time.Second), leader, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		sample := msSince(t0)
		f.Samples = append(f.Samples, sample)
		attempts = append(attempts, tries)
		b.progress("  trial %d/%d: killed leader %s: write acknowledged after %.2fs (%d request(s))", i+1, n, leader, sample/1000, tries)
		if err := m.Restart(leader); err != nil {
			return []*benchFigure{f}, err
		}
		if err := m.waitHealthy(ctx, 60*time.Second); err != nil {
			return []*benchFigure{f}, err
		}
	}
	rc := consensus.DefaultConfig()
	f.How = fmt.Sprintf("A region of 3 `shoal agent` processes with the LAN gossip profile and Raft's timings as configured "+
		"(`consensus.DefaultConfig`: heartbeat and election timeout %s, leader lease %s, commit timeout %s). Each trial finds the "+
		"leader (`GET /v1/status`), kills its process with SIGKILL and, through one of the two survivors (alternating), "+
		"sends `POST /v1/apply` of a small ConfigMap in a loop, each request bounded to 10 s by the client and retried "+
		"5 ms after an error, until one answers 200 (committed by the new leader and applied on the survivor that took "+
		"it). The figure is the time from the SIGKILL to that 200. A request sent while no leader is known is held by "+
		"the peer, which forwards it as soon as Raft tells it of a new leader (and otherwise retries with a 10-200 ms "+
		"backoff), so most trials need one request. Between trials the killed peer is restarted and the next trial "+
		"waits until every peer knows the same leader, sees all peers alive and every cluster Ready.",
		rc.HeartbeatTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout)
	f.Details = append(f.Details, "Where the time goes: a survivor notices the silence after one to three heartbeat "+
		"timeouts (its check runs at random intervals of one to two), and a vote is won only once both survivors have "+
		"noticed (a follower that still hears of a leader refuses to vote); then the new leader commits the write, and "+
		"a survivor that is a follower applies it when the leader next tells it the commit index (within one to two "+
		"commit timeouts).")
	f.Details = append(f.Details, fmt.Sprintf("Requests per trial: %v.", attempts))
	return []*benchFigure{f}, nil
}
