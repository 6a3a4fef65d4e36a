// Package testwasm locates or builds the WebAssembly modules that tests run through the host.
//
// `make test` builds build/filter.wasm before running the suite, so CI (CI=true) requires it to be there and fails
// when it is missing: a test that silently rebuilt it would hide a broken `make build`. Locally, and for a plain
// `go test ./...` on a fresh clone, the module is built on demand with the standard toolchain.
package testwasm

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/wasmbuild"
)

// FilterPackage is the import path of the filter's main package.
const FilterPackage = "github.com/chips-proxy-wasm/chips-proxy-wasm/filter"

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// RepoRoot returns the repository root: the directory holding go.mod above this file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Filter returns the path of build/filter.wasm, building it first when it is missing and CI is not set.
// Outside CI it is rebuilt once per test binary so that a stale module never tests old code.
func Filter(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(RepoRoot(), "build", "filter.wasm")
	if os.Getenv("CI") == "true" {
		if _, err := os.Stat(path); err != nil {
			tb.Fatalf("testwasm: %s is missing; run `make build` first (CI=true never builds it implicitly): %v", path, err)
		}
		return path
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[FilterPackage]; ok {
		return p
	}
	if err := buildTo(FilterPackage, path); err != nil {
		tb.Fatal(err)
	}
	built[FilterPackage] = path
	return path
}

// Build compiles the Go guest in pkg (an import path or a path relative to the repository root, such as
// "./host/testdata/guests/readheaders") for wasip1 as a reactor and returns the .wasm path. Each package is built once
// per test binary, into build/guests/.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	name := strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimPrefix(pkg, "./"))
	out := filepath.Join(RepoRoot(), "build", "guests", name+".wasm")
	if err := buildTo(pkg, out); err != nil {
		tb.Fatal(err)
	}
	built[pkg] = out
	return out
}

// buildTo builds pkg into out with the repository's one module build (internal/wasmbuild), the one `make build`
// uses, so the tests run the very bytes that ship.
func buildTo(pkg, out string) error {
	return wasmbuild.Build(pkg, out, wasmbuild.Options{Dir: RepoRoot()})
}

// FilterWithoutRuntimeFix builds the filter as a plain `go build` would, without the runtime fix, into
// build/guests/filter-without-runtime-fix.wasm: the module that shows what the fix prevents. Never shipped.
func FilterWithoutRuntimeFix(tb testing.TB) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	const key = "filter without runtime fix"
	if p, ok := built[key]; ok {
		return p
	}
	out := filepath.Join(RepoRoot(), "build", "guests", "filter-without-runtime-fix.wasm")
	if err := wasmbuild.Build(FilterPackage, out, wasmbuild.Options{Dir: RepoRoot(), NoRuntimeFix: true}); err != nil {
		tb.Fatal(err)
	}
	built[key] = out
	return out
}

// CacheDir is a wazero compilation cache shared by every test that starts a host: compiling the filter takes
// seconds, loading it from the cache milliseconds. It lives under build/, which `make clean` removes.
func CacheDir() string {
	return filepath.Join(RepoRoot(), "build", "wazero-cache")
}
