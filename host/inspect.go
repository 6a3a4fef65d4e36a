package host

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// ValueType is a WebAssembly value type, with its binary encoding as value.
type ValueType byte

// The value types a module can use in a function signature.
const (
	I32       ValueType = 0x7f
	I64       ValueType = 0x7e
	F32       ValueType = 0x7d
	F64       ValueType = 0x7c
	V128      ValueType = 0x7b
	FuncRef   ValueType = 0x70
	ExternRef ValueType = 0x6f
)

// String returns the text-format name of the type ("i32").
func (v ValueType) String() string {
	switch v {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("type(0x%02x)", byte(v))
}

// Signature is a function type.
type Signature struct {
	Params  []ValueType
	Results []ValueType
}

// String renders the signature the way Envoy prints one in its load errors: "i32, i32 -> i32", with "void" for an
// empty side.
func (s Signature) String() string {
	return typesString(s.Params) + " -> " + typesString(s.Results)
}

func typesString(ts []ValueType) string {
	if len(ts) == 0 {
		return "void"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

func (s Signature) equal(o Signature) bool {
	return slices.Equal(s.Params, o.Params) && slices.Equal(s.Results, o.Results)
}

func sig(params []ValueType, results ...ValueType) Signature {
	return Signature{Params: params, Results: results}
}

// ExternKind is the kind of an import or export.
type ExternKind string

// The kinds of imports and exports.
const (
	ExternFunc   ExternKind = "func"
	ExternTable  ExternKind = "table"
	ExternMemory ExternKind = "memory"
	ExternGlobal ExternKind = "global"
	ExternTag    ExternKind = "tag"
)

// Import is one import of a module. Type is set for function imports only.
type Import struct {
	Module string
	Name   string
	Kind   ExternKind
	Type   Signature
}

// String returns "module.name", the form Envoy's import list and error messages use.
func (i Import) String() string { return i.Module + "." + i.Name }

// Export is one export of a module. Type is set for function exports only.
type Export struct {
	Name string
	Kind ExternKind
	Type Signature
}

// ModuleInfo is what Inspect reads from a module without compiling or running it.
type ModuleInfo struct {
	// Size is the module's size in bytes.
	Size int
	// ABIVersion is the Proxy-Wasm ABI version the module advertises through a proxy_abi_version_X_Y_Z export
	// ("0.2.1"), or "" when it advertises none.
	ABIVersion string
	// Imports and Exports are in module order.
	Imports []Import
	Exports []Export

	named        bool            // the module has a "name" section
	runtimeNames map[string]bool // the names of its functions that start with "runtime." (see gohazard.go)
}

// Export returns the export called name.
func (m ModuleInfo) Export(name string) (Export, bool) {
	for _, e := range m.Exports {
		if e.Name == name {
			return e, true
		}
	}
	return Export{}, false
}

// Inspect parses the type, import, function and export sections of a WebAssembly binary. It neither validates
// function bodies nor compiles anything, so it is fast and safe on untrusted input; a module it accepts can still
// fail to compile.
func Inspect(module []byte) (ModuleInfo, error) {
	info := ModuleInfo{Size: len(module)}
	r := &reader{b: module}
	if magic := r.bytes(4); r.err != nil || string(magic) != "\x00asm" {
		return info, errors.New("wasmhost: Failed to parse corrupted Wasm module: not a WebAssembly binary (bad magic number)")
	}
	if v := r.u32le(); r.err != nil || v != 1 {
		return info, fmt.Errorf("wasmhost: Failed to parse corrupted Wasm module: unsupported binary version %d", v)
	}
	var types []Signature
	var funcTypes []uint32 // type index of each function, imported ones first
	var exports []struct {
		name  string
		kind  ExternKind
		index uint32
	}
	for r.err == nil && r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			break
		}
		s := &reader{b: body}
		switch id {
		case 1: // type
			n := s.u32()
			for i := uint32(0); i < n && s.err == nil; i++ {
				if form := s.byte(); form != 0x60 {
					s.fail("function type form 0x%02x", form)
					break
				}
				params := s.valTypes()
				results := s.valTypes()
				types = append(types, Signature{Params: params, Results: results})
			}
		case 2: // import
			n := s.u32()
			for i := uint32(0); i < n && s.err == nil; i++ {
				imp := Import{Module: s.name(), Name: s.name()}
				switch kind := s.byte(); kind {
				case 0x00:
					imp.Kind = ExternFunc
					ti := s.u32()
					funcTypes = append(funcTypes, ti)
					if int(ti) < len(types) {
						imp.Type = types[ti]
					} else if s.err == nil {
						s.fail("import %s.%s uses unknown type %d", imp.Module, imp.Name, ti)
					}
				case 0x01:
					imp.Kind = ExternTable
					s.byte()
					s.limits()
				case 0x02:
					imp.Kind = ExternMemory
					s.limits()
				case 0x03:
					imp.Kind = ExternGlobal
					s.byte()
					s.byte()
				case 0x04:
					imp.Kind = ExternTag
					s.byte()
					s.u32()
				default:
					s.fail("import kind 0x%02x", kind)
				}
				info.Imports = append(info.Imports, imp)
			}
		case 3: // function
			n := s.u32()
			for i := uint32(0); i < n && s.err == nil; i++ {
				funcTypes = append(funcTypes, s.u32())
			}
		case 0: // custom
			if s.name() == "name" && s.err == nil {
				info.named = true
				info.runtimeNames = readRuntimeNames(s)
			}
			s.err = nil // a malformed custom section does not make a module invalid
		case 7: // export
			n := s.u32()
			for i := uint32(0); i < n && s.err == nil; i++ {
				name := s.name()
				kind := s.byte()
				index := s.u32()
				var k ExternKind
				switch kind {
				case 0x00:
					k = ExternFunc
				case 0x01:
					k = ExternTable
				case 0x02:
					k = ExternMemory
				case 0x03:
					k = ExternGlobal
				case 0x04:
					k = ExternTag
				default:
					s.fail("export kind 0x%02x", kind)
				}
				exports = append(exports, struct {
					name  string
					kind  ExternKind
					index uint32
				}{name, k, index})
			}
		}
		if s.err != nil {
			r.err = fmt.Errorf("section %d: %w", id, s.err)
		}
	}
	if r.err != nil {
		return info, fmt.Errorf("wasmhost: Failed to parse corrupted Wasm module: %w", r.err)
	}
	for _, e := range exports {
		ex := Export{Name: e.name, Kind: e.kind}
		if e.kind == ExternFunc {
			if int(e.index) >= len(funcTypes) || int(funcTypes[e.index]) >= len(types) {
				return info, fmt.Errorf("wasmhost: Failed to parse corrupted Wasm module: export %q refers to unknown function %d", e.name, e.index)
			}
			ex.Type = types[funcTypes[e.index]]
			if v, ok := abi.VersionMarkers[e.name]; ok && info.ABIVersion == "" {
				info.ABIVersion = string(v)
			}
		}
		info.Exports = append(info.Exports, ex)
	}
	return info, nil
}

// reader decodes the LEB128 and vector encodings of the binary format, remembering the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end at offset %d", r.off)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("length %d exceeds the %d bytes left at offset %d", n, len(r.b)-r.off, r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u32le() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (r *reader) u64() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 integer too long")
	return 0
}

