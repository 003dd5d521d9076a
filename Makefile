# Shoal: `make demo` shows what it does, `make test` runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/shoalmesh/shoal/node.Version=$(VERSION)
# The whole suite, race detector on; generous, CI allows 90 minutes.
TEST_TIMEOUT ?= 30m

.PHONY: all build demo test vet fmt-check unit bench fuzz fuzz-short chaos chaos-short proto clean k8s-tools k8s-rebuild

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shoal ./cmd/shoal

## demo: a local mesh of 3 peers, the examples, a killed peer, failover and failback, bursting into the cloud.
demo: build
	./bin/shoal demo

## test: formatting, vet, every test with the race detector, and a short run of the
## fuzz targets of what arrives from other regions.
test: fmt-check vet build k8s-tools
	SHOAL_BIN=$(CURDIR)/bin/shoal SHOAL_K8S_BIN=$(K8S_BIN) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz-short
	$(MAKE) chaos-short

# Every built-in chaos scenario (shoal chaos list), each on a local mesh of
# peer processes, with a fixed seed; a broken invariant fails the target.
# Reports (report.json, timeline.svg, the printed text) go to bin/chaos/.
# CHAOS_SCENARIOS (default: every built-in) is read after the build.
CHAOS_SCENARIOS ?=
CHAOS_SEED      ?= 1
CHAOS_DIR       ?= bin/chaos

## chaos-short: the CI-sized variant of every built-in scenario (part of make test).
chaos-short: build
	@mkdir -p $(CHAOS_DIR)
	@list="$(CHAOS_SCENARIOS)"; [ -n "$$list" ] || list=$$(./bin/shoal chaos list | awk '{print $$1}'); \
	[ -n "$$list" ] || { echo "no chaos scenarios"; exit 1; }; \
	for s in $$list; do echo "chaos $$s --short --seed $(CHAOS_SEED)"; \
	  ./bin/shoal chaos run $$s --short --seed $(CHAOS_SEED) --report $(CHAOS_DIR)/$$s-short \
	    > $(CHAOS_DIR)/$$s-short.txt 2>&1 || { cat $(CHAOS_DIR)/$$s-short.txt; exit 1; }; \
	  grep 'invariants held' $(CHAOS_DIR)/$$s-short.txt; done

## chaos: the long variant of every built-in scenario (random and edge-flap run 10 minutes each).
chaos: build
	@mkdir -p $(CHAOS_DIR)
	@list="$(CHAOS_SCENARIOS)"; [ -n "$$list" ] || list=$$(./bin/shoal chaos list | awk '{print $$1}'); \
	[ -n "$$list" ] || { echo "no chaos scenarios"; exit 1; }; \
	for s in $$list; do echo "chaos $$s --seed $(CHAOS_SEED)"; \
	  ./bin/shoal chaos run $$s --seed $(CHAOS_SEED) --report $(CHAOS_DIR)/$$s \
	    > $(CHAOS_DIR)/$$s.txt 2>&1 || { cat $(CHAOS_DIR)/$$s.txt; exit 1; }; \
	  grep 'invariants held' $(CHAOS_DIR)/$$s.txt; done

# The decoders of the WAN links: frames and messages from other regions, and
# the region log commands they become.
FUZZ_TARGETS := transport:FuzzReadFrame region:FuzzMeshHandle region:FuzzFSMApply
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with
# a bare "context deadline exceeded" when a -fuzztime duration ends while a
# worker is busy (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZ_SHORT   ?= 30000x
FUZZ_LONG    ?= 5m

fuzz-short:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn: $(FUZZ_SHORT)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_SHORT) ./$$pkg || exit 1; done

## fuzz: each WAN decoder fuzz target for FUZZ_LONG (5m).
fuzz:
	$(MAKE) fuzz-short FUZZ_SHORT=$(FUZZ_LONG)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: measured figures, written to BENCHMARKS.md by cmd/shoal-bench; the peers run bin/shoal.
bench: build k8s-tools
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shoal-bench ./cmd/shoal-bench
	SHOAL_BIN=$(CURDIR)/bin/shoal SHOAL_K8S_BIN=$(K8S_BIN) ./bin/shoal-bench --out BENCHMARKS.md

