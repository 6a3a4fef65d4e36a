// Package wasmbuild builds the repository's Go modules for proxy-wasm hosts: GOOS=wasip1 GOARCH=wasm, as a reactor
// (-buildmode=c-shared), with -trimpath, and with the Go runtime made safe for the WASI that Envoy provides. Every
// build of a module goes through Build (make build, make oci and the tests, through internal/testwasm), so they
// all produce the same bytes.
//
// # The runtime fix
//
// proxy-wasm-cpp-host, Envoy's Wasm host, answers WASI poll_oneoff with ENOSYS in Envoy 1.33 to 1.37 and refuses it
// outright (a trap) while it runs the module's allocator. Go's wasip1 runtime calls poll_oneoff in two places and
// throws when it fails: netpoll, which every GC start reaches once any timer has been armed, and usleep, which
// panics and a few runtime paths call (golang/go#78513). Under proxy-wasm neither call can do anything useful:
// the host gives a module no file descriptor that could be polled, and a single-threaded module has no other
// thread to wait for. So Build compiles the runtime with two edits, generated at build time from the GOROOT in use
// (no copy of Go's source is kept here) and passed to the compiler with -overlay:
//
//   - netpoll returns at once, with no goroutine made ready, when no file descriptor is subscribed, instead of
//     calling poll_oneoff with its clock subscription alone. That is what a host answering "no events" (cpp-host
//     94091cd) gives the runtime; with a subscription, poll_oneoff is still called as before.
//   - usleep returns at once instead of calling poll_oneoff; cpp-host 94091cd returns at once too.
//
// When the runtime source does not have the shape the edits expect (another Go release changed it), the build fails
// and names the file and the code it looked for, rather than building a module that may crash in Envoy.
package wasmbuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
)

// The functions the edits add to the runtime. They are not inlined, so their names stay in the module's name section,
// where wasmhost check finds them (host.InspectGoRuntime).
const (
	NetpollMarker = "proxyWasmNothingToPoll"
	UsleepMarker  = "proxyWasmNoSleep"
)

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// runtimeEdit is one file of the runtime and the function that finds its edits.
type runtimeEdit struct {
	file string // relative to $GOROOT/src/runtime
	find func(fset *token.FileSet, f *ast.File) ([]edit, error)
}

var runtimeEdits = []runtimeEdit{
	{"netpoll_wasip1.go", netpollEdit},
	{"os_wasip1.go", usleepEdit},
}

// netpollEdit turns netpoll's "if len(pollsubs) == 0" early return (nothing to wait for when no timeout is
// wanted) into "if len(subs) == 1": no file descriptor subscribed, whatever the delay. subs[0] is the clock
// subscription netpollinit reserves.
func netpollEdit(fset *token.FileSet, f *ast.File) ([]edit, error) {
	fn := findFunc(f, "netpoll")
	if fn == nil {
		return nil, fmt.Errorf("func netpoll(delay int64) (gList, int32) not found")
	}
	var found []edit
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		ifs, ok := n.(*ast.IfStmt)
		if !ok || ifs.Init != nil {
			return true
		}
		if isLenCompare(ifs.Cond, "pollsubs", token.EQL, "0") && returnsAfterUnlock(ifs.Body) {
			found = append(found, edit{
				start: fset.Position(ifs.Cond.Pos()).Offset,
				end:   fset.Position(ifs.Cond.End()).Offset,
				text:  NetpollMarker + "()",
			})
		}
		return true
	})
	if len(found) != 1 {
		return nil, fmt.Errorf("in netpoll, the statement `if len(pollsubs) == 0 { unlock(&mtx); return ... }` was found %d times, want once", len(found))
	}
	end := fset.Position(f.End()).Offset
	found = append(found, edit{start: end, end: end, text: `
// ` + NetpollMarker + ` reports that no file descriptor is subscribed, so that netpoll returns without calling
// poll_oneoff for its clock subscription alone, which proxy-wasm hosts refuse (added by wasmbuild; its name marks
// the fix for wasmhost check).
//
//go:noinline
func ` + NetpollMarker + `() bool { return len(subs) == 1 }
`})
	return found, nil
}

