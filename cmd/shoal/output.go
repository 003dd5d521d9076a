package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoalmesh/shoal/api"
)

func tw(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// age renders an RFC 3339 time as kubectl does (5s, 3m, 2h, 4d).
func age(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "<unknown>"
	}
	d := time.Since(t)
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printClusters(w io.Writer, cs []api.ClusterView, wide bool) {
	t := tw(w)
	if wide {
		fmt.Fprintln(t, "NAME\tREGION\tZONE\tPROVIDER\tHEALTH\tWORKLOADS\tNODES\tCPU(avail/alloc)\tPODS(avail/alloc)\tTAINTS\tLABELS")
	} else {
		fmt.Fprintln(t, "NAME\tREGION\tZONE\tHEALTH\tWORKLOADS\tTAINTS")
	}
	for _, c := range cs {
		taints := make([]string, 0, len(c.Taints))
		for _, tn := range c.Taints {
			taints = append(taints, tn.Key+":"+tn.Effect)
		}
		// Every zone, comma-joined; a peer older than zone lists gives one.
		zones := orDash(strings.Join(api.ZonesOf(c.Zone, c.Zones), ","))
		if c.Health == "Unknown" && c.Age != "" {
			// Another region's cluster whose word is too old to trust.
			c.Health = "Unknown (" + roundAge(c.Age) + ")"
		}
		if wide {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%dm/%dm\t%d/%d\t%s\t%s\n", c.Name, c.Region, zones, orDash(c.Provider),
				c.Health, c.Workloads, c.Capacity.Nodes, c.Capacity.Available.CPUMilli, c.Capacity.Allocatable.CPUMilli,
				c.Capacity.Available.Pods, c.Capacity.Allocatable.Pods, orDash(strings.Join(taints, ",")), sortedLabels(c.Labels))
		} else {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\n", c.Name, c.Region, zones, c.Health, c.Workloads, orDash(strings.Join(taints, ",")))
		}
	}
	t.Flush()
}

// wholeState says how far a cluster is with an object that has no
// replicas: pending (nothing reported yet), applying (an older generation
// reported), applied (the current one, Healthy), or its health otherwise.
func wholeState(p api.PlacementView, generation int64) string {
	switch {
	case p.Error != "":
		return "error"
	case p.Health == "Pending":
		return "pending"
	case p.AppliedGeneration != generation:
		return "applying"
	case p.Health == "Healthy":
		return "applied"
	}
	return strings.ToLower(p.Health)
}

// readyString is the READY column: ready/bound replicas, or for a kind
// without replicas ready/bound clusters.
func readyString(v api.WorkloadView) string {
	if v.WithoutReplicas {
		return fmt.Sprintf("%d/%d clusters", v.ReadyClusters, v.BoundClusters)
	}
	return fmt.Sprintf("%d/%d", v.ReadyReplicas, v.BoundReplicas)
}

