package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
)

const requestTimeout = 60 * time.Second

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// readInputs reads -f arguments: files, directories (their .yaml, .yml and
// .json files, sorted) or "-" for standard input, joined as one
// multi-document stream.
func readInputs(env *cliEnv, files []string) ([]byte, error) {
	if len(files) == 0 {
		return nil, usageErr("-f FILE is required (a file, a directory or - for standard input)")
	}
	var out bytes.Buffer
	add := func(data []byte) {
		if out.Len() > 0 {
			out.WriteString("\n---\n")
		}
		out.Write(data)
	}
	for _, f := range files {
		if f == "-" {
			data, err := io.ReadAll(env.stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			add(data)
			continue
		}
		info, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			add(data)
			continue
		}
		entries, err := os.ReadDir(f)
		if err != nil {
			return nil, err
		}
		found := false
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(f, e.Name()))
			if err != nil {
				return nil, err
			}
			add(data)
			found = true
		}
		if !found {
			return nil, fmt.Errorf("directory %s has no .yaml, .yml or .json files", f)
		}
	}
	return out.Bytes(), nil
}

func runApply(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "apply", "apply -f FILE|DIR|- [-f ...]")
	var files multiFlag
	fs.Var(&files, "f", "file, directory or - (repeatable)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	data, err := readInputs(env, files)
	if err != nil {
		return err
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := c.Apply(ctx, data)
	if err != nil {
		return err
	}
	printResults(env, resp)
	return nil
}

func printResults(env *cliEnv, resp api.ApplyResponse) {
	for _, w := range resp.Warnings {
		fmt.Fprintf(env.stderr, "Warning: %s\n", w)
	}
	for _, r := range resp.Results {
		fmt.Fprintf(env.stdout, "%s %s\n", r.Object, r.Result)
	}
}

func runDelete(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "delete", "delete -f FILE|DIR|-  |  delete KIND NAMESPACE/NAME")
	var files multiFlag
	fs.Var(&files, "f", "file, directory or - (repeatable)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var resp api.ApplyResponse
	switch {
	case len(files) > 0 && len(rest) == 0:
		data, err := readInputs(env, files)
		if err != nil {
			return err
		}
		resp, err = c.DeleteDocuments(ctx, data)
		if err != nil {
			return err
		}
	case len(files) == 0 && len(rest) == 2:
		ns, name := splitNamespaced(rest[1])
		resp, err = c.Delete(ctx, rest[0], ns, name)
		if err != nil {
			return err
		}
	default:
		return usageErr("give either -f FILE or KIND NAMESPACE/NAME")
	}
	printResults(env, resp)
	return nil
}

// splitNamespaced splits NAMESPACE/NAME; a bare NAME has no namespace.
func splitNamespaced(s string) (string, string) {
	if ns, name, ok := strings.Cut(s, "/"); ok {
		return ns, name
	}
	return "", s
}

func runGet(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "get", "get clusters|workloads|policies [-o wide|yaml|json]")
	output := fs.String("o", "", "output: wide, yaml or json (default a table)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("get what? clusters, workloads or policies")
	}
	switch *output {
	case "", "wide", "yaml", "json":
	default:
		return usageErr("-o %q: use wide, yaml or json", *output)
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var v any
	var table func(wide bool)
	switch rest[0] {
	case "clusters", "cluster":
		cs, err := c.Clusters(ctx)
		if err != nil {
			return err
		}
		for i := range cs { // a peer older than zone lists gives only zone
			cs[i].Zones = api.ZonesOf(cs[i].Zone, cs[i].Zones)
		}
		v, table = cs, func(wide bool) { printClusters(env.stdout, cs, wide) }
	case "workloads", "workload":
		ws, err := c.Workloads(ctx)
		if err != nil {
			return err
		}
		v, table = ws, func(wide bool) { printWorkloads(env.stdout, ws, wide) }
	case "policies", "policy":
		ps, err := c.Policies(ctx)
		if err != nil {
			return err
		}
		v, table = ps, func(wide bool) { printPolicies(env.stdout, ps, wide) }
	default:
		return usageErr("unknown resource %q: use clusters, workloads or policies", rest[0])
	}
	return printAs(env.stdout, *output, v, table)
}

func printAs(w io.Writer, output string, v any, table func(wide bool)) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	default:
		table(output == "wide")
		return nil
	}
}

