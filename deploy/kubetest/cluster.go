package kubetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is one member cluster: its own kube-apiserver (objects under the
// etcd prefix /<Name>), kube-controller-manager, kube-scheduler and kwok.
type Cluster struct {
	// Name is the cluster's name, its etcd prefix and its folder under Dir.
	Name string
	// Server is the API server's URL, https://127.0.0.1:<port>. The port
	// stays the same across StopAPIServer and StartAPIServer.
	Server string
	// CAFile is the PEM file of the CA that signed the server's certificate.
	CAFile string
	// Kubeconfig is the path of an admin kubeconfig (bearer token of user
	// kubetest-admin in group system:masters, CA embedded).
	Kubeconfig string
	// RESTConfig is the admin client configuration. Use rest.CopyConfig
	// before changing it.
	RESTConfig *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Dir holds the cluster's keys, kubeconfigs and logs.
	Dir string

	cp    *ControlPlane
	index int
	port  int
	token string // admin bearer token
	caPEM []byte

	mu        sync.Mutex // guards the processes and apiserver restarts
	apiserver *process
	others    map[string]*process // controller manager, scheduler, kwok
}

// serviceIP is the ClusterIP of the kubernetes Service in the range below.
var serviceIP = net.IPv4(10, 96, 0, 1)

const serviceRange = "10.96.0.0/16"

// start writes the cluster's files, starts its processes and waits until
// the API server is ready and the Nodes are Ready.
func (c *Cluster) start(ctx context.Context) error {
	cp := c.cp
	c.Dir = filepath.Join(cp.Dir, c.Name)
	c.caPEM = cp.ca.certPEM
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	certPEM, keyPEM, err := cp.ca.servingCert(serviceIP)
	if err != nil {
		return err
	}
	saKey, saPub, err := serviceAccountKeys()
	if err != nil {
		return err
	}
	c.token = randomToken()
	files := map[string][]byte{
		"ca.crt":     c.caPEM,
		"tls.crt":    certPEM,
		"tls.key":    keyPEM,
		"sa.key":     saKey,
		"sa.pub":     saPub,
		"tokens.csv": []byte(c.token + ",kubetest-admin,kubetest-admin,system:masters\n"),
	}
	for name, data := range files {
		if _, err := writeFile(c.Dir, name, data, 0o600); err != nil {
			return err
		}
	}
	c.CAFile = filepath.Join(c.Dir, "ca.crt")
	// Another process may take the free port before the API server binds
	// it: then try another.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		if err := c.listenOn(ports[0]); err != nil {
			return err
		}
		err = c.StartAPIServer(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == maxAttempts {
			return err
		}
		cp.opts.Logf("kubetest: %s: port %d was taken, trying another", c.Name, ports[0])
	}
	for _, comp := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		if err := c.startComponent(comp, c.componentArgs(comp)); err != nil {
			return err
		}
	}
	if err := c.createNodes(ctx); err != nil {
		return err
	}
	if err := c.waitNodes(ctx); err != nil {
		return c.others["kwok"].failure(err)
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager creates.
	return waitFor(ctx, c.others["kube-controller-manager"], c.Name+": default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

// listenOn sets the API server's port and the admin kubeconfig and
// clients that reach it there.
func (c *Cluster) listenOn(port int) (err error) {
	c.port = port
	c.Server = "https://127.0.0.1:" + strconv.Itoa(port)
	if c.Kubeconfig, err = writeKubeconfig(c.Dir, "admin.kubeconfig", c.Name, c.Server, c.caPEM, c.token); err != nil {
		return err
	}
	c.RESTConfig = restConfig(c.Server, c.caPEM, c.token)
	c.Client, err = kubernetes.NewForConfig(c.RESTConfig)
	return err
}

// apiserverArgs keep the API server small: no priority and fairness, few
// requests in flight, no profiling, and a quick shutdown.
func (c *Cluster) apiserverArgs() []string {
	f := func(name string) string { return filepath.Join(c.Dir, name) }
	return []string{
		"--etcd-servers=" + c.cp.EtcdURL,
		"--etcd-prefix=/" + c.Name,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.port),
		"--tls-cert-file=" + f("tls.crt"),
		"--tls-private-key-file=" + f("tls.key"),
		"--cert-dir=" + f("pki"),
		"--token-auth-file=" + f("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + f("sa.pub"),
		"--service-account-signing-key-file=" + f("sa.key"),
		"--service-cluster-ip-range=" + serviceRange,
		// Endpoints may not hold a loopback address; nothing in a test
		// reaches the API server through the kubernetes Service anyway.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--max-requests-inflight=100",
		"--max-mutating-requests-inflight=50",
		"--delete-collection-workers=1",
		"--profiling=false",
		"--shutdown-delay-duration=0s",
		"--event-ttl=15m",
	}
}

// componentArgs are the flags of the controller manager, the scheduler and
// kwok. None serves a port: nothing polls their health, and several
// clusters share the host.
func (c *Cluster) componentArgs(comp string) []string {
	f := func(name string) string { return filepath.Join(c.Dir, name) }
	kc := "--kubeconfig=" + c.Kubeconfig
	switch comp {
	case "kube-controller-manager":
		return []string{kc,
			"--leader-elect=false",
			"--secure-port=0",
			"--cluster-name=" + c.Name,
			"--service-account-private-key-file=" + f("sa.key"),
			"--root-ca-file=" + f("ca.crt"),
			"--use-service-account-credentials=false",
			// No pod CIDRs, autoscaling or volume plugins without kubelets.
			"--controllers=*,-node-ipam-controller,-horizontal-pod-autoscaler-controller," +
				"-persistentvolume-attach-detach-controller,-persistentvolume-expander-controller,-selinux-warning-controller",
			// kwok heartbeats every 20 to 45 s; leave room on a busy machine.
			"--node-monitor-grace-period=2m",
			"--kube-api-qps=50",
			"--kube-api-burst=100",
		}
	case "kube-scheduler":
		return []string{kc, "--leader-elect=false", "--secure-port=0"}
	default: // kwok
		return []string{kc,
			"--config=" + filepath.Join(c.cp.opts.Bin, "kwok-stages.yaml"),
			"--manage-all-nodes=true",
			"--cidr=10.244.0.1/16",
			"--node-ip=10.255.0.1",
		}
	}
}

func (c *Cluster) startComponent(comp string, args []string) error {
	p, err := startProcess(c.cp.sp, comp+" of "+c.Name, filepath.Join(c.Dir, comp+".log"),
		filepath.Join(c.cp.opts.Bin, comp), args)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.others == nil {
		c.others = map[string]*process{}
	}
	c.others[comp] = p
	return nil
}

// StartAPIServer starts this cluster's kube-apiserver again after
// StopAPIServer, on the same port with the same etcd prefix and keys, and
// waits until it answers /readyz. It does nothing if the API server is
// running. The other components reconnect by themselves.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.cp.isStopped() {
		return ErrStopped
	}
	c.mu.Lock()
	p := c.apiserver
	if p == nil || p.exited() {
		var err error
		p, err = startProcess(c.cp.sp, "kube-apiserver of "+c.Name, filepath.Join(c.Dir, "kube-apiserver.log"),
			filepath.Join(c.cp.opts.Bin, "kube-apiserver"), c.apiserverArgs())
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.apiserver = p
	}
	c.mu.Unlock()
	return waitFor(ctx, p, c.Name+": kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		err := c.Readyz(ctx)
		return err == nil, err
	})
}

