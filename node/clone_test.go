package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// shoal clone copies web as it runs on eu-1, with the ConfigMap it names,
// into namespace staging on eu-2: a new template with its own policy,
// independent of the original (deleting the original leaves it running).
// A clone that would overwrite anything, or names what does not run
// where it says, writes nothing.
func TestCloneCreatesAnIndependentCopy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, "eu-1", "eu-2")
	c := m.client("eu-1")
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two clusters registered", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("%d clusters, %v", len(cs), err)
		}
		return nil
	})
	if _, err := c.Apply(ctx, []byte(fmt.Sprintf(depsManifests, "eu-1"))); err != nil {
		t.Fatal(err)
	}
	web := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	eventually(t, "web on eu-1", func() error {
		if o := m.peers["eu-1"].Sim().Objects()[web]; o.Ready != 2 {
			return fmt.Errorf("eu-1 runs %+v", o)
		}
		return nil
	})
	req := api.CloneRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-2", ToNamespace: "staging"}
	for _, bad := range []struct {
		req  api.CloneRequest
		want string
	}{
		{api.CloneRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-2"}, "give --namespace or --name"},
		{api.CloneRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-2", To: "eu-1", ToName: "web2"}, "does not run on eu-2"},
		{api.CloneRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-7", ToName: "web2"}, "cluster eu-7 is not a member"},
		{api.CloneRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-2", ToName: "web-config"}, ""},
	} {
		_, err := c.Clone(ctx, bad.req)
		if bad.want == "" {
			// A Deployment named like the ConfigMap is fine: keys differ by kind.
			if err != nil {
				t.Errorf("clone %+v: %v", bad.req, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("clone %+v: %v, want %q", bad.req, err, bad.want)
		}
	}
	resp, err := c.Clone(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(resp.Objects) != "[Deployment staging/web ConfigMap staging/web-config]" || resp.Policy != "PropagationPolicy staging/web" || resp.Replicas != 2 {
		t.Fatalf("clone answered %+v", resp)
	}
	if _, err := c.Clone(ctx, req); err == nil || !strings.Contains(err.Error(), "already Shoal's") {
		t.Fatalf("cloning again: %v", err)
	}
	clone := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "staging", Name: "web"}
	cfg := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "staging", Name: "web-config"}
	eventually(t, "the clone and its config on eu-2", func() error {
		o := m.peers["eu-2"].Sim().Objects()
		if o[clone].Ready != 2 || o[cfg].UID == "" {
			return fmt.Errorf("eu-2 holds %+v", o)
		}
		return nil
	})
	if _, ok := m.peers["eu-1"].Sim().Objects()[clone]; ok {
		t.Fatal("the clone runs on eu-1 too")
	}
	// Independent: the original goes, the clone stays.
	if _, err := c.Delete(ctx, "Deployment", "default", "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the original gone from eu-1", func() error {
		if _, ok := m.peers["eu-1"].Sim().Objects()[web]; ok {
			return fmt.Errorf("still there")
		}
		return nil
	})
	if o := m.peers["eu-2"].Sim().Objects()[clone]; o.Ready != 2 {
		t.Fatalf("the clone after the original was deleted: %+v", o)
	}
}
