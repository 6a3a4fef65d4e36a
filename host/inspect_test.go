package host

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

func TestInspectWat(t *testing.T) {
	info, err := Inspect(wat(t, "exit"))
	if err != nil {
		t.Fatal(err)
	}
	if info.ABIVersion != "0.2.1" {
		t.Errorf("ABIVersion = %q, want 0.2.1", info.ABIVersion)
	}
	if info.Size != len(wat(t, "exit")) {
		t.Errorf("Size = %d", info.Size)
	}
	want := Import{Module: "wasi_snapshot_preview1", Name: "proc_exit", Kind: ExternFunc, Type: Signature{Params: []ValueType{I32}}}
	if len(info.Imports) != 1 || info.Imports[0].String() != want.String() || !info.Imports[0].Type.equal(want.Type) {
		t.Fatalf("Imports = %+v, want [%+v]", info.Imports, want)
	}
	e, ok := info.Export("proxy_on_request_headers")
	if !ok || e.Kind != ExternFunc || e.Type.String() != "i32, i32, i32 -> i32" {
		t.Errorf("proxy_on_request_headers export = %+v, %v", e, ok)
	}
	if e, ok := info.Export("memory"); !ok || e.Kind != ExternMemory {
		t.Errorf("memory export = %+v, %v", e, ok)
	}
	if e, _ := info.Export("proxy_on_log"); e.Type.String() != "i32 -> void" {
		t.Errorf("proxy_on_log signature = %q", e.Type)
	}
	if info, _ := Inspect(wat(t, "noabi")); info.ABIVersion != "" {
		t.Errorf("noabi ABIVersion = %q, want none", info.ABIVersion)
	}
}

func TestInspectGoGuest(t *testing.T) {
	info, err := Inspect(guest(t, "readheaders"))
	if err != nil {
		t.Fatal(err)
	}
	// The Go SDK announces ABI 0.2.0 and exports its allocator as proxy_on_memory_allocate.
	if info.ABIVersion != "0.2.0" {
		t.Errorf("ABIVersion = %q", info.ABIVersion)
	}
	for _, name := range []string{"_initialize", "proxy_on_memory_allocate", "proxy_on_request_headers", "memory"} {
		if _, ok := info.Export(name); !ok {
			t.Errorf("export %s missing", name)
		}
	}
	envoy, _ := EnvoyImports("1.33")
	if missing := CheckCompatibility(info, envoy); missing != nil {
		t.Errorf("a plain SDK guest should load in Envoy 1.33, missing %v", missing)
	}
}

func TestInspectMalformed(t *testing.T) {
	valid := wat(t, "minimal")
	cases := map[string][]byte{
		"empty":            nil,
		"bad magic":        []byte("\x00asn\x01\x00\x00\x00"),
		"bad version":      []byte("\x00asm\x02\x00\x00\x00"),
		"truncated":        valid[:len(valid)-3],
		"section too long": append([]byte("\x00asm\x01\x00\x00\x00"), 1, 0xff, 0x01, 0x60),
		"endless LEB":      append([]byte("\x00asm\x01\x00\x00\x00"), 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"bad type form":    append([]byte("\x00asm\x01\x00\x00\x00"), 1, 3, 1, 0x61, 0),
		"export of unknown function": append([]byte("\x00asm\x01\x00\x00\x00"),
			7, 5, 1, 1, 'f', 0x00, 9),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Inspect(b)
			if err == nil || !strings.Contains(err.Error(), "wasmhost: Failed to parse corrupted Wasm module") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// Every prefix of a valid module is either rejected or parsed; none may panic.
	for i := range valid {
		_, _ = Inspect(valid[:i])
	}
}

func FuzzInspect(f *testing.F) {
	for _, name := range []string{"minimal", "oob", "exit"} {
		b, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), "testdata", "wat", name+".wasm"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Inspect(b)
		if err == nil {
			_ = CheckCompatibility(info, nil)
		}
	})
}

