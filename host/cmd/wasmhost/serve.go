package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/demo"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
)

const serveHelp = `
Usage: wasmhost serve --listen ADDR --upstream URL [--upstream URL]... [--wasm F] [--config C]
                      [--tls-cert F --tls-key F | --tls-self-signed] [--admin ADDR]
                      [--failure-policy closed|open|reload] [--pool N] [--cache-dir D]
                      [--session-header NAME] [--log-level debug|info|warn] [--pprof] [--demo]

A reverse proxy that runs the filter on every stream, the way Envoy runs it before envoy.http.stateful_session and
the router: HTTP/1.1, and HTTP/2 when TLS is on; request bodies and responses are streamed (long-polls are never
buffered); WebSocket upgrades pass through.

With several upstreams, requests are balanced round-robin, and Envoy's header-based stateful session is honoured: a
request whose session header (after the filter) holds base64("ip:port") of a healthy upstream goes there; when the
header was absent or named another upstream, the header with the upstream used is added to the response before the
filter sees it. An upstream that refuses connections is taken out of rotation for --down-for, and the request is
retried once elsewhere when its body allows it.

Without --wasm it is the same proxy with no filter, for side-by-side comparisons. The session header defaults to the
configuration's affinity.routing_header, else x-chips-upstream.

Admin listener (--admin): /stats (Prometheus text: the plugin's metrics as wasmcustom_*, the host's and the proxy's
counters), /healthz, /config (the effective configuration, secrets masked), and with --pprof Go's profiler under
/debug/pprof/ (e.g. go tool pprof http://127.0.0.1:9901/debug/pprof/profile?seconds=10 while under load).

--demo starts the embedded demo instead of real upstreams: three chat nodes that imitate a CometD chat server, and a
shop page on another site that embeds the chat through this proxy (TLS is then on; self-signed unless given).

Stops gracefully on SIGINT or SIGTERM.

Examples:
  wasmhost serve --listen 127.0.0.1:8443 --tls-self-signed --wasm build/filter.wasm \
      --upstream http://127.0.0.1:8081 --upstream http://127.0.0.1:8082 --admin 127.0.0.1:9901
  wasmhost serve --listen :8443 --tls-cert cert.pem --tls-key key.pem --wasm build/filter.wasm \
      --config testdata/config/affinity.json --upstream http://10.0.0.5:8080 --upstream http://10.0.0.6:8080
  wasmhost serve --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9000          # no filter: the baseline
  wasmhost serve --demo --wasm build/filter.wasm --config testdata/config/default.json --tls-self-signed
`

// defaultFilterWasm is where `make build` writes the filter; --config alone implies it, so that
// `wasmhost serve --config testdata/config/affinity.json --upstream …` works from the repository root.
const defaultFilterWasm = "build/filter.wasm"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// serveStarted, when set (by tests), is called with the running proxy once it listens.
var serveStarted func(*serve.Server)

// serveFlags are serve's command line.
type serveFlags struct {
	listen, wasm, config, tlsCert, tlsKey, admin, policy, cacheDir, sessionHeader, logLevel, demoShop string
	platform                                                                                          string
	upstreams, tlsHosts, env                                                                          stringList
	selfSigned, demo, pprof                                                                           bool
	pool                                                                                              int
	downFor                                                                                           time.Duration
	envoy                                                                                             *host.EnvoyProfile
}

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, code, done := parseServeFlags(args, stdout, stderr)
	if done {
		return code
	}
	usage := func(format string, args ...any) int {
		code, _ := usageError(stderr, "wasmhost serve", format, args...)
		return code
	}
	fp, err := host.ParseFailurePolicy(f.policy)
	if err != nil {
		return usage("--failure-policy: want closed, open or reload, got %q", f.policy)
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return usage("%v", err)
	}
	var upURLs []*url.URL
	for _, u := range f.upstreams {
		pu, err := parseUpstream(u)
		if err != nil {
			return usage("--upstream %q: %v", u, err)
		}
		upURLs = append(upURLs, pu)
	}
	plugin, err := readPluginSettings(f.config, f.env, os.LookupEnv)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	routing := f.sessionHeader
	if routing == "" {
		routing = plugin.config.Affinity.RoutingHeader
	}

	info := map[string]any{"failure_policy": fp.String(), "log_level": f.logLevel}
	var filter serve.Filter
	if f.wasm != "" {
		h, err := startFilterHost(ctx, f, plugin, fp, log, info)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		defer h.Close(context.Background())
		filter = h
	}

	var d *demo.Demo
	if f.demo {
		d, err = demo.Start(ctx, demo.Options{Logger: log, ShopAddr: f.demoShop})
		if err != nil {
			return fail(stderr, exitFailure, err)
		}
		defer d.Close()
		for _, u := range d.NodeURLs() {
			pu, err := parseUpstream(u)
			if err != nil {
				return fail(stderr, exitFailure, err)
			}
			upURLs = append(upURLs, pu)
		}
		info["demo"] = true
	}

	srv, err := serve.New(serve.Options{
		Listen:        f.listen,
		Upstreams:     upURLs,
		Filter:        filter,
		TLS:           f.tlsOptions(),
		Admin:         f.admin,
		RoutingHeader: routing,
		DownFor:       f.downFor,
		Logger:        log,
		Info:          info,
		FilterConfig:  plugin.raw,
		Pprof:         f.pprof,
	})
	if err != nil {
		return fail(stderr, exitFailure, err)
	}
	if d != nil {
		if err := d.SetChatURL(demoChatURL(srv)); err != nil {
			srv.Shutdown(context.Background())
			return fail(stderr, exitFailure, err)
		}
	}
	printBanner(stdout, srv, upURLs, f.wasm, routing, d)
	if serveStarted != nil {
		serveStarted(srv)
	}
	if err := srv.Serve(ctx); err != nil {
		return fail(stderr, exitFailure, err)
	}
	log.Info("wasmhost: stopped")
	return exitOK
}

