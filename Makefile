# pgninja — developer entry points. `make test` is what CI runs (via .ci/run).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := bin/pgninja
TESTBED := scripts/testbed.sh
# Integration tests talk to a real local PostgreSQL 15 primary + streaming
# replica + Redis started by $(TESTBED). Override TESTBED_PORT to run
# several beds side by side (it uses TESTBED_PORT..TESTBED_PORT+3).
TESTBED_PORT ?= 25432
export TESTBED_PORT
TEST_TIMEOUT ?= 30m
DEMO_TESTBED_PORT ?= 15432
GOTESTFLAGS ?=

.PHONY: help build test vet testbed-up testbed-down testbed-status demo bench bench-instructions chaos drivertest fmt clean

help: ## list targets
	@echo "pgninja make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'
	@echo "variables: GO=$(GO) TESTBED_PORT=$(TESTBED_PORT) TEST_TIMEOUT=$(TEST_TIMEOUT) GOTESTFLAGS=..."

build: ## build bin/pgninja (cgo: pg_query_go)
	CGO_ENABLED=1 $(GO) build -o $(BIN) ./cmd/pgninja

testbed-up: ## start the local PG15 primary+replica+Redis test bed (installs packages as root)
	$(TESTBED) up

testbed-down: ## stop the test bed (keeps its data; scripts/testbed.sh down --purge deletes it)
	$(TESTBED) down

testbed-status: ## show the test bed's services
	$(TESTBED) status

vet: ## go vet ./...
	$(GO) vet ./...

# Packages run one at a time (-p 1): they share one test bed, and some tests
# pause replay or load the replica, which would skew routing tests running
# beside them on a 2-core machine.
# The test bed stays up afterwards so re-runs are fast. The first cgo build
# of pg_query_go takes several minutes. Fuzz seed corpora run as plain tests.
test: ## start the test bed, then go vet + go test every package against it
	$(TESTBED) up
	eval "$$($(TESTBED) env)"; \
	echo "test bed: primary=$$PGNINJA_TEST_PRIMARY replica=$$PGNINJA_TEST_REPLICA redis=$$PGNINJA_TEST_REDIS"; \
	$(GO) vet ./... && \
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...

demo: build ## run the end-to-end demo (scripts/demo.sh, test bed on port 15432)
	TESTBED_PORT=$(DEMO_TESTBED_PORT) scripts/demo.sh

bench: ## run the benchmark harness (bench/run.sh)
	bench/run.sh

bench-instructions: ## count what PgBouncer, pgninja and the bare Go relays execute per transaction under callgrind, counts that move far less than throughput (bench/callgrind.sh)
	bench/callgrind.sh

chaos: ## faults under load: backends terminated, replica restarted and frozen, config reloaded, primary restarted and frozen; every answer and commit checked (bench/chaos.sh)
	bench/chaos.sh

drivertest: ## run pgx's and lib/pq's own test suites, and our checks of Python, Node.js and JDBC drivers, through pgninja: session, transaction, routing (scripts/drivertest.sh)
	scripts/drivertest.sh

fmt: ## gofmt -w the tree
	$(GO) fmt ./...

clean: ## remove build outputs (the test bed is left alone)
	rm -rf bin/ coverage.out coverage.html coverage.txt
	$(GO) clean -testcache