func placementString(v api.WorkloadView) string {
	parts := make([]string, 0, len(v.Placements))
	for _, p := range v.Placements {
		s := fmt.Sprintf("%s=%d/%d", p.Cluster, p.ReadyReplicas, p.Replicas)
		if v.WithoutReplicas {
			s = p.Cluster + "=" + wholeState(p, v.Generation)
		}
		switch {
		case p.Held:
			s += "(held)"
		case p.Evicting:
			s += "(evicting)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, " ")
}

func printWorkloads(w io.Writer, ws []api.WorkloadView, wide bool) {
	t := tw(w)
	if wide {
		fmt.Fprintln(t, "NAMESPACE\tKIND\tNAME\tREADY\tPLACEMENT (ready/replicas)\tPOLICY\tREASON")
	} else {
		fmt.Fprintln(t, "NAMESPACE\tKIND\tNAME\tREADY\tPLACEMENT (ready/replicas)")
	}
	for _, v := range ws {
		ready := readyString(v)
		if v.Unschedulable {
			ready += " (unschedulable)"
		}
		if wide {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(v.Namespace), v.Kind, v.Name, ready, placementString(v), orDash(v.Policy), v.Reason)
		} else {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", orDash(v.Namespace), v.Kind, v.Name, ready, placementString(v))
		}
	}
	t.Flush()
}

func printPolicies(w io.Writer, ps []api.PolicyView, wide bool) {
	t := tw(w)
	fmt.Fprintln(t, "KIND\tNAMESPACE\tNAME\tPRIORITY\tSELECTS")
	for _, p := range ps {
		sel := "<nothing>"
		if len(p.Selects) > 0 {
			sel = strings.Join(p.Selects, ", ")
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%d\t%s\n", p.Kind, orDash(p.Namespace), p.Name, p.Priority, sel)
		if wide {
			for _, warn := range p.Warnings {
				fmt.Fprintf(t, "\t\t\t\twarning: %s\n", warn)
			}
		}
	}
	t.Flush()
}

func printDetail(w io.Writer, d api.WorkloadDetail) {
	fmt.Fprintf(w, "Name:          %s\n", d.Name)
	fmt.Fprintf(w, "Namespace:     %s\n", orDash(d.Namespace))
	fmt.Fprintf(w, "Kind:          %s (%s)\n", d.Kind, d.APIVersion)
	fmt.Fprintf(w, "Generation:    %d\n", d.Generation)
	if d.WithoutReplicas {
		fmt.Fprintf(w, "Clusters:      %d bound, %d applied and Healthy (a %s has no replicas: each cluster gets it whole)\n", d.BoundClusters, d.ReadyClusters, d.Kind)
	} else {
		fmt.Fprintf(w, "Replicas:      %d desired, %d bound to clusters, %d ready\n", d.DesiredReplicas, d.BoundReplicas, d.ReadyReplicas)
	}
	fmt.Fprintf(w, "Policy:        %s\n", orDash(d.Policy))
	if d.AffinityTerm != "" {
		fmt.Fprintf(w, "Affinity term: %s\n", d.AffinityTerm)
	}
	state := "scheduled"
	if d.Unschedulable {
		state = "UNSCHEDULABLE"
	}
	fmt.Fprintf(w, "Scheduling:    %s: %s\n", state, orDash(d.Reason))
	if len(d.FailedOverFrom) > 0 {
		fmt.Fprintf(w, "Failed over:   from %s (moves back once they are stable)\n", strings.Join(d.FailedOverFrom, ", "))
	}
	if len(d.RequiredBy) > 0 {
		fmt.Fprintf(w, "Required by:   %s (propagateDeps: it goes wherever they go)\n", strings.Join(d.RequiredBy, ", "))
	}
	if len(d.MissingDependencies) > 0 {
		fmt.Fprintf(w, "MISSING:       %s (named by its pod template, no template in Shoal: apply them)\n", strings.Join(d.MissingDependencies, ", "))
	}
	if len(d.ApplicationFailover) > 0 {
		fmt.Fprintln(w, "Application failover (failover.application):")
		for _, f := range d.ApplicationFailover {
			fmt.Fprintf(w, "  off %s at %s (purgeMode %s): %s\n", f.Cluster, f.Time, f.PurgeMode, f.Reason)
			if len(f.PreservedLabels) > 0 {
				keys := slices.Sorted(maps.Keys(f.PreservedLabels))
				parts := make([]string, 0, len(keys))
				for _, k := range keys {
					parts = append(parts, k+"="+f.PreservedLabels[k])
				}
				fmt.Fprintf(w, "    preserved state, labelled on the new copies: %s\n", strings.Join(parts, ", "))
			}
			fmt.Fprintf(w, "    barred until %s\n", f.Until)
		}
	}
	if len(d.Migrations) > 0 {
		fmt.Fprintf(w, "Migrated:      %s (shoal migrate; migrate back to undo)\n", strings.Join(d.Migrations, ", "))
	}
	if d.ApplicationFailoverNote != "" {
		fmt.Fprintf(w, "Application failover waiting: %s\n", d.ApplicationFailoverNote)
	}
	fmt.Fprintln(w, "Placement:")
	if len(d.Placements) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		t := tw(w)
		fmt.Fprintln(t, "  CLUSTER\tREGION\tREPLICAS\tREADY\tHEALTH\tGENERATION\tOVERRIDES\tDETAIL")
		for _, p := range d.Placements {
			detail := p.Reason
			if p.Error != "" {
				detail = "error: " + p.Error
			}
			overrides := "-"
			if len(p.Overrides) > 0 {
				overrides = strings.Join(p.Overrides, ", ")
			}
			switch {
			case p.Held:
				detail = strings.TrimSpace("held: the cluster failed; what it runs is kept until failback. " + detail)
			case p.Evicting:
				detail = strings.TrimSpace("evicting: kept until replacements are Ready. " + detail)
			}
			replicas, ready := fmt.Sprint(p.Replicas), fmt.Sprint(p.ReadyReplicas)
			if d.WithoutReplicas {
				replicas, ready = "-", "-"
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Cluster, orDash(p.Region), replicas, ready, p.Health, p.AppliedGeneration, overrides, detail)
		}
		t.Flush()
	}
	fmt.Fprintln(w, "Events:")
	if len(d.Events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	t := tw(w)
	fmt.Fprintln(t, "  AGE\tTYPE\tREASON\tCLUSTER\tMESSAGE")
	for _, e := range d.Events {
		fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\n", age(e.Time), e.Type, e.Reason, orDash(e.Cluster), e.Message)
	}
	t.Flush()
}

func printStatus(w io.Writer, st api.StatusView) {
	fmt.Fprintf(w, "Region:   %s\n", st.Region)
	fmt.Fprintf(w, "This peer: %s (%s)\n", st.Cluster, st.State)
	leader := st.Leader
	if leader == "" {
		leader = "<none: election in progress>"
	}
	fmt.Fprintf(w, "Leader:   %s (term %d)\n", leader, st.Term)
	fmt.Fprintf(w, "Log:      commit %d, applied %d\n", st.CommitIndex, st.AppliedIndex)
	if st.Stale && st.StaleSince != nil {
		fmt.Fprintf(w, "Stale:    not caught up with a leader since %s (%s ago): serving the state last acted on\n",
			st.StaleSince.Format(time.RFC3339), time.Since(*st.StaleSince).Round(time.Second))
	}
	if st.ClockOffset != "" {
		fmt.Fprintf(w, "Clock:    skewed by %s (a clock fault; heal it with the clock layer's heal)\n", st.ClockOffset)
	}
	if st.Held {
		fmt.Fprintf(w, "Held:     the cluster is kept exactly as it is; %d change(s) withheld so far\n", st.WithheldChanges)
	}
	fmt.Fprintln(w, "Peers:")
	t := tw(w)
	fmt.Fprintln(t, "  CLUSTER\tGOSSIP\tRAFT\tHEALTH\tHTTP")
	for _, p := range st.Peers {
		raft := orDash(p.Suffrage)
		if p.Leader {
			raft += " (leader)"
		}
		fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\n", p.Cluster, p.Gossip, raft, orDash(p.Health), orDash(p.HTTPAddr))
	}
	t.Flush()
	if len(st.Regions) > 0 {
		fmt.Fprintln(w, "Other regions:")
		t = tw(w)
		fmt.Fprintln(t, "  REGION\tSTATE\tHEARD\tLEADER\tCLUSTERS\tREASON")
		for _, r := range st.Regions {
			heard := "never"
			if r.Age != "" {
				heard = roundAge(r.Age) + " ago"
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%d\t%s\n", r.Name, r.State, heard, orDash(r.Leader), r.Clusters, orDash(r.Reason))
		}
		t.Flush()
	}
	if m := st.Mesh; m != nil {
		// The digest's first bytes are enough to compare peers by eye.
		digest := m.Digest
		if len(digest) > 12 {
			digest = digest[:12]
		}
		fmt.Fprintf(w, "Mesh:     %d object(s), digest %s\n", m.Objects, orDash(digest))
	}
	if m := st.Mesh; m != nil && (len(st.Regions) > 0 || m.Syncs > 0) {
		fmt.Fprintf(w, "WAN:      %s; sent %d object(s) (%d bytes), received %d, merged %d, %d full resync(s), %d refused\n",
			orDash(st.WANAddr), m.ObjectsSent, m.BytesSent, m.ObjectsReceived, m.ObjectsMerged, m.FullSyncs, m.Refused)
		if len(m.Skewed) > 0 {
			fmt.Fprintf(w, "Skewed:   refused versions too far ahead from %s: check their clocks\n", strings.Join(m.Skewed, ", "))
		}
	}
}

// roundAge shortens a Go duration string to whole seconds (or
// milliseconds under a second).
func roundAge(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func printSimulation(w io.Writer, v api.SimulationView) {
	state := "Ready"
	if !v.Ready {
		state = "NotReady"
	}
	fmt.Fprintf(w, "Simulated cluster %s: %s, %d object(s)", v.Cluster, state, len(v.Objects))
	if v.CapacityPercent != 100 {
		fmt.Fprintf(w, "; its nodes offer %d%% of their allocatable", v.CapacityPercent)
	}
	fmt.Fprintln(w)
	t := tw(w)
	fmt.Fprintln(t, "KIND\tNAMESPACE\tNAME\tUID\tGENERATION\tREADY\tAGE")
	for _, o := range v.Objects {
		ready := "-"
		if o.Replicas != nil {
			ready = fmt.Sprintf("%d/%d", *o.Ready, *o.Replicas)
			if *o.Pending > 0 {
				ready += fmt.Sprintf(" (%d pending)", *o.Pending)
			}
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", o.Kind, orDash(o.Namespace), o.Name, o.UID, o.Generation, ready, age(o.Created.Format(time.RFC3339Nano)))
	}
	t.Flush()
}