// usleepEdit empties usleep's body, which fills a clock subscription and calls poll_oneoff, throwing if it fails.
func usleepEdit(fset *token.FileSet, f *ast.File) ([]edit, error) {
	fn := findFunc(f, "usleep")
	if fn == nil || fn.Type.Params.NumFields() != 1 || fn.Type.Results != nil {
		return nil, fmt.Errorf("func usleep(usec uint32) not found")
	}
	calls := 0
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "poll_oneoff" {
				calls++
			}
		}
		return true
	})
	if calls != 1 {
		return nil, fmt.Errorf("usleep calls poll_oneoff %d times, want once", calls)
	}
	return []edit{{
		start: fset.Position(fn.Body.Lbrace).Offset,
		end:   fset.Position(fn.Body.Rbrace).Offset + 1,
		text:  "{\n\t" + UsleepMarker + "()\n}",
	}, {
		start: fset.Position(f.End()).Offset,
		end:   fset.Position(f.End()).Offset,
		text: `
// ` + UsleepMarker + ` is all usleep does: a single-threaded module has no other thread to wait for, and proxy-wasm
// hosts refuse poll_oneoff (added by wasmbuild; its name marks the fix for wasmhost check).
//
//go:noinline
func ` + UsleepMarker + `() {}
`,
	}}, nil
}

func findFunc(f *ast.File, name string) *ast.FuncDecl {
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == name && fn.Body != nil {
			return fn
		}
	}
	return nil
}

// isLenCompare matches `len(ident) op lit`.
func isLenCompare(e ast.Expr, ident string, op token.Token, lit string) bool {
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != op {
		return false
	}
	call, ok := b.X.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return false
	}
	if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "len" {
		return false
	}
	if arg, ok := call.Args[0].(*ast.Ident); !ok || arg.Name != ident {
		return false
	}
	l, ok := b.Y.(*ast.BasicLit)
	return ok && l.Value == lit
}

// returnsAfterUnlock matches the block `{ unlock(&mtx); return ... }`.
func returnsAfterUnlock(b *ast.BlockStmt) bool {
	if len(b.List) != 2 {
		return false
	}
	es, ok := b.List[0].(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "unlock" {
		return false
	}
	_, ok = b.List[1].(*ast.ReturnStmt)
	return ok
}

// WriteOverlay generates the edited runtime files of goroot under dir and returns the path of the -overlay JSON
// file that maps the originals to them. The output depends only on the runtime's source: generating twice gives the
// same files, so builds stay reproducible, and concurrent generations write the same bytes.
func WriteOverlay(goroot, dir string) (string, error) {
	replace := map[string]string{}
	var all []byte
	for _, re := range runtimeEdits {
		orig := filepath.Join(goroot, "src", "runtime", re.file)
		src, err := os.ReadFile(orig)
		if err != nil {
			return "", fmt.Errorf("wasmbuild: the runtime fix needs %s: %w", orig, err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, orig, src, parser.ParseComments)
		if err != nil {
			return "", fmt.Errorf("wasmbuild: %w", err)
		}
		edits, err := re.find(fset, f)
		if err != nil {
			return "", fmt.Errorf("wasmbuild: %s: %v; this Go release is not known to the runtime fix (see internal/wasmbuild), so the module could crash in Envoy", orig, err)
		}
		out := applyEdits(src, edits)
		if _, err := parser.ParseFile(token.NewFileSet(), orig, out, 0); err != nil {
			return "", fmt.Errorf("wasmbuild: %s: the edited file does not parse: %w", orig, err)
		}
		sum := sha256.Sum256(out)
		path := filepath.Join(dir, hex.EncodeToString(sum[:8])+"-"+re.file)
		if err := writeAtomic(path, out); err != nil {
			return "", err
		}
		replace[orig] = path
		all = append(all, out...)
	}
	js, err := json.MarshalIndent(struct{ Replace map[string]string }{replace}, "", "\t")
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %w", err)
	}
	sum := sha256.Sum256(append(all, js...))
	path := filepath.Join(dir, "overlay-"+hex.EncodeToString(sum[:8])+".json")
	return path, writeAtomic(path, js)
}

func applyEdits(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := bytes.Clone(src)
	for _, e := range edits {
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out
}

// writeAtomic writes data to path through a temporary file and a rename, so that a concurrent reader never sees a
// partial file.
func writeAtomic(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("wasmbuild: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("wasmbuild: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("wasmbuild: %w", err)
	}
	return nil
}
