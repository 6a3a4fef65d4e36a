# chips-proxy-wasm — every target a newcomer needs. `make run` and `make test` are the two that matter.
GO      ?= go
BUILD   ?= build
LISTEN  ?= 127.0.0.1:8443
ADMIN   ?= 127.0.0.1:9901
CONFIG  ?= testdata/config/affinity.json
IMAGE   ?=

export CGO_ENABLED ?= 0

.PHONY: all build filter wasmhost test test-race run check fuzz bench oci sha256 clean

all: build

## build: the filter (build/filter.wasm) and the local host (build/wasmhost)
build: filter wasmhost

# Always invoke go build: its cache makes an up-to-date build instant, and make cannot see Go's dependencies.
filter:
	@mkdir -p $(BUILD)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $(BUILD)/filter.wasm ./filter

wasmhost:
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -o $(BUILD)/wasmhost ./host/cmd/wasmhost

## test: the whole suite, browser tests included (CI=true makes missing Chromium a failure)
test: build
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

## fuzz: run every fuzz target for FUZZTIME each
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzRewrite -fuzztime=$(FUZZTIME) ./filter/cookie/
	$(GO) test -run='^$$' -fuzz=FuzzName -fuzztime=$(FUZZTIME) ./filter/cookie/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./filter/config/
	$(GO) test -run='^$$' -fuzz=FuzzOpen -fuzztime=$(FUZZTIME) ./filter/affinity/

## oci: the Wasm OCI artifact as an image layout in build/oci (IMAGE=registry/repo:tag also pushes it)
oci: filter
	$(GO) run ./deploy/cmd/wasmoci build --wasm $(BUILD)/filter.wasm --out $(BUILD)/oci $(if $(IMAGE),--push $(IMAGE))

## sha256: the digest to paste into the WasmPlugin's sha256 field
sha256: filter
	@$(GO) run ./deploy/cmd/wasmoci digest --wasm $(BUILD)/filter.wasm

clean:
	rm -rf $(BUILD)
