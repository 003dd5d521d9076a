package kubetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// ErrNoBinaries is returned (wrapped, with the folder and the missing file)
// by Start when the folder of Kubernetes binaries lacks one of them. Run
// `make k8s-tools` to build them, or set SHOAL_K8S_BIN.
var ErrNoBinaries = errors.New("missing Kubernetes binaries: run `make k8s-tools` at the repository root " +
	"(it builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from Go modules), " +
	"or point SHOAL_K8S_BIN at a folder that has them")

// ErrStopped is returned by StartAPIServer after ControlPlane.Stop.
var ErrStopped = errors.New("kubetest: control plane stopped")

// binaries are the files Start needs in Options.Bin; kwok-stages.yaml holds
// kwok's Stage objects (make k8s-tools copies them from the kwok module).
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml"}

// Options say what Start runs. The zero value is valid: three clusters of
// two nodes each, under a temporary folder.
type Options struct {
	// Clusters is the number of member clusters; 3 if zero. Ignored if
	// Names is set.
	Clusters int
	// Names names the clusters; "member1", "member2", ... if empty. A name
	// is also the cluster's etcd prefix and folder under Dir.
	Names []string
	// NodesPerCluster is the number of kwok Nodes in each cluster; 2 if zero.
	NodesPerCluster int
	// NodeCPU, NodeMemory and NodePods are each Node's capacity and
	// allocatable, as Kubernetes quantities; "8", "16Gi" and "110" if empty.
	NodeCPU, NodeMemory, NodePods string
	// Dir holds certificates, kubeconfigs, etcd's data and one log per
	// process; pass t.TempDir(). If empty, Start makes a temporary folder
	// and Stop removes it.
	Dir string
	// Bin is the folder of binaries; $SHOAL_K8S_BIN if empty, else
	// bin/k8s-<version> at the repository root.
	Bin string
	// Logf, if set, receives progress lines (pass t.Logf). It may be called
	// from several goroutines at once.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Names) == 0 {
		n := o.Clusters
		if n == 0 {
			n = 3
		}
		for i := range n {
			o.Names = append(o.Names, fmt.Sprintf("member%d", i+1))
		}
	}
	seen := map[string]bool{}
	for _, n := range o.Names {
		if n == "" || strings.ContainsAny(n, "/ \t\n") || seen[n] {
			return o, fmt.Errorf("kubetest: cluster name %q is empty, repeated or has a slash or space", n)
		}
		seen[n] = true
	}
	o.Clusters = len(o.Names)
	if o.NodesPerCluster == 0 {
		o.NodesPerCluster = 2
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.NodeCPU, "8")
	def(&o.NodeMemory, "16Gi")
	def(&o.NodePods, "110")
	for _, q := range []string{o.NodeCPU, o.NodeMemory, o.NodePods} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return o, fmt.Errorf("kubetest: node capacity %q: %w", q, err)
		}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Bin == "" {
		o.Bin = os.Getenv("SHOAL_K8S_BIN")
	}
	if o.Bin == "" {
		bin, err := defaultBin()
		if err != nil {
			return o, fmt.Errorf("kubetest: %w: SHOAL_K8S_BIN is unset and %v", ErrNoBinaries, err)
		}
		o.Bin = bin
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return o, fmt.Errorf("kubetest: no %s in %s: %w", b, o.Bin, ErrNoBinaries)
		}
	}
	return o, nil
}

// defaultBin finds the repository root above the working directory and
// returns bin/k8s-<version> there, the version read from the k8stools go.mod,
// as the Makefile does.
func defaultBin() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		gomod := filepath.Join(dir, "deploy", "k8stools", "go.mod")
		if v, err := requiredVersion(gomod, "k8s.io/kubernetes"); err == nil {
			return filepath.Join(dir, "bin", "k8s-"+v), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no deploy/k8stools/go.mod above the working directory")
		}
		dir = parent
	}
}

// requiredVersion returns the version of module mod in the go.mod at path.
func requiredVersion(path, mod string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == mod {
				return fields[i+1], nil
			}
		}
	}
	return "", fmt.Errorf("%s does not require %s", path, mod)
}

