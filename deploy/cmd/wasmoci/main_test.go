package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/deploy/oci"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

// sha256Field is the pattern Istio's WasmPlugin CRD and validation webhook require of the sha256 field.
var sha256Field = regexp.MustCompile(`^[a-f0-9]{64}$`)

// TestBuildPushPull is `make oci IMAGE=…` end to end with the real filter: the layout and the pushed image are the
// same artifact, the registry serves the media types Istio looks for, the layer is build/filter.wasm byte for
// byte, and `make sha256` printed exactly the digest the registry reports.
func TestBuildPushPull(t *testing.T) {
	wasm := testwasm.Filter(t)
	module, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/chips-proxy-wasm/filter:test"
	out := filepath.Join(t.TempDir(), "oci")

	if _, err := runCmd(t, "build", "--wasm", wasm, "--out", out, "--push", ref); err != nil {
		t.Fatal(err)
	}
	printed, err := runCmd(t, "digest", "--wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	printed = strings.TrimSpace(printed)
	if !sha256Field.MatchString(printed) {
		t.Fatalf("digest printed %q, which Istio's sha256 field would refuse", printed)
	}

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("registry manifest media type %s", desc.MediaType)
	}
	if desc.Digest.Hex != printed {
		t.Fatalf("registry digest %s, `wasmoci digest` printed %s", desc.Digest, printed)
	}
	pulled, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	got, err := oci.Verify(pulled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatalf("pulled module (%d bytes) differs from %s (%d bytes)", len(got), wasm, len(module))
	}

	local, err := oci.ReadLayout(out)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := local.Digest(); d != desc.Digest {
		t.Fatalf("layout holds %s, registry %s", d, desc.Digest)
	}
}

func TestDigestModule(t *testing.T) {
	wasm := testwasm.Filter(t)
	module, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	printed, err := runCmd(t, "digest", "--module", "--wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(printed) != oci.ModuleSHA256(module) {
		t.Fatalf("printed %q", printed)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"build", "--nope"}, {"digest", "extra"}} {
		if _, err := runCmd(t, args...); err == nil {
			t.Errorf("wasmoci %q succeeded", args)
		}
	}
	_, err := runCmd(t, "digest", "--wasm", filepath.Join(t.TempDir(), "missing.wasm"))
	if err == nil || !strings.Contains(err.Error(), "missing.wasm") {
		t.Fatalf("missing file: %v", err)
	}
}