func (r *reader) u32() uint32 {
	v := r.u64()
	if v > 1<<32-1 {
		r.fail("integer %d overflows u32", v)
		return 0
	}
	return uint32(v)
}

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func (r *reader) valTypes() []ValueType {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if int(n) > len(r.b)-r.off {
		r.fail("vector of %d types exceeds the section", n)
		return nil
	}
	ts := make([]ValueType, n)
	for i := range ts {
		ts[i] = ValueType(r.byte())
	}
	return ts
}

func (r *reader) limits() {
	flags := r.byte()
	r.u64()
	if flags&0x01 != 0 {
		r.u64()
	}
}

func parseImportList(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// abiSpecificImports lists the env functions that proxy-wasm-cpp-host registers only for some ABI versions: a
// module of another version that imports one fails to link in Envoy even though the name is on the import list.
var abiSpecificImports = map[string][]abi.Version{
	"env.proxy_get_configuration": {abi.Version010},
	"env.proxy_continue_request":  {abi.Version010},
	"env.proxy_continue_response": {abi.Version010},
	"env.proxy_clear_route_cache": {abi.Version010},
	"env.proxy_continue_stream":   {abi.Version020, abi.Version021},
	"env.proxy_close_stream":      {abi.Version020, abi.Version021},
	"env.proxy_get_log_level":     {abi.Version021},
}

// CheckCompatibility returns the imports of info that a host offering exactly the allowed imports ("module.name")
// cannot satisfy, in module order and without duplicates; nil means the module links. Like Envoy it also counts as
// missing an env function that is on the list but not registered for the module's ABI version, and any imported
// global (Envoy links none). Memory and table imports are not judged here.
func CheckCompatibility(info ModuleInfo, allowed []string) []string {
	set := make(map[string]bool, len(allowed))
	for _, a := range allowed {
		set[a] = true
	}
	var missing []string
	seen := map[string]bool{}
	for _, imp := range info.Imports {
		key := imp.String()
		bad := false
		switch imp.Kind {
		case ExternFunc:
			bad = !set[key]
			if versions, ok := abiSpecificImports[key]; ok && !bad && info.ABIVersion != "" {
				bad = !slices.Contains(versions, abi.Version(info.ABIVersion))
			}
		case ExternGlobal, ExternTag:
			bad = true
		}
		if bad && !seen[key] {
			seen[key] = true
			missing = append(missing, key)
		}
	}
	return missing
}
