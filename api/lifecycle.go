package api

// The bodies of the lifecycle endpoints: POST /v1/promote, /v1/clone and
// /v1/migrate (shoal promote, clone, migrate).

// PromoteRequest adopts an object that runs in member cluster Cluster
// into Shoal: a template of it plus a policy bound to that cluster. It is
// answered by the peer of Cluster (the only one that can read it).
type PromoteRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Cluster    string `json:"cluster"`
	// Deps promotes the ConfigMaps, Secrets, PersistentVolumeClaims and
	// ServiceAccounts its pod template names too, and sets propagateDeps.
	Deps bool `json:"deps,omitempty"`
	// DryRun answers with what would be written and writes nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// PromoteResponse says what became Shoal's.
type PromoteResponse struct {
	// Objects are the templates written (the workload first), Policy the
	// policy that binds them to the cluster.
	Objects []string `json:"objects"`
	Policy  string   `json:"policy"`
	// UIDs are the live objects' uids in the cluster, by object: adoption
	// keeps them.
	UIDs     map[string]string `json:"uids,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	// Manifests are the documents written (or, with DryRun, that would
	// be), as YAML.
	Manifests string `json:"manifests,omitempty"`
	DryRun    bool   `json:"dryRun,omitempty"`
}

// MigrateRequest moves a workload's share from one cluster of a region to
// another (POST /v1/migrate to a peer of that region).
type MigrateRequest struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	From       string `json:"from"`
	To         string `json:"to"`
	DryRun     bool   `json:"dryRun,omitempty"`
}

// MigrateResponse is the plan (and, without DryRun, what was started).
type MigrateResponse struct {
	Workload string `json:"workload"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Replicas is the share that moves; Room how many more the target
	// has room for (-1: unknown).
	Replicas int32    `json:"replicas"`
	Room     int64    `json:"room"`
	Plan     []string `json:"plan"`
	DryRun   bool     `json:"dryRun,omitempty"`
}

// CloneRequest copies a workload as it runs on cluster From, with its
// dependencies, into cluster To as a new template with its own policy
// (POST /v1/clone). ToNamespace and ToName default to the original's; at
// least one must differ.
type CloneRequest struct {
	APIVersion  string `json:"apiVersion,omitempty"`
	Kind        string `json:"kind"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	From        string `json:"from"`
	To          string `json:"to"`
	ToNamespace string `json:"toNamespace,omitempty"`
	ToName      string `json:"toName,omitempty"`
	DryRun      bool   `json:"dryRun,omitempty"`
}

// CloneResponse lists the new templates and policy.
type CloneResponse struct {
	Objects   []string `json:"objects"`
	Policy    string   `json:"policy"`
	Replicas  int32    `json:"replicas"`
	Warnings  []string `json:"warnings,omitempty"`
	Manifests string   `json:"manifests,omitempty"`
	DryRun    bool     `json:"dryRun,omitempty"`
}