func TestCheckCompatibility(t *testing.T) {
	envoy, err := EnvoyImports("")
	if err != nil {
		t.Fatal(err)
	}
	imp := func(module, name string) Import { return Import{Module: module, Name: name, Kind: ExternFunc} }
	info := ModuleInfo{ABIVersion: "0.2.1", Imports: []Import{
		imp("wasi_snapshot_preview1", "fd_write"),
		imp("wasi_snapshot_preview1", "fd_filestat_get"),
		imp("wasi_snapshot_preview1", "fd_filestat_get"),
		imp("env", "proxy_log"),
		imp("env", "proxy_continue_request"), // ABI 0.1.0 only
		imp("env", "proxy_get_log_level"),
		{Module: "env", Name: "some_global", Kind: ExternGlobal},
		{Module: "env", Name: "memory", Kind: ExternMemory},
	}}
	got := CheckCompatibility(info, envoy)
	want := []string{"wasi_snapshot_preview1.fd_filestat_get", "env.proxy_continue_request", "env.some_global"}
	if !slices.Equal(got, want) {
		t.Errorf("missing = %q, want %q", got, want)
	}
	info.ABIVersion = "0.2.0" // proxy_get_log_level came with 0.2.1
	if got := CheckCompatibility(info, envoy); !slices.Contains(got, "env.proxy_get_log_level") {
		t.Errorf("0.2.0 module importing proxy_get_log_level: missing = %q", got)
	}
	info.ABIVersion = "0.1.0"
	if got := CheckCompatibility(info, envoy); slices.Contains(got, "env.proxy_continue_request") {
		t.Errorf("0.1.0 module may import proxy_continue_request: missing = %q", got)
	}
	if got := CheckCompatibility(ModuleInfo{Imports: info.Imports[:1]}, envoy); got != nil {
		t.Errorf("fd_write alone: missing = %q", got)
	}
}

func TestEnvoyImports(t *testing.T) {
	list, err := EnvoyImports("1.33")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 18+43 {
		t.Errorf("len = %d, want 18 WASI and 43 env imports", len(list))
	}
	for _, want := range []string{"wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.fd_prestat_dir_name", "env.proxy_get_log_level"} {
		if !slices.Contains(list, want) {
			t.Errorf("%s missing", want)
		}
	}
	if slices.Contains(list, "wasi_snapshot_preview1.fd_filestat_get") {
		t.Error("fd_filestat_get is not in Envoy 1.33")
	}
	def, _ := EnvoyImports("")
	if !slices.Equal(def, list) {
		t.Error(`EnvoyImports("") differs from 1.33`)
	}
	if _, err := EnvoyImports("1.20"); err == nil || !strings.HasPrefix(err.Error(), "wasmhost: ") || !strings.Contains(err.Error(), "1.33, 1.34") {
		t.Errorf("unknown version: err = %v", err)
	}
	later, err := EnvoyImports("94091cd")
	if err != nil {
		t.Fatal(err)
	}
	if len(later) != 45+43 || !slices.Contains(later, "wasi_snapshot_preview1.fd_filestat_get") {
		t.Errorf("94091cd: %d imports, want 45 WASI and 43 env, fd_filestat_get among them", len(later))
	}
}

// The .wat sources and the assembled .wasm files checked in beside them must agree. CI needs no assembler; where
// wat2wasm (wabt) is installed, this re-assembles each source and compares.
func TestWatSourcesMatchBinaries(t *testing.T) {
	dir := filepath.Join(testwasm.RepoRoot(), "testdata", "wat")
	sources, _ := filepath.Glob(filepath.Join(dir, "*.wat"))
	wasi, _ := filepath.Glob(filepath.Join(dir, "wasi", "*.wat"))
	sources = append(sources, wasi...)
	if len(sources) == 0 {
		t.Fatal("no .wat sources")
	}
	for _, src := range sources {
		bin := strings.TrimSuffix(src, ".wat") + ".wasm"
		if _, err := os.Stat(bin); err != nil {
			t.Errorf("%s has no assembled %s", filepath.Base(src), filepath.Base(bin))
		}
	}
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed; binaries not re-assembled")
	}
	for _, src := range sources {
		out := filepath.Join(t.TempDir(), "out.wasm")
		if msg, err := exec.Command(tool, src, "-o", out).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(src), err, msg)
			continue
		}
		got, _ := os.ReadFile(out)
		want, _ := os.ReadFile(strings.TrimSuffix(src, ".wat") + ".wasm")
		if !bytes.Equal(got, want) {
			t.Errorf("%s does not assemble to the checked-in .wasm; run: wat2wasm %s -o %s", filepath.Base(src), filepath.Base(src), strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
		}
	}
}
