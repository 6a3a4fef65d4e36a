package selfsigned

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestCertificateCoversLoopbackAndExtraNames(t *testing.T) {
	cert, err := Certificate("test", time.Hour, "*.test", "chat.localhost", "10.1.2.3", "")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "shop.test", "chat.localhost", "10.1.2.3"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("certificate also valid for example.com")
	}
	if d := cert.Leaf.NotAfter.Sub(time.Now()); d > time.Hour || d < 59*time.Minute {
		t.Errorf("validity ends in %v, want about an hour", d)
	}
}
