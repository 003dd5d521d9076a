package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// spawner starts child processes from one goroutine locked to its own OS
// thread. Linux sends Pdeathsig when the thread that forked a child exits,
// not the process, so children forked from whatever thread the Go runtime
// happened to use could be killed early if that thread ever went away; this
// thread lives until close.
type spawner struct {
	reqs chan spawnReq
	quit chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), quit: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	// Never unlocked: when loop returns, the thread exits with it, which
	// also kills (by Pdeathsig) any child that Stop did not reach.
	runtime.LockOSThread()
	for {
		select {
		case r := <-s.reqs:
			r.res <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd: cmd, res: res}:
		return <-res
	case <-s.quit:
		return errors.New("kubetest: control plane stopped")
	}
}

func (s *spawner) close() { close(s.quit) }

// process is one child: a component of a cluster (or the shared etcd).
type process struct {
	name string // e.g. "kube-apiserver of member1"
	log  string // path of its log file
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
	err  error         // how it exited; read after done is closed
}

// startProcess starts bin with args, its output appended to logPath.
func startProcess(sp *spawner, name, logPath, bin string, args []string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== kubetest %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sp.start(cmd); err != nil {
		return nil, fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process by PID with SIGKILL and waits until it is gone.
func (p *process) kill() {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// failure wraps err with the process's name, its log's path and the log's
// last lines, which usually say what went wrong.
func (p *process) failure(err error) error {
	who, end := p.name, tail(p.log, 20)
	if p.exited() {
		who = fmt.Sprintf("%s exited (%v)", p.name, p.err)
		if strings.Contains(end, "address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
	}
	return fmt.Errorf("%s: %w; its log %s ends:\n%s", who, err, p.log, end)
}

// errAddrInUse marks the failure of a process that could not bind its port.
var errAddrInUse = errors.New("address already in use")

// tail returns the last n lines of the file at path, indented.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "\t(" + err.Error() + ")"
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// waitFor polls cond every interval until it returns true, returns an
// error, p exits, or ctx ends. The last error from cond is kept for the
// timeout message.
func waitFor(ctx context.Context, p *process, what string, cond func(context.Context) (bool, error)) error {
	const interval = 200 * time.Millisecond
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if p != nil && p.exited() {
			return p.failure(fmt.Errorf("while waiting for %s", what))
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("waiting for %s: %w (last error: %v)", what, context.Cause(ctx), last)
			if p != nil {
				return p.failure(err)
			}
			return err
		case <-time.After(interval):
		}
	}
}

// freePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
// All are held open together so that they differ from one another.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeFile writes data to dir/name and returns the path.
func writeFile(dir, name string, data []byte, perm os.FileMode) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, data, perm)
}

// rssKiB returns the resident set size of a process from /proc, 0 if unknown.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		var kib int64
		if _, err := fmt.Sscanf(string(line), "VmRSS: %d kB", &kib); err == nil {
			return kib
		}
	}
	return 0
}
