package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func runVersion(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", `
Usage: wasmhost version

Prints wasmhost's version (the module version, or "devel" with the VCS revision for a build from a checkout), the
wazero version it runs on, and the Go toolchain.

Example:
  wasmhost version
`)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, versionString())
	return exitOK
}

// versionString is "wasmhost <version> [<revision>[+dirty]] wazero <version> <go version> <os>/<arch>".
func versionString() string {
	version, rev, wazero := "devel", "", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			rev += "+dirty"
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				wazero = d.Version
			}
		}
	}
	s := "wasmhost " + version
	if rev != "" {
		s += " " + rev
	}
	return fmt.Sprintf("%s wazero %s %s %s/%s", s, wazero, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
