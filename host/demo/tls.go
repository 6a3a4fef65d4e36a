package demo

import (
	"crypto/tls"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/selfsigned"
)

// selfSignedCertificate returns the shop site's certificate, valid for 30 days so that a demo left running keeps
// working.
func selfSignedCertificate(hosts ...string) (tls.Certificate, error) {
	return selfsigned.Certificate("chips-proxy-wasm demo shop", 30*24*time.Hour, hosts...)
}
