# kelpie — common tasks. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/kelpie-dev/kelpie/cli.Version=$(VERSION) -X github.com/kelpie-dev/kelpie/cli.Commit=$(COMMIT)
FUZZTIME ?= 15s

.PHONY: help build test unit fuzz lint bench demo clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/kelpie
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kelpie ./cmd/kelpie

test: ## install test deps (Debian, root), start a private containerd, run every test and the fuzzer
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/test.sh

unit: ## run the Go tests only (containerd tests skip unless KELPIE_CONTAINERD_ADDRESS is set)
	$(GO) test -count=1 ./...

fuzz: ## fuzz the manifest decoder for $(FUZZTIME)
	$(GO) test ./specs -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## benchmarks beside their baselines (bench/*.sh)
	bash bench/load.sh

demo: ## validate and diff the bundled example in a scratch git repository
	bash scripts/demo.sh

clean: ## remove build output
	rm -rf bin