// maxAttempts bounds the tries to start etcd or an API server on a free
// port that another process took meanwhile.
const maxAttempts = 3

// ControlPlane is a running set of member clusters sharing one etcd.
type ControlPlane struct {
	// Clusters in the order of Options.Names.
	Clusters []*Cluster
	// EtcdURL is the shared etcd's client URL.
	EtcdURL string
	// Dir is the folder of every file and log.
	Dir string

	opts      Options
	sp        *spawner
	ca        *ca
	removeDir bool

	mu      sync.Mutex
	etcd    *process
	stopped bool
}

// Start runs the control planes Options describe and returns once every
// API server is ready and every Node is Ready and schedulable. If ctx has no
// deadline Start gives up after three minutes. On error it has already
// stopped whatever it started; the error names the log of the process at
// fault.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
	}
	began := time.Now()
	cp := &ControlPlane{opts: opts, Dir: opts.Dir, sp: newSpawner()}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if cp.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "kubetest-"); err != nil {
			return nil, err
		}
		cp.removeDir = true
	}
	if cp.ca, err = newCA(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err := cp.startEtcd(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == maxAttempts {
			return nil, err
		}
		opts.Logf("kubetest: etcd's port was taken, trying another")
	}
	for i, name := range opts.Names {
		cp.Clusters = append(cp.Clusters, &Cluster{Name: name, cp: cp, index: i})
	}
	errs := make([]error, len(cp.Clusters))
	var wg sync.WaitGroup
	for i, c := range cp.Clusters {
		wg.Go(func() { errs[i] = c.start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.Logf("kubetest: %d clusters of %d nodes ready in %s (files in %s)",
		len(cp.Clusters), opts.NodesPerCluster, time.Since(began).Round(100*time.Millisecond), cp.Dir)
	return cp, nil
}

// startEtcd runs the etcd every API server shares, tuned for tests: no
// fsync (the data dies with the test), a 1 GiB quota, frequent snapshots so
// that little raft log stays in memory.
func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	cp.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	args := []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + cp.EtcdURL,
		"--advertise-client-urls=" + cp.EtcdURL,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=kubetest=" + peer,
		"--unsafe-no-fsync",
		"--quota-backend-bytes=" + strconv.Itoa(1<<30),
		"--snapshot-count=5000",
		"--log-level=warn",
	}
	p, err := startProcess(cp.sp, "etcd", filepath.Join(cp.Dir, "etcd.log"), filepath.Join(cp.opts.Bin, "etcd"), args)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	cp.etcd = p
	cp.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	return waitFor(ctx, p, "etcd /health", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.EtcdURL+"/health", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`), nil
	})
}

// Stop kills every process Start started, by PID, and waits for each to
// end: kwok, schedulers and controller managers first, then the API
// servers, then etcd. It is safe to call more than once and from t.Cleanup.
func (cp *ControlPlane) Stop() {
	cp.mu.Lock()
	if cp.stopped {
		cp.mu.Unlock()
		return
	}
	cp.stopped = true
	cp.mu.Unlock()
	for _, c := range cp.Clusters {
		c.stop()
	}
	cp.etcd.kill()
	cp.sp.close()
	if cp.removeDir {
		os.RemoveAll(cp.Dir)
	}
}

// isStopped reports whether Stop has begun.
func (cp *ControlPlane) isStopped() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.stopped
}

// RSS returns the resident memory, in bytes, of each running process
// (keyed "etcd" and "<cluster>/<component>"), read from /proc.
func (cp *ControlPlane) RSS() map[string]int64 {
	out := map[string]int64{}
	cp.mu.Lock()
	if cp.etcd != nil && !cp.etcd.exited() {
		out["etcd"] = rssKiB(cp.etcd.cmd.Process.Pid) << 10
	}
	cp.mu.Unlock()
	for _, c := range cp.Clusters {
		for comp, p := range c.processes() {
			if !p.exited() {
				out[c.Name+"/"+comp] = rssKiB(p.cmd.Process.Pid) << 10
			}
		}
	}
	return out
}
