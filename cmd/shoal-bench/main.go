// Command shoal-bench measures Shoal — failover, propagation, scheduling
// throughput and footprint — and writes the figures, with how each was
// measured and on what machine, to a Markdown file (BENCHMARKS.md through
// make bench).
//
// It is a binary of its own because it links the harness that starts real
// Kubernetes control planes (deploy/kubetest) and with it client-go's typed
// clientset, which the peer must not carry. The peers it measures run the
// production binary: $SHOAL_BIN, else the shoal binary beside this one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// errUsage marks an error in how the command was called (exit code 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func main() {
	err := benchMain(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "shoal-bench: %s\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "shoal-bench: %v\n", err)
		os.Exit(1)
	}
}

// benchMain runs the scenarios args ask for and writes the report.
func benchMain(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("shoal-bench", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(stderr, "Usage: shoal-bench [--trials N] [--only NAME] [--out FILE]\n\n"+
			"Runs the peers as $SHOAL_BIN, else the shoal binary beside this one (make bench builds both).\n\nFlags:\n")
		fset.PrintDefaults()
	}
	trials := fset.Int("trials", 20, "trials per figure (failover figures: at least 10; propagation: 5 times this)")
	only := fset.String("only", "", "run only this scenario: "+benchNames())
	out := fset.String("out", "BENCHMARKS.md", "Markdown file the figures are written to")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if rest := fset.Args(); len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	if *trials < 1 {
		return usageErr("--trials %d: need at least 1", *trials)
	}
	scenarios := benchScenarios
	if *only != "" {
		i := slices.IndexFunc(benchScenarios, func(s benchScenario) bool { return s.name == *only })
		if i < 0 {
			return usageErr("--only %q: no such scenario; choose one of %s", *only, benchNames())
		}
		scenarios = benchScenarios[i : i+1]
	}
	bin := os.Getenv("SHOAL_BIN")
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		// The peers must run the production binary, which this is not.
		bin = filepath.Join(filepath.Dir(self), "shoal")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	b := &bencher{out: stdout, bin: bin, trials: *trials, start: time.Now()}
	m := readMachine()
	b.progress("shoal-bench: %d scenario(s), %d trial(s); %d CPUs, load average %s", len(scenarios), *trials, m.CPUs, m.LoadStart)
	var figures []*benchFigure
	var failed []string
	for _, s := range scenarios {
		b.progress("==> %s: %s", s.name, s.what)
		t0 := time.Now()
		fs, err := s.run(ctx, b)
		for _, f := range fs {
			f.Command = s.name
		}
		figures = append(figures, fs...)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %s: %w", s.name, ctx.Err())
			}
			b.progress("    %s FAILED: %v", s.name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", s.name, err))
			continue
		}
		for _, f := range fs {
			st := summarize(f.Samples)
			b.progress("    %s: median %s, p99 %s (n=%d) %s", f.Title, fmtValue(st.Median, f.Unit), fmtValue(st.P99, f.Unit), st.N, verdict(f, st))
		}
		b.progress("    %s done in %s", s.name, time.Since(t0).Round(time.Second))
	}
	m.LoadEnd = loadAvg()
	m.Duration = time.Since(b.start)
	doc := renderBenchmarks(m, scenarios, figures, failed, *only != "", *trials)
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		return err
	}
	b.progress("wrote %s in %s", *out, m.Duration.Round(time.Second))
	if len(failed) > 0 {
		return errors.New("some scenarios failed:\n  " + strings.Join(failed, "\n  "))
	}
	return nil
}
