package config

import (
	"path"
	"strings"
)

// Selected reports whether the cookie named name is to be rewritten: it matches an include pattern and no exclude
// pattern. Patterns were checked by Parse, so match errors cannot occur here.
func (c *Config) Selected(name string) bool {
	if c.selectAll {
		return true
	}
	return matchAny(c.Cookies.Include, name) && !matchAny(c.Cookies.Exclude, name)
}

// SelectsAll reports whether every cookie is selected, so that callers may skip extracting names.
func (c *Config) SelectsAll() bool { return c.selectAll }

// InScope reports whether a request to host (an :authority, port allowed) and path is one the filter acts on.
func (c *Config) InScope(authority, reqPath string) bool {
	if len(c.Scope.Hosts) > 0 && !matchAny(c.Scope.Hosts, hostOnly(authority)) {
		return false
	}
	if len(c.Scope.PathPrefixes) == 0 {
		return true
	}
	for _, p := range c.Scope.PathPrefixes {
		if strings.HasPrefix(reqPath, p) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// hostOnly strips the port and a trailing dot and lowercases, so "Chat.Example.com.:443" matches "chat.example.com"
// and "[::1]:443" gives "::1". It avoids package net on purpose: net's initialisation opens files, which adds WASI
// imports (path_filestat_get) that Envoy does not provide.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