// parseServeFlags parses and checks serve's flags. done reports that the command must stop with code: after --help,
// or on a usage error (printed).
func parseServeFlags(args []string, stdout, stderr io.Writer) (f *serveFlags, code int, done bool) {
	f = &serveFlags{}
	fs := newFlagSet("serve", serveHelp)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "the proxy's listen `address`")
	fs.Var(&f.upstreams, "upstream", "an upstream `URL` (http://ip:port); repeat for several")
	fs.StringVar(&f.wasm, "wasm", "", "the filter module (`file`.wasm); none: proxy without filter, unless --config is\ngiven, which implies "+defaultFilterWasm)
	fs.StringVar(&f.config, "config", "", "the plugin configuration: a JSON `file`, or inline JSON when it starts with '{'")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM), with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key `file` (PEM), with --tls-cert")
	fs.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve TLS with an in-memory self-signed certificate (ECDSA P-256, 24h) for\nlocalhost, 127.0.0.1, ::1 and every --tls-host")
	fs.Var(&f.tlsHosts, "tls-host", "an extra `name` for the self-signed certificate (\"*.test\", \"chat.test\"); repeatable")
	fs.StringVar(&f.admin, "admin", "", "the admin listener's `address` (/stats, /healthz, /config); none by default")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler on the admin listener (/debug/pprof/), to profile the proxy under load")
	fs.StringVar(&f.policy, "failure-policy", "closed", "what a stream gets when the plugin fails (`policy`): closed (503), open (unchanged)\nor reload (503 and a fresh instance), like Envoy's failure_policy")
	fs.IntVar(&f.pool, "pool", 0, "plugin instances (VMs), like Envoy's worker threads; each carries any number of streams (`N`); 0: GOMAXPROCS")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "keep compiled code in this `directory` for faster restarts")
	fs.StringVar(&f.sessionHeader, "session-header", "", "the stateful-session routing header `name` (default: the config's\naffinity.routing_header, else "+config.DefaultRoutingHeader+")")
	fs.DurationVar(&f.downFor, "down-for", serve.DefaultDownFor, "how long an upstream that refused a connection stays out of rotation")
	fs.Var(&f.env, "env", "pass an environment variable to the plugin: `NAME` (from wasmhost's environment) or NAME=VALUE; repeatable")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level` on stderr: debug (one line per request), info, warn or error")
	fs.BoolVar(&f.demo, "demo", false, "start the embedded demo chat nodes and shop page as upstreams")
	platformFlag(fs, &f.platform)
	fs.StringVar(&f.demoShop, "demo-shop", "127.0.0.1:8444", "with --demo: the demo shop's listen `address` (\"127.0.0.1:0\": any free port)")
	envoy := envoyFlag(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return nil, code, true
	}
	var ok bool
	if f.envoy, code, ok = envoyProfile(stderr, fs, *envoy); !ok {
		return nil, code, true
	}
	usage := func(format string, args ...any) (*serveFlags, int, bool) {
		code, _ := usageError(stderr, fs.Name(), format, args...)
		return nil, code, true
	}
	switch {
	case len(f.upstreams) == 0 && !f.demo:
		return usage("at least one --upstream is required (or --demo)")
	case len(f.upstreams) > 0 && f.demo:
		return usage("--demo runs its own upstreams; drop --upstream")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usage("--tls-cert and --tls-key go together")
	case f.tlsCert != "" && f.selfSigned:
		return usage("--tls-self-signed and --tls-cert/--tls-key are mutually exclusive")
	case f.config != "" && f.wasm == "" && !fileExists(defaultFilterWasm):
		return usage("--config needs --wasm (the configuration is the filter's; %s, the default, does not exist: run make build)", defaultFilterWasm)
	case f.pprof && f.admin == "":
		return usage("--pprof needs --admin (the profiler is served on the admin listener)")
	case f.pool < 0:
		return usage("--pool: want 0 or more, got %d", f.pool)
	case f.downFor <= 0:
		return usage("--down-for: want a positive duration, got %v", f.downFor)
	}
	if f.config != "" && f.wasm == "" {
		f.wasm = defaultFilterWasm
	}
	return f, exitOK, false
}

// startFilterHost starts the host that runs the filter on every stream, and records in info what /config shows of it.
func startFilterHost(ctx context.Context, f *serveFlags, plugin pluginSettings, fp host.FailurePolicy, log *slog.Logger,
	info map[string]any) (*host.Host, error) {
	module, err := readModule(f.wasm)
	if err != nil {
		return nil, err
	}
	platform, err := platformFor(f.platform, plugin.config)
	if err != nil {
		return nil, err
	}
	h, err := newHost(ctx, host.Options{Module: module, PluginConfig: plugin.raw, Env: plugin.env, PoolSize: f.pool,
		CacheDir: f.cacheDir, FailurePolicy: fp, Logger: log, Envoy: f.envoy.Name, Platform: platform})
	if err != nil {
		return nil, err
	}
	info["platform"] = f.platform
	envNames := make([]string, 0, len(plugin.env))
	for k := range plugin.env {
		envNames = append(envNames, k)
	}
	info["wasm"] = f.wasm
	info["pool"] = f.pool
	info["envoy"] = f.envoy.String()
	info["plugin_env"] = envNames // names only: values may be keys
	if f.cacheDir != "" {
		info["cache_dir"] = f.cacheDir
	}
	return h, nil
}

// tlsOptions is the proxy's TLS: from files, self-signed, or none.
func (f *serveFlags) tlsOptions() *serve.TLSOptions {
	switch {
	case f.tlsCert != "":
		return &serve.TLSOptions{CertFile: f.tlsCert, KeyFile: f.tlsKey}
	case f.selfSigned || f.demo:
		// The demo's shop is HTTPS, and Secure or Partitioned cookies need a secure chat origin too.
		return &serve.TLSOptions{SelfSigned: true, Hosts: append(f.tlsHosts, demoChatHost)}
	}
	return nil
}

// demoChatHost is the name the demo's shop page uses for the chat (this proxy): *.localhost resolves to loopback
// in Chromium and Firefox without any setup, and is another site than the shop's shop.localhost.
const demoChatHost = "chat.localhost"

// demoChatURL is the proxy's address under the demo's chat name.
func demoChatURL(srv *serve.Server) string {
	_, port, _ := net.SplitHostPort(srv.Addr())
	return "https://" + net.JoinHostPort(demoChatHost, port)
}

// parseUpstream accepts "http://host:port[/prefix]", "https://…", or a bare "host:port" (taken as http).
func parseUpstream(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("no host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("want scheme://host:port[/path] only")
	}
	return u, nil
}

// printBanner tells the user where everything is.
func printBanner(w io.Writer, srv *serve.Server, ups []*url.URL, wasm, routing string, d *demo.Demo) {
	protos := "HTTP/1.1"
	if strings.HasPrefix(srv.URL(), "https:") {
		protos = "HTTP/1.1 and HTTP/2"
	}
	fmt.Fprintf(w, "wasmhost: proxy on %s (%s)\n", srv.URL(), protos)
	if wasm != "" {
		fmt.Fprintf(w, "  filter:    %s\n", wasm)
	} else {
		fmt.Fprintf(w, "  filter:    none (plain proxy)\n")
	}
	names := make([]string, len(ups))
	for i, u := range ups {
		names[i] = u.String()
	}
	fmt.Fprintf(w, "  upstreams: %s (round-robin; session header %s)\n", strings.Join(names, ", "), routing)
	curl := "curl -i "
	if strings.HasPrefix(srv.URL(), "https:") {
		curl = "curl -k -i "
	}
	fmt.Fprintf(w, "  try:       %s%s/\n", curl, srv.URL())
	if a := srv.AdminURL(); a != "" {
		fmt.Fprintf(w, "  stats:     %s/stats   (also %s/healthz and %s/config)\n", a, a, a)
	} else {
		fmt.Fprintf(w, "  stats:     no admin listener (add --admin 127.0.0.1:9901 for /stats)\n")
	}
	if d != nil {
		fmt.Fprintf(w, "  demo:      open %s in Chromium or Firefox; the chat in the page comes through this proxy.\n"+
			"             *.localhost names need no setup. The certificates are self-signed: accept the shop's, and open\n"+
			"             %s once to accept the chat's (an iframe cannot show the warning), or start Chromium with\n"+
			"             --ignore-certificate-errors\n",
			d.ShopURL(), demoChatURL(srv))
	}
	fmt.Fprintf(w, "  stop:      Ctrl-C (graceful, in-flight requests finish within %s)\n",
		serve.DefaultShutdownTimeout.Round(time.Second))
}
