package deploy

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
)

//go:embed manifests/*.yaml
var manifests embed.FS

// InstallOptions says how to run a peer inside a member cluster.
type InstallOptions struct {
	Region, Cluster string
	// Zones are the zones the cluster runs in, each given to the peer as
	// its own --zone.
	Zones    []string
	Provider string
	// Labels are key=value cluster labels.
	Labels []string
	// Namespace the peer runs in (default shoal-system).
	Namespace string
	// Image of the shoal binary.
	Image string
	// Advertise is the address other peers reach this one at (the
	// Service's load-balancer address, or a node address with NodePort).
	Advertise string
	// Join lists other peers' gossip addresses, comma-separated.
	Join string
	// JoinWAN lists WAN addresses (host:port) of peers of other regions,
	// comma-separated.
	JoinWAN         string
	BootstrapExpect int
	GossipProfile   string
	// GossipKey is the region's gossip key, base64; empty generates one
	// (print it and give the same one to every peer of the region).
	GossipKey string
	// ServiceType is LoadBalancer (default) or NodePort.
	ServiceType                    string
	HTTPPort, GossipPort, RaftPort int
	// WANPort is the UDP port of the QUIC links between regions.
	WANPort                   int
	StorageSize, StorageClass string
	// Allow lists the resources the peer may manage, as RESOURCE.GROUP
	// ("deployments.apps", "configmaps" for the core group). Empty means
	// DefaultAllowedResources.
	Allow []string
	// TLS, if not nil, is the peer's certificate: rendered as the
	// kubernetes.io/tls Secret shoal-tls, mounted read-only and given to
	// the peer as --tls-ca, --tls-cert and --tls-key. nil leaves the
	// peer's ports unauthenticated.
	TLS *InstallTLS
}

// InstallTLS is a peer's certificate material, PEM. The caller checks it
// (shoal install does, with the mesh CA); here it is only carried.
type InstallTLS struct {
	CACert, Cert, Key []byte
}

// TLSMountPath is where the shoal-tls Secret is mounted in the peer's pod.
const TLSMountPath = "/etc/shoal/tls"

// DefaultAllowedResources are the kinds a peer manages unless told
// otherwise: the usual workload and configuration kinds.
var DefaultAllowedResources = []string{
	"deployments.apps", "statefulsets.apps", "daemonsets.apps", "replicasets.apps",
	"jobs.batch", "cronjobs.batch",
	"services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts",
	"ingresses.networking.k8s.io", "poddisruptionbudgets.policy",
	"horizontalpodautoscalers.autoscaling",
}

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	resourceRE  = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	quantityRE  = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$`)
	labelKVRE   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?=[A-Za-z0-9]?([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	safeValueRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.:/@,]*$`)
)

type rbacRule struct {
	Group     string
	Resources []string
}

func (r rbacRule) GroupYAML() string     { return fmt.Sprintf("%q", r.Group) }
func (r rbacRule) ResourcesYAML() string { return strings.Join(r.Resources, ", ") }

func (o *InstallOptions) defaults() error {
	if o.Namespace == "" {
		o.Namespace = "shoal-system"
	}
	if o.ServiceType == "" {
		o.ServiceType = "LoadBalancer"
	}
	if o.GossipProfile == "" {
		o.GossipProfile = "lan"
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 7480
	}
	if o.GossipPort == 0 {
		o.GossipPort = 7481
	}
	if o.RaftPort == 0 {
		o.RaftPort = 7482
	}
	if o.WANPort == 0 {
		o.WANPort = 7483
	}
	if o.StorageSize == "" {
		o.StorageSize = "1Gi"
	}
	if len(o.Allow) == 0 {
		o.Allow = DefaultAllowedResources
	}
	if o.GossipKey == "" {
		key, err := NewGossipKey()
		if err != nil {
			return err
		}
		o.GossipKey = key
	}
	return nil
}

// NewGossipKey returns a new random 32-byte gossip key, base64.
func NewGossipKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

