package demo

import (
	"embed"
	"html/template"
)

// assets holds the pages (templates/) and the scripts and styles they load (static/), so the demo needs no files
// next to the binary.
//
//go:embed templates static
var assets embed.FS

// pages are parsed once; html/template escapes every value per context, so a node name or a chat URL cannot
// inject markup.
var pages = template.Must(template.ParseFS(assets, "templates/*.html"))
