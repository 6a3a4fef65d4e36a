// Command buildwasm builds a Go proxy-wasm module the way every build in this repository does (package
// internal/wasmbuild): `go run ./internal/wasmbuild/cmd/buildwasm -o build/filter.wasm ./filter`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/wasmbuild"
)

func main() {
	out := flag.String("o", "", "the module to write (required)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: buildwasm -o out.wasm package")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := wasmbuild.Build(flag.Arg(0), *out, wasmbuild.Options{Go: os.Getenv("GO")}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
