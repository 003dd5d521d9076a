package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// apiDiscovery asks an API server what it serves, with plain GETs of /api
// and /apis, and maps kinds to resources. client-go's discovery and
// restmapper packages do the same but link the typed clientset's scheme
// (every API group's types), which costs each peer about 10 MiB of memory.
type apiDiscovery struct {
	base *url.URL
	http *http.Client

	mu    sync.Mutex
	kinds map[schema.GroupVersionKind]mapping // nil until loaded
}

// errNoMatch says the API server serves no resource of a kind.
var errNoMatch = errors.New("no resource serves this kind")

// discoveryTimeout bounds one discovery request.
const discoveryTimeout = 10 * time.Second

func newAPIDiscovery(rc *rest.Config) (*apiDiscovery, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	host := rc.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	base, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("API server address %q: %w", rc.Host, err)
	}
	return &apiDiscovery{base: base, http: hc}, nil
}

// get GETs an absolute API path and decodes the JSON answer into out (nil:
// only the status matters). An answer other than 200 is an error that
// apierrors understands (NotFound, Forbidden, ...).
func (d *apiDiscovery) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	u := *d.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return apierrors.NewGenericServerResponse(resp.StatusCode, http.MethodGet,
			schema.GroupResource{}, path, strings.TrimSpace(string(body)), 0, false)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// readyz asks the API server whether it is ready.
func (d *apiDiscovery) readyz(ctx context.Context) error { return d.get(ctx, "/readyz", nil) }

// servedList is one group version's resources, and whether it is the
// group's preferred version.
type servedList struct {
	list      *metav1.APIResourceList
	preferred bool
}

// resources lists every group version the server serves. A group whose
// versions cannot be read is skipped and named in the error, which is then
// returned with what could be read.
func (d *apiDiscovery) resources(ctx context.Context) ([]servedList, error) {
	var core metav1.APIVersions
	if err := d.get(ctx, "/api", &core); err != nil {
		return nil, fmt.Errorf("discover /api: %w", err)
	}
	var out []servedList
	var failed []string
	for i, v := range core.Versions {
		var l metav1.APIResourceList
		if err := d.get(ctx, "/api/"+v, &l); err != nil {
			return nil, fmt.Errorf("discover /api/%s: %w", v, err)
		}
		l.GroupVersion = v
		out = append(out, servedList{list: &l, preferred: i == 0})
	}
	var groups metav1.APIGroupList
	if err := d.get(ctx, "/apis", &groups); err != nil {
		return nil, fmt.Errorf("discover /apis: %w", err)
	}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			var l metav1.APIResourceList
			if err := d.get(ctx, "/apis/"+v.GroupVersion, &l); err != nil {
				failed = append(failed, v.GroupVersion+": "+err.Error())
				continue
			}
			l.GroupVersion = v.GroupVersion
			out = append(out, servedList{list: &l, preferred: v.GroupVersion == g.PreferredVersion.GroupVersion})
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%w: %s", errGroupsUndiscovered, strings.Join(failed, "; "))
	}
	return out, nil
}

// errGroupsUndiscovered says some API groups could not be read (often a
// broken aggregated API); the rest was.
var errGroupsUndiscovered = errors.New("some API groups could not be discovered")

// mapping finds the resource of a kind, loading the server's resources the
// first time and after reset.
func (d *apiDiscovery) mapping(gvk schema.GroupVersionKind) (mapping, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kinds == nil {
		lists, err := d.resources(context.Background())
		if err != nil && !errors.Is(err, errGroupsUndiscovered) {
			return mapping{}, err
		}
		kinds := map[schema.GroupVersionKind]mapping{}
		for _, sl := range lists {
			gv, err := schema.ParseGroupVersion(sl.list.GroupVersion)
			if err != nil {
				continue
			}
			for _, r := range sl.list.APIResources {
				if strings.Contains(r.Name, "/") {
					continue // subresources
				}
				kinds[gv.WithKind(r.Kind)] = mapping{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced}
			}
		}
		d.kinds = kinds
	}
	m, ok := d.kinds[gvk]
	if !ok {
		return mapping{}, errNoMatch
	}
	return m, nil
}

// reset forgets what the server serves, so that the next mapping asks
// again (after a CustomResourceDefinition was established).
func (d *apiDiscovery) reset() {
	d.mu.Lock()
	d.kinds = nil
	d.mu.Unlock()
}