func (o *InstallOptions) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(dnsLabel.MatchString(o.Region), "--region %q must be a DNS label", o.Region)
	check(dnsLabel.MatchString(o.Cluster), "--cluster %q must be a DNS label", o.Cluster)
	check(dnsLabel.MatchString(o.Namespace), "--namespace %q must be a DNS label", o.Namespace)
	check(o.Image != "" && safeValueRE.MatchString(o.Image), "--image %q is required and must be an image reference", o.Image)
	check(o.Advertise != "" && safeValueRE.MatchString(o.Advertise), "--advertise is required: the address the other peers reach this one at (its Service's load-balancer address)")
	check(o.Join == "" || safeValueRE.MatchString(o.Join), "--join %q: want host:port,host:port", o.Join)
	check(o.JoinWAN == "" || safeValueRE.MatchString(o.JoinWAN), "--join-wan %q: want host:port,host:port", o.JoinWAN)
	if err := api.CheckZones(o.Zones); err != nil {
		errs = append(errs, fmt.Errorf("--zone: %w", err))
	}
	check(o.Provider == "" || safeValueRE.MatchString(o.Provider), "--provider %q has characters that are not allowed", o.Provider)
	check(o.BootstrapExpect >= 0 && o.BootstrapExpect <= 5, "--bootstrap-expect %d must be between 0 and 5", o.BootstrapExpect)
	check(o.GossipProfile == "lan" || o.GossipProfile == "edge", "--gossip-profile %q: use lan or edge", o.GossipProfile)
	check(o.ServiceType == "LoadBalancer" || o.ServiceType == "NodePort", "--service-type %q: use LoadBalancer or NodePort", o.ServiceType)
	check(quantityRE.MatchString(o.StorageSize), "--storage-size %q is not a quantity like 1Gi", o.StorageSize)
	check(o.StorageClass == "" || dnsLabel.MatchString(o.StorageClass), "--storage-class %q must be a DNS name", o.StorageClass)
	for _, p := range []int{o.HTTPPort, o.GossipPort, o.RaftPort, o.WANPort} {
		check(p > 0 && p < 65536, "port %d out of range", p)
	}
	if key, err := base64.StdEncoding.DecodeString(o.GossipKey); err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
		errs = append(errs, errors.New("--gossip-key must be base64 of 16, 24 or 32 bytes"))
	}
	if t := o.TLS; t != nil {
		check(len(t.CACert) > 0 && len(t.Cert) > 0 && len(t.Key) > 0, "--tls-dir: the CA certificate, the peer certificate and its key are all required")
	}
	for _, l := range o.Labels {
		check(labelKVRE.MatchString(l), "--label %q: want key=value with Kubernetes label syntax", l)
	}
	for _, r := range o.Allow {
		check(resourceRE.MatchString(r), "--allow %q: want RESOURCE.GROUP in lower case, e.g. deployments.apps or configmaps", r)
	}
	return errors.Join(errs...)
}

// rules groups the allowed resources by API group, sorted.
func (o *InstallOptions) rules() []rbacRule {
	byGroup := map[string][]string{}
	for _, r := range o.Allow {
		res, group, _ := strings.Cut(r, ".")
		byGroup[group] = append(byGroup[group], res)
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	out := make([]rbacRule, 0, len(groups))
	for _, g := range groups {
		res := byGroup[g]
		sort.Strings(res)
		out = append(out, rbacRule{Group: g, Resources: res})
	}
	return out
}

// InstallManifests renders the manifests that run a peer in its member
// cluster: namespace, service account, the narrowest RBAC it needs, the
// gossip key Secret, the certificate Secret (with opts.TLS), a Service for
// its ports and a StatefulSet whose data dir is on a persistent volume. The result is checked to be valid YAML.
func InstallManifests(opts InstallOptions) ([]byte, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(manifests, "manifests/peer.yaml")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	b64 := base64.StdEncoding.EncodeToString
	data := struct {
		InstallOptions
		Rules           []rbacRule
		GossipKeyBase64 string
		TLSMountPath    string
		TLSCABase64     string
		TLSCertBase64   string
		TLSKeyBase64    string
	}{InstallOptions: opts, Rules: opts.rules(), GossipKeyBase64: b64([]byte(opts.GossipKey)), TLSMountPath: TLSMountPath}
	if t := opts.TLS; t != nil {
		data.TLSCABase64, data.TLSCertBase64, data.TLSKeyBase64 = b64(t.CACert), b64(t.Cert), b64(t.Key)
	}
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	for i, doc := range strings.Split(buf.String(), "\n---\n") {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			return nil, fmt.Errorf("rendered manifest %d is not valid YAML: %w", i+1, err)
		}
	}
	return buf.Bytes(), nil
}
