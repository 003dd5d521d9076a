package main

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/transport"
)

const caUsage = `Usage:
  shoal ca init  --dir DIR --mesh NAME
  shoal ca issue --dir DIR --region R --cluster C [--ip IP]... [--dns NAME]... [--days N]
  shoal ca issue --dir DIR --client NAME [--days N]

init creates the mesh CA (DIR/ca.crt, DIR/ca.key); keep ca.key private.
issue writes DIR/REGION-CLUSTER.crt and .key for a peer (give every
address it is reached at with --ip or --dns), or DIR/client-NAME.crt and
.key for a CLI user.
`

func runCA(env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, caUsage)
		return usageErr("ca needs a subcommand: init or issue")
	}
	switch args[0] {
	case "init":
		return runCAInit(env, args[1:])
	case "issue":
		return runCAIssue(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.stdout, caUsage)
		return nil
	}
	return usageErr("ca %q: use init or issue", args[0])
}

func runCAInit(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "ca init", "ca init --dir DIR --mesh NAME")
	dir := fs.String("dir", "", "directory for ca.crt and ca.key (created if missing)")
	mesh := fs.String("mesh", "", "name of the mesh (a DNS label); every certificate names it")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	if *dir == "" || *mesh == "" {
		return usageErr("--dir and --mesh are required")
	}
	if err := transport.CheckName("--mesh", *mesh); err != nil {
		return usageErr("%v", err)
	}
	if _, err := transport.InitCA(*dir, *mesh, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "created the CA of mesh %s: %s (share it), %s (keep it private)\n",
		*mesh, filepath.Join(*dir, transport.CACertFile), filepath.Join(*dir, transport.CAKeyFile))
	return nil
}

func runCAIssue(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "ca issue", "ca issue --dir DIR (--region R --cluster C | --client NAME) [flags]")
	dir := fs.String("dir", "", "directory of the CA; the certificate is written there")
	region := fs.String("region", "", "region of the peer")
	cluster := fs.String("cluster", "", "cluster of the peer")
	client := fs.String("client", "", "name of a CLI user (instead of --region and --cluster)")
	var ips, dns listFlag
	fs.Var(&ips, "ip", "IP address the peer is reached at, e.g. its --advertise address (repeatable; default 127.0.0.1)")
	fs.Var(&dns, "dns", "DNS name the peer is reached at (repeatable; default localhost)")
	days := fs.Int("days", 365, "days the certificate is valid")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	if *dir == "" {
		return usageErr("--dir is required")
	}
	if *days < 1 {
		return usageErr("--days %d must be at least 1", *days)
	}
	ca, err := transport.LoadCA(*dir)
	if err != nil {
		return fmt.Errorf("loading the CA (create it with shoal ca init): %w", err)
	}
	req := transport.IssueRequest{Validity: time.Duration(*days) * 24 * time.Hour}
	var name string
	switch {
	case *client != "" && (*region != "" || *cluster != ""):
		return usageErr("give either --client or --region and --cluster")
	case *client != "":
		req.Identity = transport.ClientIdentity(ca.Mesh, *client)
		name = "client-" + *client
		if len(ips) > 0 || len(dns) > 0 {
			return usageErr("--ip and --dns are for peers")
		}
	case *region != "" && *cluster != "":
		req.Identity = transport.PeerIdentity(ca.Mesh, *region, *cluster)
		name = *region + "-" + *cluster
		if len(ips) == 0 && len(dns) == 0 {
			ips, dns = listFlag{"127.0.0.1"}, listFlag{"localhost"}
		}
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				return usageErr("--ip %q is not an IP address", s)
			}
			req.IPs = append(req.IPs, ip)
		}
		req.DNSNames = dns
	default:
		return usageErr("give --region and --cluster for a peer, or --client for a CLI user")
	}
	if err := req.Identity.Validate(); err != nil {
		return usageErr("%v", err)
	}
	certPEM, keyPEM, err := ca.Issue(req, time.Now())
	if err != nil {
		return err
	}
	if err := transport.WritePair(*dir, name, certPEM, keyPEM); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "issued %s: %s, %s\n", req.Identity, filepath.Join(*dir, name+".crt"), filepath.Join(*dir, name+".key"))
	return nil
}