## proto: regenerate api/shoalpb from the .proto files (needs protoc and protoc-gen-go).
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	@command -v protoc-gen-go >/dev/null || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I api/shoalpb --go_out=. --go_opt=module=github.com/shoalmesh/shoal api/shoalpb/*.proto

clean:
	rm -rf bin

## k8s-tools: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok for the
## end-to-end tests (deploy/kubetest), built from the Go modules pinned in deploy/k8stools and
## deploy/k8stools/kwok into $(K8S_BIN). A version-keyed stamp skips what is already built;
## the builds run one after another (each go build already uses every core).
K8S_TOOLS    := deploy/k8stools
modver        = $(shell awk '{for(i=1;i<NF;i++)if($$i=="$(1)"){print $$(i+1);exit}}' $(2))
K8S_VERSION  := $(call modver,k8s.io/kubernetes,$(K8S_TOOLS)/go.mod)
ETCD_VERSION := $(call modver,go.etcd.io/etcd/server/v3,$(K8S_TOOLS)/go.mod)
KWOK_VERSION := $(call modver,sigs.k8s.io/kwok,$(K8S_TOOLS)/kwok/go.mod)
K8S_BIN      ?= $(CURDIR)/bin/k8s-$(K8S_VERSION)
K8S_GO        = cd $(1) && GOWORK=off CGO_ENABLED=0 $(GO)
K8S_BUILD    := build -mod=readonly -trimpath
K8S_VERPKGS  := k8s.io/component-base/version k8s.io/client-go/pkg/version
K8S_LDFLAGS  := -s -w $(foreach p,$(K8S_VERPKGS),-X $(p).gitVersion=$(K8S_VERSION) \
	-X $(p).gitMajor=$(word 1,$(subst ., ,$(K8S_VERSION:v%=%))) \
	-X $(p).gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION:v%=%))) -X $(p).gitTreeState=clean)
KWOK_STAGES  := node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml

# A stamp whose binaries went missing is rebuilt too.
k8s_gone      = $(if $(filter-out $(wildcard $(addprefix $(K8S_BIN)/,$(1))),$(addprefix $(K8S_BIN)/,$(1))),k8s-rebuild)

k8s-tools: $(K8S_BIN)/.kube-$(K8S_VERSION) $(K8S_BIN)/.etcd-$(ETCD_VERSION) $(K8S_BIN)/.kwok-$(KWOK_VERSION)

$(K8S_BIN)/.kube-$(K8S_VERSION): $(call k8s_gone,kube-apiserver kube-controller-manager kube-scheduler)
	@mkdir -p $(@D)
	$(call K8S_GO,$(K8S_TOOLS)) $(K8S_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $(@D)/ k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	@touch $@

# Order-only prerequisites keep make -j from running two heavy builds at once.
$(K8S_BIN)/.etcd-$(ETCD_VERSION): $(call k8s_gone,etcd) | $(K8S_BIN)/.kube-$(K8S_VERSION)
	$(call K8S_GO,$(K8S_TOOLS)) $(K8S_BUILD) -ldflags "-s -w" -o $(@D)/etcd go.etcd.io/etcd/server/v3
	@touch $@

# kwok refuses to start without Stage objects: its own stage files, one YAML stream.
$(K8S_BIN)/.kwok-$(KWOK_VERSION): $(call k8s_gone,kwok kwok-stages.yaml) | $(K8S_BIN)/.etcd-$(ETCD_VERSION)
	$(call K8S_GO,$(K8S_TOOLS)/kwok) $(K8S_BUILD) -ldflags "-s -w" -o $(@D)/kwok sigs.k8s.io/kwok/cmd/kwok
	@dir=$$($(call K8S_GO,$(K8S_TOOLS)/kwok) list -m -f '{{.Dir}}' sigs.k8s.io/kwok) && \
	for f in $(KWOK_STAGES); do echo "---"; cat "$$dir/kustomize/stage/$$f"; done > $(@D)/kwok-stages.yaml
	@touch $@
