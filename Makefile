# kelpie — common tasks. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/kelpie-dev/kelpie/cli.Version=$(VERSION) -X github.com/kelpie-dev/kelpie/cli.Commit=$(COMMIT)
FUZZTIME ?= 15s

.PHONY: help build test unit faults fuzz lint screenshots bench bench-host bench-probes bench-services corpus e2e-long soak demo demo-check demo-clean clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/kelpie
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kelpie ./cmd/kelpie

test: ## install test deps (Debian, root), start a private containerd, run every test and the fuzzers
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/test.sh

unit: ## run the Go tests only (containerd tests skip unless KELPIE_CONTAINERD_ADDRESS is set)
	$(GO) test -count=1 ./...

faults: ## (root) the fault suite (test/faults) on a private containerd; KELPIE_FAULTS_LONG=1 for the long variants
	GO=$(GO) bash scripts/faults.sh

fuzz: ## fuzz the manifest decoder, bundle import and git bundle staging for $(FUZZTIME) each
	$(GO) test ./specs -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s
	$(GO) test ./mirror -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s
	$(GO) test ./source -run '^$$' -fuzz '^FuzzStageBundle$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

screenshots: ## regenerate docs/dashboard.png and docs/dashboard-phone.png (headless chromium on an in-process 3-host cluster)
	KELPIE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestDashboardScreenshots$$' ./agent

bench: ## benchmarks beside their baselines: manifest loading, placement, fetch (no root needed)
	bash bench/load.sh
	go test -run '^$$' -bench 'BenchmarkPlace' -benchmem ./scheduler
	go test -run '^$$' -bench . -benchmem ./source

e2e-long: ## (root) end-to-end tests too long for CI: a CronJob once per tick on 3 hosts while its leader dies (~4 min)
	KELPIE_CI_DIR=$${KELPIE_CI_DIR:-/tmp/kelpie-ci} bash scripts/containerd.sh start >/dev/null
	eval "$$(KELPIE_CI_DIR=$${KELPIE_CI_DIR:-/tmp/kelpie-ci} bash scripts/containerd.sh env)" && CI=true KELPIE_LONG_E2E=1 $(GO) test -count=1 -v -timeout 20m -run '^TestClusterCronJobOncePerTick$$' ./cli

soak: ## (root) 15 minutes of pushes to 3 hosts with 100 pods: exact end state, agents' RSS/goroutines/fds slopes (SOAK=15m)
	KELPIE_CI_DIR=$${KELPIE_CI_DIR:-/tmp/kelpie-ci} bash scripts/containerd.sh start >/dev/null
	eval "$$(KELPIE_CI_DIR=$${KELPIE_CI_DIR:-/tmp/kelpie-ci} bash scripts/containerd.sh env)" && CI=true KELPIE_SOAK=$${SOAK:-15m} $(GO) test -count=1 -v -timeout 60m -run '^TestClusterSoak$$' ./cli

bench-host: ## (root) benchmarks on a private containerd: apply, push to running, mirror bundles, probes
	bash bench/apply.sh
	bash bench/push.sh
	bash bench/mirror.sh
	bash bench/probes.sh

bench-probes: ## (root) agent CPU for 100 pods probed (httpGet every 1 s, exec every 10 s) beside wget/ctr loops (N=100 WINDOW=30)
	bash bench/probes.sh

bench-services: ## (root) Service data path and DNS in private netns: program 1,000 Services x 10 endpoints, one endpoint change, VIP vs pod connect, DNS qps
	bash bench/services.sh

corpus: ## how many manifests of a public corpus validate, by reason of refusal, beside a baseline (CORPUS=DIR BEFORE=COMMIT)
	bash bench/corpus.sh

demo: ## (root) run `kelpie agent` on a git repo of examples/site with a private containerd; Ctrl-C stops it
	bash scripts/demo.sh

demo-check: ## (root) the demo, non-interactive: push a change, wait for it to converge, clean up
	bash scripts/demo.sh --check

demo-clean: ## remove the demo's pods, stop its agent and containerd, remove its dir
	bash scripts/demo.sh clean

clean: ## remove build output
	rm -rf bin
