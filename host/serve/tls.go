package serve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
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

// SelfSignedCertificate returns an ECDSA P-256 certificate valid from a minute ago for 24 hours, for localhost,
// 127.0.0.1, ::1 and the extra names or IP addresses given. It is meant for local testing only.
func SelfSignedCertificate(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: self-signed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: self-signed serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"wasmhost self-signed"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
