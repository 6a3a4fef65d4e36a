# chips-proxy-wasm — every target a newcomer needs. `make run` and `make test` are the two that matter.
GO      ?= go
BUILD   ?= build
LISTEN  ?= 127.0.0.1:8443
ADMIN   ?= 127.0.0.1:9901
CONFIG  ?= testdata/config/affinity.json
IMAGE   ?=

export CGO_ENABLED ?= 0

.PHONY: all build filter wasmhost cometd test test-race run check fuzz bench oci sha256 clean

all: build

## build: the filter (build/filter.wasm) and the local host (build/wasmhost)
build: filter wasmhost

# Always build: go's cache makes an up-to-date build instant, and make cannot see Go's dependencies. buildwasm is the
# one module build of the repository (internal/wasmbuild): wasip1 reactor, -trimpath, and the Go runtime fixed for
# the WASI of Envoy 1.33 to 1.37 (see RATIONALE.md); the tests build with the same code.
filter:
	@mkdir -p $(BUILD)
	GO=$(GO) $(GO) run ./internal/wasmbuild/cmd/buildwasm -o $(BUILD)/filter.wasm ./filter

wasmhost:
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -o $(BUILD)/wasmhost ./host/cmd/wasmhost

## cometd: the CometD project's Node.js server and JavaScript client for the browser tests, as package-lock.json pins them
COMETD_DIR = e2e/cometd
cometd: $(COMETD_DIR)/node_modules/.package-lock.json

# npm ci writes node_modules/.package-lock.json last: it is newer than the lockfile once the install is complete.
$(COMETD_DIR)/node_modules/.package-lock.json: $(COMETD_DIR)/package.json $(COMETD_DIR)/package-lock.json
	npm ci --prefix $(COMETD_DIR) --no-audit --no-fund

## test: the whole suite, browser tests included (CI=true makes a missing Chromium, Firefox or CometD a failure)
test: build cometd
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	CGO_ENABLED=1 $(GO) test -count=1 -race -timeout 20m ./host/...

## run: the local proxy with the filter in front of the embedded demo chat, plus a demo shop page
run: build
	$(BUILD)/wasmhost serve --demo --wasm $(BUILD)/filter.wasm --config $(CONFIG) \
		--listen $(LISTEN) --admin $(ADMIN) --tls-self-signed

## check: formatting, vet, tidy go.mod, and a clean tree afterwards
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) build ./filter/...  # every filter package must build for the module
	$(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum || { echo 'go.mod/go.sum not tidy'; exit 1; }
	@test -z "$$(git status --porcelain)" || { git status --porcelain; echo 'tree is dirty'; exit 1; }

## fuzz: run every fuzz target in the module for FUZZTIME each (a duration, or Nx for N executions)
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## bench: the side-by-side benchmarks, the 1,000,000-stream soak, the V8 runs (Node) and BENCHMARKS.md (about 6 minutes on 2 cores)
# The benchmark binary runs BENCHCOUNT times in a row rather than with -count, which would repeat each benchmark
# back to back: this way the two sides of every pair alternate.
BENCHCOUNT  ?= 6
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCHDIR     = $(BUILD)/bench
BENCHBIN     = $(BENCHDIR)/bench.test
BUILD_CMD    = $(GO) test -c -o $(BENCHBIN) ./bench/
BENCH_CMD    = $(BENCHBIN) -test.run='^$$' -test.bench=. -test.benchmem -test.timeout=30m -latencies=$(BENCHDIR)/latencies.json
PROC_CMD     = $(BENCHBIN) -test.run='^$$' -test.bench='^BenchmarkServeProcess$$' -test.benchtime=20000x -serve.process
SOAK_CMD     = CHIPS_SOAK=1 $(BENCHBIN) -test.run='^TestSoak$$' -test.v -test.timeout=30m -soak.out=$(BENCHDIR)/soak.json
V8_CMD       = CHIPS_V8=1 $(BENCHBIN) -test.run='^TestV8$$' -test.v -test.timeout=30m -v8.out=$(BENCHDIR)/v8.json
PROFILE_CMD  = $(BENCHBIN) -test.run='^$$' -test.bench='FilterCost/guest=filter$$' -test.benchtime=100000x -test.cpuprofile=$(BENCHDIR)/filter.cpu
PPROF_CMD    = $(GO) tool pprof -top -nodecount=20 $(BENCHBIN) $(BENCHDIR)/filter.cpu
BSTAT_CMD    = $(GO) run $(BENCHSTAT) $(BENCHDIR)/bench.txt

bench: filter
	@mkdir -p $(BENCHDIR)
	@rm -f $(BENCHDIR)/bench.txt $(BENCHDIR)/latencies.json
	$(BUILD_CMD)
	@for i in $$(seq $(BENCHCOUNT)); do \
		echo "$(BENCH_CMD)   # run $$i of $(BENCHCOUNT)"; \
		$(BENCH_CMD) >> $(BENCHDIR)/bench.txt || { tail -n 30 $(BENCHDIR)/bench.txt; exit 1; }; \
		echo "$(PROC_CMD)   # run $$i of $(BENCHCOUNT)"; \
		$(PROC_CMD) >> $(BENCHDIR)/bench.txt || { tail -n 30 $(BENCHDIR)/bench.txt; exit 1; }; \
	done
	$(SOAK_CMD)
	$(V8_CMD)
	$(PROFILE_CMD) > /dev/null
	$(PPROF_CMD) 2>/dev/null | sed -n '/flat%/,$$p' > $(BENCHDIR)/profile.txt
	$(BSTAT_CMD) > $(BENCHDIR)/benchstat.txt
	$(GO) run ./bench/cmd/benchreport -bench $(BENCHDIR)/bench.txt -soak $(BENCHDIR)/soak.json -v8 $(BENCHDIR)/v8.json \
		-latencies $(BENCHDIR)/latencies.json -benchstat $(BENCHDIR)/benchstat.txt -profile $(BENCHDIR)/profile.txt \
		-notes bench/analysis.md -out BENCHMARKS.md -chart bench/serve-latency.png \
		-cmd "$(BUILD_CMD)" -cmd "$(BENCH_CMD)   # $(BENCHCOUNT) times" -cmd "$(PROC_CMD)   # after each of them" -cmd "$(SOAK_CMD)" -cmd "$(V8_CMD)" \
		-cmd "$(PROFILE_CMD)" -cmd "$(PPROF_CMD)" -cmd "$(BSTAT_CMD)"

## oci: the Wasm OCI artifact as an image layout in build/oci (IMAGE=registry/repo:tag also pushes it)
oci: filter
	$(GO) run ./deploy/cmd/wasmoci build --wasm $(BUILD)/filter.wasm --out $(BUILD)/oci $(if $(IMAGE),--push $(IMAGE))

## sha256: the digest to paste into the WasmPlugin's sha256 field
sha256: filter
	@$(GO) run ./deploy/cmd/wasmoci digest --wasm $(BUILD)/filter.wasm

clean:
	rm -rf $(BUILD)
