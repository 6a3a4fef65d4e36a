// Package cputime reads the CPU time of the calling OS thread: the measure behind the benchmarks' cpu-ns/op and
// behind wasmhost's CPU budget per callback on platforms that impose one.
package cputime