// StopAPIServer kills this cluster's kube-apiserver (SIGKILL, like a crash)
// and waits until it is gone; etcd keeps its data. Clients of the cluster
// then fail to connect until StartAPIServer.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	p.kill()
}

// Readyz asks the API server's /readyz and returns nil if it answers ok.
func (c *Cluster) Readyz(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("%s: /readyz: %w", c.Name, err)
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		return fmt.Errorf("%s: /readyz says %q", c.Name, s)
	}
	return nil
}

// KubeconfigForToken writes a kubeconfig with this cluster's server and CA
// and the given bearer token (for example a ServiceAccount's, from the
// TokenRequest API) and returns its path.
func (c *Cluster) KubeconfigForToken(token string) (string, error) {
	if token == "" {
		return "", errors.New("kubetest: KubeconfigForToken: empty token")
	}
	return writeKubeconfig(c.Dir, tokenFileName(token), c.Name, c.Server, c.caPEM, token)
}

// RESTConfigForToken is KubeconfigForToken's client configuration.
func (c *Cluster) RESTConfigForToken(token string) *rest.Config {
	return restConfig(c.Server, c.caPEM, token)
}

// processes returns the cluster's running processes by component.
func (c *Cluster) processes() map[string]*process {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*process{}
	for comp, p := range c.others {
		out[comp] = p
	}
	if c.apiserver != nil {
		out["kube-apiserver"] = c.apiserver
	}
	return out
}

// stop kills the cluster's processes, the API server last.
func (c *Cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, comp := range []string{"kwok", "kube-scheduler", "kube-controller-manager"} {
		c.others[comp].kill()
	}
	c.apiserver.kill()
}
