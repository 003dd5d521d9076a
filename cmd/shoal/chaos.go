package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/chaos"
)

const chaosUsage = `shoal chaos list                 the built-in scenarios
shoal chaos show NAME            print a built-in scenario's YAML (a start for your own)
shoal chaos run NAME|FILE [--seed N] [--short] [--report DIR] [--dir DIR] [--keep]
                                 start a local mesh, run the scenario, check every invariant
shoal chaos inject --layer L --action A [--region R] [--cluster C] [--addr A]
                   [--delay D --jitter D] [--loss P] [--offset D]
                                 inject a fault into the peer at --server (any mesh; admin scope)`

func runChaos(env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usageErr("%s", chaosUsage)
	}
	switch args[0] {
	case "list":
		return runChaosList(env, args[1:])
	case "show":
		return runChaosShow(env, args[1:])
	case "run":
		return runChaosRun(env, args[1:])
	case "inject":
		return runChaosInject(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.stdout, chaosUsage)
		return nil
	}
	return usageErr("unknown chaos command %q\n%s", args[0], chaosUsage)
}

func runChaosList(env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usageErr("chaos list takes no arguments")
	}
	all, err := chaos.List()
	if err != nil {
		return err
	}
	for _, s := range all {
		fmt.Fprintf(env.stdout, "%-20s %d regions x %d clusters  %s\n", s.Name, s.Mesh.Regions, s.Mesh.Clusters, s.Description)
	}
	return nil
}

func runChaosShow(env *cliEnv, args []string) error {
	if len(args) != 1 {
		return usageErr("chaos show NAME")
	}
	data, ok := chaos.BuiltinYAML(args[0])
	if !ok {
		return usageErr("%q is not a built-in scenario (shoal chaos list)", args[0])
	}
	_, err := env.stdout.Write(data)
	return err
}

func runChaosRun(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "chaos run", "chaos run NAME|FILE [flags]")
	seed := fs.Int64("seed", 1, "seed of the scenario's random parts (the same seed draws the same schedule)")
	short := fs.Bool("short", false, "the CI-sized variant of the scenario (its short params)")
	reportDir := fs.String("report", "", "write report.json and timeline.svg into this directory")
	dir := fs.String("dir", "", "directory for the mesh's data dirs and logs (default a temporary one, removed unless --keep)")
	keep := fs.Bool("keep", false, "keep the mesh's data dirs and logs")
	interval := fs.Duration("interval", 300*time.Millisecond, "how often every peer's view is sampled")
	peers := fs.String("peers", "", "run against a mesh already running instead of starting one: its peer list (the peers.json of `shoal dev`, or a JSON list of {region, cluster, http}), reached with the CLI's credentials (admin scope); only faults through the peers' endpoints")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("chaos run NAME|FILE: one scenario")
	}
	s, err := chaos.Load(rest[0], *short)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if *peers != "" {
		if *dir != "" || *keep {
			return usageErr("--dir and --keep are for the mesh chaos run starts; with --peers it starts none")
		}
		d, err := chaos.Attach(*peers, env.auth)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "chaos: %s (seed %d%s): against the %d peers of %s\n",
			s.Name, *seed, map[bool]string{true: ", short"}[*short], len(d.Peers()), *peers)
		return runChaosScenario(env, ctx, s, d, chaos.Options{Seed: *seed, Short: *short, Progress: env.stdout, Interval: *interval}, *reportDir, "")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	meshDir := *dir
	if meshDir == "" {
		if meshDir, err = os.MkdirTemp("", "shoal-chaos-"); err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(meshDir)
		}
	}
	fmt.Fprintf(env.stdout, "chaos: %s (seed %d%s): starting a mesh of %d regions x %d clusters\n",
		s.Name, *seed, map[bool]string{true: ", short"}[*short], s.Mesh.Regions, s.Mesh.Clusters)
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	d, err := chaos.StartLocal(sctx, self, filepath.Join(meshDir, "mesh"), s)
	scancel()
	if err != nil {
		return err
	}
	defer d.Close()
	kept := ""
	if *keep {
		kept = meshDir
	}
	return runChaosScenario(env, ctx, s, d, chaos.Options{Seed: *seed, Short: *short, Progress: env.stdout, Interval: *interval}, *reportDir, kept)
}

// runChaosScenario runs s on d's mesh, prints the report (and saves it in
// reportDir, if set) and fails when an invariant did; kept names the
// mesh's kept data dirs, if any.
func runChaosScenario(env *cliEnv, ctx context.Context, s *chaos.Scenario, d chaos.Driver, opts chaos.Options, reportDir, kept string) error {
	report, runErr := chaos.Run(ctx, s, d, opts)
	fmt.Fprintln(env.stdout)
	if err := report.WriteText(env.stdout); err != nil {
		return err
	}
	if reportDir != "" {
		if err := report.Save(reportDir); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "report: %s, %s\n", filepath.Join(reportDir, "report.json"), filepath.Join(reportDir, "timeline.svg"))
	}
	if kept != "" {
		fmt.Fprintf(env.stdout, "the mesh's data dirs and logs are kept in %s\n", kept)
	}
	if runErr != nil {
		return fmt.Errorf("the scenario did not run to its end: %w", runErr)
	}
	if !report.Passed {
		var failed []string
		for _, v := range report.Invariants {
			if !v.Passed {
				failed = append(failed, v.Name)
			}
		}
		return fmt.Errorf("%d invariants failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

func runChaosInject(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "chaos inject", "chaos inject --action ACTION [flags]")
	var f api.Fault
	fs.StringVar(&f.Layer, "layer", "all", "wan (links to other regions), gossip, raft, clock or all")
	fs.StringVar(&f.Action, "action", "", "cut, cut-one-way, delay, loss, skew, heal or heal-all")
	fs.StringVar(&f.Region, "region", "", "the other end's region (wan)")
	fs.StringVar(&f.Cluster, "cluster", "", "the other end's cluster")
	fs.StringVar(&f.Addr, "addr", "", "the other end's address (wan, raft)")
	fs.StringVar(&f.Delay, "delay", "", "delay (e.g. 100ms)")
	fs.StringVar(&f.Jitter, "jitter", "", "jitter of the delay")
	fs.Float64Var(&f.Probability, "loss", 0, "loss probability (0 to 1)")
	fs.StringVar(&f.Offset, "offset", "", "clock offset of a skew (e.g. -2s)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("chaos inject takes flags only, got %q", rest)
	}
	if f.Action == "loss" && f.Probability == 0 {
		return usageErr("--action loss needs --loss P")
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := c.Fault(ctx, f); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "fault %s on layer %s injected into the peer at %s\n", f.Action, f.Layer, c.Base())
	return nil
}
