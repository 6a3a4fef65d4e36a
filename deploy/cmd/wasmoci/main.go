// Command wasmoci packages build/filter.wasm as the OCI image Istio pulls for a WasmPlugin, without Docker.
//
//	wasmoci build  --wasm build/filter.wasm --out build/oci [--tag v1] [--push registry.example.com/chips/filter:v1]
//	wasmoci digest --wasm build/filter.wasm [--module]
//
// build writes an OCI image layout (and optionally pushes the same image); digest prints the 64 hex digits that
// belong in the WasmPlugin's sha256 field: the image manifest digest for oci:// URLs, or with --module the SHA-256
// of the .wasm file itself for file:// and https:// URLs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/deploy/oci"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage:
  wasmoci build  --wasm FILE --out DIR [--tag TAG] [--push IMAGE]
  wasmoci digest --wasm FILE [--module]`

// run is the command without process globals, so tests drive it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "build":
		return build(ctx, args[1:], stdout, stderr)
	case "digest":
		return digest(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("wasmoci: unknown command %q", args[0])
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wasmoci build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wasm := fs.String("wasm", "build/filter.wasm", "the filter module")
	out := fs.String("out", "build/oci", "directory of the OCI image layout to write (replaced if it is one)")
	tag := fs.String("tag", "latest", "ref.name annotation of the image in the layout")
	push := fs.String("push", "", "also push the image to this reference, e.g. registry.example.com/chips/filter:v1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("wasmoci build: unexpected arguments %q", fs.Args())
	}
	module, err := os.ReadFile(*wasm)
	if err != nil {
		return fmt.Errorf("wasmoci build: %w", err)
	}
	img, err := oci.Image(module)
	if err != nil {
		return fmt.Errorf("wasmoci build: %s: %w", *wasm, err)
	}
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("wasmoci build: %w", err)
	}
	if err := oci.WriteLayout(*out, img, *tag); err != nil {
		return fmt.Errorf("wasmoci build: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%s)\n", *out, d)
	if *push != "" {
		if err := oci.Push(ctx, img, *push); err != nil {
			return fmt.Errorf("wasmoci build: %w", err)
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", *push, d)
	}
	fmt.Fprintf(stdout, "WasmPlugin sha256: %s\n", d.Hex)
	return nil
}

func digest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wasmoci digest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wasm := fs.String("wasm", "build/filter.wasm", "the filter module")
	module := fs.Bool("module", false, "print the module's own SHA-256 (for file:// and https:// URLs) instead of the image digest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("wasmoci digest: unexpected arguments %q", fs.Args())
	}
	b, err := os.ReadFile(*wasm)
	if err != nil {
		return fmt.Errorf("wasmoci digest: %w", err)
	}
	if *module {
		fmt.Fprintln(stdout, oci.ModuleSHA256(b))
		return nil
	}
	d, err := oci.Digest(b)
	if err != nil {
		return fmt.Errorf("wasmoci digest: %s: %w", *wasm, err)
	}
	// Istio's field takes the bare hex digits ([a-f0-9]{64}), without the "sha256:" algorithm prefix.
	fmt.Fprintln(stdout, d.Hex)
	return nil
}
