// Command shoal is Shoal's one binary: the peer (agent), the local mesh
// (dev, demo) and the kubectl-like client (apply, get, describe, delete,
// status, leave).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

const usage = `Shoal runs applications across many Kubernetes clusters with no central
control plane.

Usage:
  shoal [--server URL] COMMAND [flags]

Peer and local mesh:
  agent      run one peer for one cluster (shoal agent -dev for a one-peer playground)
  dev        start a local mesh of peer processes on loopback
  demo       start a mesh, deploy the examples, kill a peer, watch failover and failback
  bench      how to measure failover, propagation, scheduling and footprint (make bench)
  leave      make the peer at --server leave its region gracefully and exit
  region     region forget NAME: drop a dead region from the mesh for good
  simulate   set the simulated cluster of the peer at --server ready, not-ready or to a capacity percent
  chaos      chaos list|show|run|inject: run fault scenarios and check Shoal's promises
  install    print the manifests that run a peer inside a member cluster
  ca         the mesh CA: ca init, ca issue (certificates of peers and CLI users)

Client (any peer answers; writes are forwarded to the region leader):
  apply      apply -f FILE|DIR|- (templates and PropagationPolicies)
  get        get clusters|workloads|policies [-o wide|yaml|json]
  describe   describe workload [KIND/]NAMESPACE/NAME
  delete     delete -f FILE|DIR|-  or  delete KIND NAMESPACE/NAME
  rebalance  rebalance KIND NAMESPACE/NAME...: place workloads afresh once (Karmada's WorkloadRebalancer)
  promote    promote KIND NAMESPACE/NAME --cluster C [--deps]: adopt an object running in a member cluster, without a restart
  migrate    migrate KIND NAMESPACE/NAME --from A --to B [--dry-run]: move a workload between clusters of a region, with no downtime
  clone      clone KIND NAMESPACE/NAME --from A --to B [--namespace N] [--name NEW]: copy an application, with its dependencies
  status     the region: leader, term, peers and their health
  version    print the version

The server defaults to $SHOAL_SERVER, else http://127.0.0.1:7480. For a peer
with TLS: --server https://..., --ca-cert (the mesh's ca.crt) and either
--client-cert/--client-key or --token ($SHOAL_CACERT, $SHOAL_CLIENT_CERT,
$SHOAL_CLIENT_KEY, $SHOAL_TOKEN).
Run "shoal COMMAND -h" for a command's flags.
`

// errUsage marks an error in how the command was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("shoal", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	server := global.String("server", "", "URL of any peer's HTTP API (default $SHOAL_SERVER or http://127.0.0.1:7480)")
	var auth client.Options
	global.StringVar(&auth.CACert, "ca-cert", os.Getenv("SHOAL_CACERT"), "CA certificate the peers' certificates chain to (default $SHOAL_CACERT; else the system's roots)")
	global.StringVar(&auth.ClientCert, "client-cert", os.Getenv("SHOAL_CLIENT_CERT"), "client certificate of the mesh (default $SHOAL_CLIENT_CERT)")
	global.StringVar(&auth.ClientKey, "client-key", os.Getenv("SHOAL_CLIENT_KEY"), "key of the client certificate (default $SHOAL_CLIENT_KEY)")
	global.StringVar(&auth.Token, "token", os.Getenv("SHOAL_TOKEN"), "bearer token (default $SHOAL_TOKEN)")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	env := &cliEnv{server: *server, auth: auth, stdin: stdin, stdout: stdout, stderr: stderr}
	if env.server == "" {
		env.server = os.Getenv("SHOAL_SERVER")
	}
	if env.server == "" {
		env.server = fmt.Sprintf("http://127.0.0.1:%d", node.DefaultHTTPPort)
	}
	cmd, cargs := rest[0], rest[1:]
	var err error
	switch cmd {
	case "agent":
		err = runAgent(env, cargs)
	case "dev":
		err = runDev(env, cargs)
	case "demo":
		err = runDemo(env, cargs)
	case "bench":
		// The benchmarks link the harness that starts real control
		// planes, which the peer must not carry: they are cmd/shoal-bench.
		err = errors.New("the benchmarks are a binary of their own; run make bench (it builds bin/shoal-bench and writes BENCHMARKS.md)")
	case "apply":
		err = runApply(env, cargs)
	case "get":
		err = runGet(env, cargs)
	case "describe":
		err = runDescribe(env, cargs)
	case "delete":
		err = runDelete(env, cargs)
	case "status":
		err = runStatus(env, cargs)
	case "leave":
		err = runLeave(env, cargs)
	case "region":
		err = runRegion(env, cargs)
	case "rebalance":
		err = runRebalance(env, cargs)
	case "promote":
		err = runPromote(env, cargs)
	case "migrate":
		err = runMigrate(env, cargs)
	case "clone":
		err = runClone(env, cargs)
	case "simulate":
		err = runSimulate(env, cargs)
	case "chaos":
		err = runChaos(env, cargs)
	case "install":
		err = runInstall(env, cargs)
	case "ca":
		err = runCA(env, cargs)
	case "version":
		fmt.Fprintln(stdout, "shoal", node.Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "shoal: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "shoal %s: %v\n", cmd, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// cliEnv is what every command gets.
type cliEnv struct {
	server string
	auth   client.Options
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (e *cliEnv) client() (*client.Client, error) {
	return client.NewWith(e.server, e.auth)
}

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// parseFlags parses flags that may come before, between or after positional
// arguments (as kubectl allows: get clusters -o wide).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// A bad flag is a usage error (exit 2), as for the global flags.
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func newFlagSet(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: shoal %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
