# Shoal: `make demo` shows what it does, `make test` runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/shoalmesh/shoal/node.Version=$(VERSION)
# The whole suite, race detector on; generous, CI allows 90 minutes.
TEST_TIMEOUT ?= 30m

.PHONY: all build demo test vet fmt-check unit bench proto clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shoal ./cmd/shoal

## demo: a local mesh of 3 peers, the examples, a killed peer, failover and failback.
demo: build
	./bin/shoal demo

## test: formatting, vet, and every test with the race detector.
test: fmt-check vet build
	SHOAL_BIN=$(CURDIR)/bin/shoal $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: measured figures, written to BENCHMARKS.md.
bench: build
	./bin/shoal bench --out BENCHMARKS.md

## proto: regenerate api/shoalpb from the .proto files (needs protoc and protoc-gen-go).
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	@command -v protoc-gen-go >/dev/null || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I api/shoalpb --go_out=. --go_opt=module=github.com/shoalmesh/shoal api/shoalpb/*.proto

clean:
	rm -rf bin
