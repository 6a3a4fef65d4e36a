package wasmbuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Options of a build.
type Options struct {
	// Dir is the directory the go command runs in (the module's root); "" is the current one.
	Dir string
	// OverlayDir receives the generated runtime files; default build/go-overlay under Dir.
	OverlayDir string
	// Go is the go command; default "go".
	Go string
	// NoRuntimeFix builds with the runtime as it is, for tests that show what the fix prevents. Never for a
	// module that is shipped.
	NoRuntimeFix bool
}

// Build compiles the Go main package pkg into the module out: GOOS=wasip1 GOARCH=wasm -buildmode=c-shared
// -trimpath, with the runtime fix (see the package documentation). out is written through a rename, so a reader
// never sees half a module.
func Build(pkg, out string, o Options) error {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.OverlayDir == "" {
		o.OverlayDir = filepath.Join(o.Dir, "build", "go-overlay")
	}
	dir, err := filepath.Abs(o.OverlayDir)
	if err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	o.OverlayDir = dir
	args := []string{"build", "-trimpath", "-buildmode=c-shared"}
	if !o.NoRuntimeFix {
		goroot, err := goEnv(o, "GOROOT")
		if err != nil {
			return err
		}
		overlay, err := WriteOverlay(goroot, o.OverlayDir)
		if err != nil {
			return err
		}
		args = append(args, "-overlay="+overlay)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".build-*.wasm")
	if err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	tmpAbs, err := filepath.Abs(tmp.Name())
	if err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	args = append(args, "-o", tmpAbs, pkg)
	cmd := exec.Command(o.Go, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("wasmbuild: %s %s: %v\n%s", o.Go, strings.Join(args, " "), err, msg)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("wasmbuild: %w", err)
	}
	return nil
}

func goEnv(o Options, name string) (string, error) {
	cmd := exec.Command(o.Go, "env", name)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %s env %s: %w", o.Go, name, err)
	}
	return string(bytes.TrimSpace(b)), nil
}
