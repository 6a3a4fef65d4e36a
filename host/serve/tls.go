package serve

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/selfsigned"
)

// TLSOptions turns TLS on for the proxy's listener: either a certificate and key from files, or a self-signed
// certificate generated in memory at start.
type TLSOptions struct {
	CertFile, KeyFile string
	// SelfSigned generates an ECDSA P-256 certificate valid for 24 hours, for localhost, 127.0.0.1, ::1 and Hosts.
	SelfSigned bool
	// Hosts are extra DNS names (wildcards such as "*.test" allowed) or IP addresses for the self-signed certificate.
	Hosts []string
}

// Mode describes the TLS setting for logs and /config.
func (t *TLSOptions) mode() string {
	switch {
	case t == nil:
		return "off"
	case t.SelfSigned:
		return "self-signed"
	default:
		return "files"
	}
}

func (t *TLSOptions) config() (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case t.SelfSigned && (t.CertFile != "" || t.KeyFile != ""):
		return nil, fmt.Errorf("tls: a self-signed certificate and certificate files are mutually exclusive")
	case t.SelfSigned:
		cert, err = SelfSignedCertificate(t.Hosts...)
	case t.CertFile == "" || t.KeyFile == "":
		return nil, fmt.Errorf("tls: both a certificate file and a key file are needed")
	default:
		cert, err = tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			err = fmt.Errorf("tls: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// h2 first: browsers and Envoy-fronted clients use HTTP/2 whenever the server offers it.
		NextProtos: []string{"h2", "http/1.1"},
	}, nil
}

// SelfSignedCertificate returns an ECDSA P-256 certificate valid for 24 hours, for localhost, 127.0.0.1, ::1 and
// the extra names or IP addresses given. It is meant for local testing only.
func SelfSignedCertificate(hosts ...string) (tls.Certificate, error) {
	cert, err := selfsigned.Certificate("wasmhost self-signed", 24*time.Hour, hosts...)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	return cert, nil
}
