package demo

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// Shop serves the demo shop: a page on its own site that embeds the chat widget in a cross-site iframe, exactly
// the situation in which a browser blocking third-party cookies drops the chat's cookies unless they are
// partitioned.
//
//	GET /                    the shop page; its iframe loads <chat URL>/widget
//	GET /static/...          the scripts and styles of the page
//
// The page's query parameters "connects" (a count; 0 or absent = keep polling) and "disconnect" ("1" = end the
// session after the connects) are passed on to the widget, so a test can ask for a bounded, complete session.
// The widget reports its progress to the shop with postMessage; the shop shows it and keeps it in window.chatState.
type Shop struct {
	chat   atomic.Pointer[url.URL] // nil until a chat URL is set
	log    *slog.Logger
	mux    *http.ServeMux
	static http.Handler
}

// NewShop returns the shop handler embedding the chat reachable at chatURL (scheme, host, optional port and path
// prefix, e.g. "https://chat.localhost:8443"): the public URL of the proxy in front of the chat nodes. An empty
// chatURL leaves it unset (see SetChatURL).
func NewShop(chatURL string, logger *slog.Logger) (*Shop, error) {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Shop{log: logger.With("component", "demo-shop"), mux: http.NewServeMux(), static: staticHandler()}
	if chatURL != "" {
		if err := s.SetChatURL(chatURL); err != nil {
			return nil, err
		}
	}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.Handle("GET /static/", s.static)
	return s, nil
}

// SetChatURL sets or replaces the chat URL the shop embeds. It lets a command start the shop before the proxy whose
// URL it embeds (a proxy on an ephemeral port is known only once it listens); until a URL is set the shop page
// answers 503. It is safe to call while the shop serves.
func (s *Shop) SetChatURL(chatURL string) error {
	u, err := url.Parse(chatURL)
	if err != nil {
		return fmt.Errorf("demo: chat URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("demo: chat URL: want http(s)://host[:port][/prefix], got %q", chatURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	s.chat.Store(u)
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ChatOrigin returns the origin of the embedded chat, the only origin whose messages the shop page accepts, or ""
// while no chat URL is set.
func (s *Shop) ChatOrigin() string {
	u := s.chat.Load()
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// WidgetURL returns the iframe URL for a shop page requested with query q: the widget path under the chat URL,
// with the widget's own parameters passed on after validation. It returns "" while no chat URL is set.
func (s *Shop) WidgetURL(q url.Values) string {
	u := s.chat.Load()
	if u == nil {
		return ""
	}
	w := *u
	w.Path += "/widget"
	out := url.Values{}
	if n, err := strconv.Atoi(q.Get("connects")); err == nil && n > 0 {
		out.Set("connects", strconv.Itoa(min(n, maxConnects)))
	}
	if q.Get("disconnect") == "1" {
		out.Set("disconnect", "1")
	}
	w.RawQuery = out.Encode()
	return w.String()
}

// maxConnects caps the connects a page may ask for, so a typo cannot keep a test page busy for hours.
const maxConnects = 1000

// shopData feeds templates/shop.html.
type shopData struct {
	Host       string
	ChatOrigin string
	WidgetURL  string
}

func (s *Shop) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	data := shopData{Host: r.Host, ChatOrigin: s.ChatOrigin(), WidgetURL: s.WidgetURL(r.URL.Query())}
	if data.WidgetURL == "" {
		http.Error(w, "demo: the shop has no chat URL yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "shop.html", data); err != nil {
		s.log.Warn("demo: rendering shop page", "err", err)
	}
}
