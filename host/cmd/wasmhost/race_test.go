//go:build race

package main

// raceEnabled is set when the tests run with -race, which slows the guest tenfold: the Envoy gate then runs fewer
// requests, enough for the race detector, and the full count runs in the plain `go test ./...` of `make test`.
const raceEnabled = true
