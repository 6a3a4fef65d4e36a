package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the work failed (or check found the module incompatible)
	exitUsage   = 2 // bad flags or bad input: module, configuration, captured heads
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// newFlagSet returns a subcommand's flag set. Parse errors are reported by parseFlags as one line, not by the flag
// package's multi-line dump; --help prints help (description, examples, flags) on stdout.
func newFlagSet(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmhost "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, strings.TrimLeft(help, "\n"))
		fmt.Fprint(w, "\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s", f.Name)
			if name != "" {
				fmt.Fprintf(w, " %s", name)
			}
			fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprint(w, "\n")
		})
	}
	return fs
}

// parseFlags parses args. It returns done=true with the exit status when the command must stop: after --help
// (status 0, help on stdout) or on a usage error (status 2, one line on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	}
	if err != nil {
		return usageError(stderr, fs.Name(), "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	return exitOK, false
}

// usageError prints one line and returns the usage exit status.
func usageError(stderr io.Writer, cmd, format string, args ...any) (int, bool) {
	fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", cmd, fmt.Sprintf(format, args...), cmd)
	return exitUsage, true
}

// fail prints err as one line starting with "wasmhost: " and returns code.
func fail(stderr io.Writer, code int, err error) int {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	if !strings.HasPrefix(msg, "wasmhost: ") {
		msg = "wasmhost: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return code
}

// newLogger returns a text logger on stderr at the named level.
func newLogger(stderr io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}

// readModule reads the .wasm file named by --wasm.
func readModule(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: module: %w", err)
	}
	return b, nil
}

// readConfig returns the plugin configuration named by --config: inline JSON when the value starts with '{', else
// the contents of that file. An empty value means no configuration (the plugin's defaults).
func readConfig(arg string) ([]byte, error) {
	if arg == "" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(arg), "{") {
		return []byte(arg), nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: config: %w", err)
	}
	return b, nil
}

// pluginSettings is the plugin's configuration as the command reads it: the document handed to the plugin, parsed
// by the plugin's own parser, and the environment the plugin gets.
type pluginSettings struct {
	raw    []byte
	config *config.Config
	env    map[string]string
}

// readPluginSettings reads --config (see readConfig) and parses it with the filter's own parser, so that a bad
// configuration is refused before the host starts, with the message the plugin would log, and the settings the
// command needs (the routing header, the keys' environment variable) are the plugin's.
//
// The environment is Envoy's vm_config.environment_variables: each --env is NAME (copied from wasmhost's own
// environment, like Envoy's host_env_keys) or NAME=VALUE (like key_values). The variable the configuration names in
// affinity.keys_env is passed on by itself when it is set, so a config that reads its keys from the environment
// works without repeating the name.
func readPluginSettings(configArg string, envFlags []string, lookup func(string) (string, bool)) (pluginSettings, error) {
	raw, err := readConfig(configArg)
	if err != nil {
		return pluginSettings{}, err
	}
	env := map[string]string{}
	for _, f := range envFlags {
		name, value, hasValue := strings.Cut(f, "=")
		if name == "" {
			return pluginSettings{}, fmt.Errorf("--env %q: want NAME or NAME=VALUE", f)
		}
		if !hasValue {
			v, ok := lookup(name)
			if !ok {
				return pluginSettings{}, fmt.Errorf("--env %s: not set in wasmhost's environment", name)
			}
			value = v
		}
		env[name] = value
	}
	pluginLookup := func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return lookup(name)
	}
	cfg, err := config.Parse(raw, pluginLookup)
	if err != nil {
		return pluginSettings{}, err
	}
	if name := cfg.Affinity.KeysEnv; name != "" {
		if v, ok := pluginLookup(name); ok {
			env[name] = v
		}
	}
	return pluginSettings{raw: raw, config: cfg, env: env}, nil
}

// newHost creates the host and turns a failure into one line. When the plugin rejects its configuration, the
// reason is in the plugin's own error log, not in host.New's error: the plugin's error records written while the
// host starts are held back, and the last one becomes the message ("wasmhost: config: cookies.same_site: …").
func newHost(ctx context.Context, o host.Options) (*host.Host, error) {
	capture := &startupCapture{holding: true}
	o.Logger = slog.New(&captureHandler{inner: o.Logger.Handler(), c: capture})
	h, err := host.New(ctx, o)
	held, last := capture.release()
	if err == nil {
		for _, r := range held {
			if r.h.Enabled(ctx, r.r.Level) {
				r.h.Handle(ctx, r.r)
			}
		}
		return h, nil
	}
	if last != "" && strings.Contains(err.Error(), "rejected its") {
		name := o.PluginName
		if name == "" {
			name = "chips"
		}
		return nil, errors.New("wasmhost: " + strings.TrimPrefix(last, name+": "))
	}
	return nil, err
}

// startupCapture holds the error records logged while the host starts.
type startupCapture struct {
	mu      sync.Mutex
	holding bool
	held    []heldRecord
	last    string
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func (c *startupCapture) release() ([]heldRecord, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	held := c.held
	c.held = nil
	return held, c.last
}

// captureHandler forwards records to inner, except the error records logged while its capture is holding.
type captureHandler struct {
	inner slog.Handler
	c     *startupCapture
}

func (h *captureHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l >= slog.LevelError {
		h.c.mu.Lock()
		holding := h.c.holding
		h.c.mu.Unlock()
		if holding {
			return true
		}
	}
	return h.inner.Enabled(ctx, l)
}

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.c.mu.Lock()
		if h.c.holding {
			h.c.held = append(h.c.held, heldRecord{h.inner, r.Clone()})
			h.c.last = r.Message
			h.c.mu.Unlock()
			return nil
		}
		h.c.mu.Unlock()
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{inner: h.inner.WithAttrs(as), c: h.c}
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	return &captureHandler{inner: h.inner.WithGroup(name), c: h.c}
}
