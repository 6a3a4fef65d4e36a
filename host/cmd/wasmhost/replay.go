package main

import (
	"context"
	"io"
	"os"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/replay"
)

const replayHelp = `
Usage: wasmhost replay --wasm F [--config C] [--request R] < responses.txt

Reads one or more HTTP/1.x response heads from stdin (a status line and header lines, each head ended by an empty
line; CRLF or LF), runs each through a fresh stream of the filter (on_request_headers with the request from R, then
on_response_headers) and writes the resulting heads to stdout in the same order, with CRLF line endings.

Header order and repeated headers (several Set-Cookie) are kept; header names come back lowercased, as Envoy and
HTTP/2 handle them; the status line is rebuilt as "HTTP/1.1 <code> <reason>". When the filter answers with a local
response, that head is printed instead. Obsolete line folding (a header line starting with a space) is refused.

The request R is a file holding a request head: "GET /path HTTP/1.1" plus header lines. A path target is replayed
as received over TLS (:scheme https); an absolute target ("GET http://chat.test/ HTTP/1.1") sets :scheme and
:authority itself. Without R: GET / HTTP/1.1 with Host: localhost.

Bad module, configuration, request or input: exit status 2 and one line on stderr.

Examples:
  wasmhost replay --wasm build/filter.wasm < testdata/replay/cometd-handshake.in
  wasmhost replay --wasm build/filter.wasm --config testdata/config/default.json \
      --request testdata/replay/cometd-handshake.request < testdata/replay/cometd-handshake.in
  wasmhost replay --wasm build/filter.wasm --platform gcp-service-extensions < testdata/replay/cometd-handshake.in
  printf 'HTTP/1.1 200 OK\nSet-Cookie: a=1\n\n' | wasmhost replay --wasm build/filter.wasm --config '{"cookies":{"same_site":"Lax"}}'
`

func runReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", replayHelp)
	wasm := fs.String("wasm", "", "the filter module (`file`.wasm); required")
	config := fs.String("config", "", "the plugin configuration: a JSON `file`, or inline JSON when it starts with '{'")
	request := fs.String("request", "", "a `file` holding the request head each response answers")
	upstream := fs.String("upstream-address", "", "the property upstream.address of every stream (`ip:port`), as the proxy would set it")
	var env stringList
	fs.Var(&env, "env", "pass an environment variable to the plugin: `NAME` (from wasmhost's environment) or NAME=VALUE; repeatable")
	cacheDir := fs.String("cache-dir", "", "keep compiled code in this `directory` for faster runs")
	logLevel := fs.String("log-level", "warn", "log `level` on stderr: debug, info, warn or error")
	envoy := envoyFlag(fs)
	var platformName string
	platformFlag(fs, &platformName)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	profile, code, ok := envoyProfile(stderr, fs, *envoy)
	if !ok {
		return code
	}
	if *wasm == "" {
		code, _ := usageError(stderr, fs.Name(), "--wasm is required")
		return code
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		code, _ := usageError(stderr, fs.Name(), "%v", err)
		return code
	}

	o := replay.Options{UpstreamAddress: *upstream, Logger: log}
	if *request != "" {
		f, err := os.Open(*request)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		o.Request, err = replay.ParseRequest(f)
		f.Close()
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
	}
	module, err := readModule(*wasm)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	plugin, err := readPluginSettings(*config, env, os.LookupEnv)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	platform, err := platformFor(platformName, plugin.config)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	h, err := newHost(ctx, host.Options{Module: module, PluginConfig: plugin.raw, Env: plugin.env, PoolSize: 1,
		CacheDir: *cacheDir, Logger: log, Envoy: profile.Name, Platform: platform})
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	defer h.Close(context.Background())
	heads, err := replay.ParseResponses(stdin)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	o.Filter = h
	if err := o.RunAll(ctx, heads, stdout); err != nil {
		return fail(stderr, exitFailure, err)
	}
	return exitOK
}
