// Package serve is wasmhost's reverse proxy: it runs a proxy-wasm filter on every stream in front of one or more
// upstreams, the way Envoy would with the filter placed before envoy.http.stateful_session (header mode) and the
// router.
//
// Per stream: the request head goes to the filter (which may answer locally); the routing header, as the filter left
// it, picks the upstream when it names a known healthy one, else upstreams are taken round-robin; the upstream address
// is given to the filter (property upstream.address); the request is sent with the filter's headers and the client's
// body streamed; when the routing header was absent or named another upstream, the proxy adds it to the response with
// the address used (Envoy's stateful_session encoder runs before the filter on the response path); the response head
// goes to the filter, and the body is streamed back with a flush after every read, so long-polls and chunked responses
// are never held back.
//
// net/http exposes headers as maps: repeated headers keep their order and stay separate entries (several Set-Cookie
// lines stay several lines), but the order between different header names is not preserved.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
)

// Defaults for the zero values of Options.
const (
	DefaultDownFor         = 10 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// maxReplayBody is the largest request body buffered so that a request can be retried on another upstream when the
// first one refuses the connection. Larger or unsized bodies are streamed and never retried.
const maxReplayBody = 64 << 10

// Options configures a Server.
type Options struct {
	// Listen is the proxy's listen address, e.g. ":8443" or "127.0.0.1:0".
	Listen string
	// Upstreams are the cluster's endpoints (http:// or https:// URLs; a path is used as a prefix).
	Upstreams []*url.URL
	// Filter runs on every stream; nil runs the same proxy without a filter.
	Filter Filter
	// TLS, when non-nil, serves HTTPS with HTTP/2 offered through ALPN.
	TLS *TLSOptions
	// Admin is the admin listener's address ("" = no admin listener): /stats, /healthz, /config.
	Admin string
	// RoutingHeader is the stateful-session request header; default the filter's, config.DefaultRoutingHeader.
	RoutingHeader string
	// DownFor is how long an upstream that refused a connection stays out of rotation; default DefaultDownFor.
	DownFor time.Duration
	// ShutdownTimeout bounds the graceful shutdown when Serve's context ends; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives a structured line per request at debug level and errors at warn; default slog.Default().
	Logger *slog.Logger
	// Info holds extra entries for the admin /config page (for example the module path and failure policy).
	Info map[string]any
	// FilterConfig is the filter's configuration JSON, shown on /config with secrets (such as affinity keys) masked.
	FilterConfig []byte
	// Pprof adds Go's profiler (/debug/pprof/) to the admin listener, to profile the proxy under load. Off by
	// default: a profile shows everything the process does.
	Pprof bool
}

// Server is a running proxy with its listeners bound.
type Server struct {
	opts          Options
	log           *slog.Logger
	routingHeader string // lowercase
	bal           *balancer
	transport     *http.Transport
	tlsConfig     *tls.Config
	open          openStream    // nil without a filter
	filterMetrics filterMetrics // nil when the filter has no counters

	connections atomic.Uint64 // the last connection id given out

	ln, adminLn   net.Listener
	srv, adminSrv *http.Server

	active         atomic.Int64
	localResponses atomic.Int64
	upstreamErrors atomic.Int64
	noUpstream     atomic.Int64
	filterErrors   atomic.Int64

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates the options and binds the listeners; Serve starts serving. Addr is known as soon as New returns.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RoutingHeader == "" {
		o.RoutingHeader = config.DefaultRoutingHeader
	}
	if !validHeaderField(o.RoutingHeader, "") {
		return nil, fmt.Errorf("serve: routing header %q is not a valid header name", o.RoutingHeader)
	}
	if o.DownFor <= 0 {
		o.DownFor = DefaultDownFor
	}
	if o.Pprof && o.Admin == "" {
		return nil, errors.New("serve: pprof needs the admin listener")
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	bal, err := newBalancer(o.Upstreams, o.DownFor, time.Now)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Server{
		opts:          o,
		log:           o.Logger,
		routingHeader: strings.ToLower(o.RoutingHeader),
		bal:           bal,
		transport:     newTransport(),
		open:          streamsOf(o.Filter),
	}
	s.filterMetrics, _ = o.Filter.(filterMetrics)
	if o.TLS != nil {
		if s.tlsConfig, err = o.TLS.config(); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	s.ln, err = net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("serve: listen: %w", err)
	}
	if s.tlsConfig != nil {
		s.ln = tls.NewListener(s.ln, s.tlsConfig)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		// Long-polls and streamed responses: no read or write timeout on the whole exchange.
		ConnContext: s.withConnectionID,
	}
	if s.tlsConfig != nil {
		// Serve on a TLS listener only speaks HTTP/2 when the server is told to; ALPN offers it (NextProtos).
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetHTTP1(true)
		s.srv.Protocols.SetHTTP2(true)
		s.srv.TLSConfig = s.tlsConfig
	}
	if o.Admin != "" {
		s.adminLn, err = net.Listen("tcp", o.Admin)
		if err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("serve: admin listen: %w", err)
		}
		s.adminSrv = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		}
	}
	return s, nil
}

// connectionIDKey carries a connection's id in its requests' contexts.
type connectionIDKey struct{}

// withConnectionID numbers each downstream connection from 1, as Envoy does for the connection.id property: the
// streams of one connection share the id, streams of different connections never do.
func (s *Server) withConnectionID(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connectionIDKey{}, s.connections.Add(1))
}

// newTransport returns the upstream transport: keep-alive pools sized for a proxy, dial errors marked so that the
// balancer can tell a refused connection (upstream down, request never sent) from a failure after sending.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		ForceAttemptHTTP2:     true, // for https upstreams; http upstreams stay HTTP/1.1
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes upstream unchanged and the body comes back untouched.
		DisableCompression: true,
	}
}

// dialError marks an error from connecting to an upstream.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// Addr returns the proxy's bound listen address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdminAddr returns the admin listener's bound address, or "" when there is none.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// URL returns a base URL a client on this machine can use to reach the proxy.
func (s *Server) URL() string { return baseURL(s.tlsConfig != nil, s.Addr()) }

// AdminURL returns the admin listener's base URL, or "" when there is none.
func (s *Server) AdminURL() string {
	if s.adminLn == nil {
		return ""
	}
	return baseURL(false, s.AdminAddr())
}

// baseURL turns a bound address into a URL, replacing an unspecified IP (":8443" binds to all) by loopback.
func baseURL(tlsOn bool, addr string) string {
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Serve serves the proxy (and the admin listener) until ctx ends, then shuts down gracefully: listeners close, in-flight
// requests get Options.ShutdownTimeout to finish, and what is left is closed. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.srv.Serve(s.ln) }()
	if s.adminSrv != nil {
		go func() { errc <- s.adminSrv.Serve(s.adminLn) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.Shutdown(context.Background())
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends, then closes what is left.
// It is safe to call more than once and without Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		var errs []error
		if s.adminSrv != nil {
			// The admin page answers quickly; closing it outright keeps shutdown bounded by the proxy alone.
			if err := s.adminSrv.Close(); err != nil {
				errs = append(errs, err)
			}
			s.adminLn.Close()
		}
		if err := s.srv.Shutdown(ctx); err != nil {
			s.log.Warn("serve: graceful shutdown incomplete; closing remaining connections", "err", err)
			s.srv.Close()
		}
		s.ln.Close()
		s.transport.CloseIdleConnections()
		if len(errs) > 0 {
			s.shutdownErr = fmt.Errorf("serve: shutdown: %w", errors.Join(errs...))
		}
	})
	return s.shutdownErr
}
