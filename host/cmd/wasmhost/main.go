// Command wasmhost runs a proxy-wasm filter (.wasm) outside Envoy, on the wazero-based host of package host:
//
//	wasmhost replay  --wasm F [--config C] [--request R] < responses.txt
//	wasmhost serve   --listen ADDR --upstream URL... [--wasm F] [--config C] [--tls-self-signed] [--admin ADDR]
//	wasmhost check   --wasm F [--envoy 1.33]
//	wasmhost version
//
// Each subcommand documents itself with --help. Exit status: 0 on success, 1 when the work itself fails (or check
// finds the module incompatible), 2 for usage errors and bad input (module, configuration, captured heads).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: it gets its own arguments and returns the exit status.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = []command{
	{"replay", "run captured HTTP response heads (stdin) through the filter and print the results", runReplay},
	{"serve", "run a local reverse proxy (TLS, HTTP/2, several upstreams, sticky sessions) with the filter", runServe},
	{"check", "print a module's imports, exports and ABI version, and whether Envoy can load it", runCheck},
	{"version", "print the version of wasmhost", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprint(w, `wasmhost runs a proxy-wasm filter (.wasm) outside Envoy, with Envoy's semantics.

Usage:
  wasmhost <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "wasmhost <command> --help" for a command's flags and examples.

Examples:
  wasmhost check --wasm build/filter.wasm
  wasmhost replay --wasm build/filter.wasm --config '{"cookies":{"same_site":"None"}}' < testdata/replay/cometd-handshake.in
  wasmhost serve --wasm build/filter.wasm --upstream http://127.0.0.1:8080 --tls-self-signed --admin 127.0.0.1:9901
`)
}

// run dispatches to a subcommand; it is main without the process around it, so tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-version", "--version":
		return runVersion(ctx, nil, stdin, stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "wasmhost: unknown command %q (want replay, serve, check or version; see wasmhost --help)\n", args[0])
	return 2
}