func runDescribe(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "describe", "describe workload [KIND/]NAMESPACE/NAME [-o yaml|json]")
	output := fs.String("o", "", "output: yaml or json (default text)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || (rest[0] != "workload" && rest[0] != "workloads") {
		return usageErr("describe workload [KIND/]NAMESPACE/NAME")
	}
	kind, nsName := "", rest[1]
	if parts := strings.Split(rest[1], "/"); len(parts) == 3 {
		kind, nsName = parts[0], parts[1]+"/"+parts[2]
	}
	ns, name := splitNamespaced(nsName)
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ds, err := c.Describe(ctx, kind, ns, name)
	if err != nil {
		return err
	}
	return printAs(env.stdout, *output, ds, func(bool) {
		for i, d := range ds {
			if i > 0 {
				fmt.Fprintln(env.stdout)
			}
			printDetail(env.stdout, d)
		}
	})
}

func runStatus(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "status", "status [-o yaml|json]")
	output := fs.String("o", "", "output: yaml or json (default text)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	return printAs(env.stdout, *output, st, func(bool) { printStatus(env.stdout, st) })
}

func runLeave(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "leave", "leave")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := c.Leave(ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "the peer at %s is leaving its region\n", c.Base())
	return nil
}

func runSimulate(env *cliEnv, args []string) error {
	const synopsis = "simulate ready|not-ready|capacity PERCENT|objects [-o yaml|json]"
	fs := newFlagSet(env, "simulate", synopsis)
	output := fs.String("o", "", "output of simulate objects: yaml or json (default a table)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || len(rest) != 1 && rest[0] != "capacity" {
		return usageErr(synopsis)
	}
	switch *output {
	case "", "yaml", "json":
	default:
		return usageErr("-o %q: use yaml or json", *output)
	}
	var percent int
	if rest[0] == "capacity" {
		if len(rest) != 2 {
			return usageErr("want: shoal simulate capacity PERCENT (0 drains the cluster: nothing new fits; 100 is full)")
		}
		if percent, err = strconv.Atoi(strings.TrimSuffix(rest[1], "%")); err != nil || percent < 0 || percent > 100 {
			return usageErr("capacity %q: want a percent from 0 (drained: nothing new fits) to 100 (full)", rest[1])
		}
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	switch rest[0] {
	case "ready", "not-ready":
		if err := c.SetSimulatedReady(ctx, rest[0] == "ready"); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "simulated cluster at %s is now %s\n", c.Base(), rest[0])
		return nil
	case "capacity":
		if err := c.SetSimulatedCapacity(ctx, percent); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "simulated cluster at %s now offers %d%% of its nodes' allocatable\n", c.Base(), percent)
		return nil
	case "objects":
		v, err := c.Simulation(ctx)
		if err != nil {
			return err
		}
		return printAs(env.stdout, *output, v, func(bool) { printSimulation(env.stdout, v) })
	}
	return usageErr(synopsis)
}

func sortedLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ",")
}

func runRegion(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "region", "region forget NAME")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || rest[0] != "forget" {
		return usageErr("want: shoal region forget NAME (a region dead for placement, gone for good)")
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := c.ForgetRegion(ctx, rest[1]); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "region %s forgotten: its share stays with the other regions; if it returns it joins as a new region\n", rest[1])
	return nil
}

// runRebalance asks for a fresh placement of workloads, once.
func runRebalance(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "rebalance", "rebalance KIND NAMESPACE/NAME [KIND NAMESPACE/NAME ...]")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || len(rest)%2 != 0 {
		return usageErr("want: shoal rebalance KIND NAMESPACE/NAME [KIND NAMESPACE/NAME ...]")
	}
	var refs []api.WorkloadRef
	for i := 0; i < len(rest); i += 2 {
		ns, name := splitNamespaced(rest[i+1])
		refs = append(refs, api.WorkloadRef{Kind: rest[i], Namespace: ns, Name: name})
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := c.Rebalance(ctx, refs...)
	if err != nil {
		return err
	}
	for _, n := range resp.Requested {
		fmt.Fprintf(env.stdout, "%s: placed afresh once; the replicas that move stay until their replacements are Ready (describe shows the Rebalanced event)\n", n)
	}
	return nil
}
