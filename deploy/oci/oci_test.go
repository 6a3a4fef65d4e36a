package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeModule is a minimal valid WebAssembly binary (just the header) followed by a custom section, enough for
// the packaging logic, which never looks past the header.
func fakeModule(tag string) []byte {
	b := append([]byte{}, wasmMagic...)
	// custom section (id 0): size, name length, name, payload
	payload := []byte(tag)
	b = append(b, 0x00, byte(1+4+len(payload)), 4, 'n', 'a', 'm', 'e')
	return append(b, payload...)
}

// startRegistry serves an in-memory registry on loopback and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestImageShape(t *testing.T) {
	module := fakeModule("shape")
	img, err := Image(module)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != WasmConfigMediaType {
		t.Fatalf("manifest %s, config %s", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 2 || m.Layers[0].MediaType != WasmConfigMediaType || m.Layers[1].MediaType != WasmLayerMediaType {
		t.Fatalf("layers: %+v", m.Layers)
	}
	if m.Layers[1].Size != int64(len(module)) || m.Layers[1].Digest.Hex != ModuleSHA256(module) {
		t.Fatalf("module layer descriptor %+v does not describe the module", m.Layers[1])
	}
	if m.Layers[0].Digest != m.Config.Digest {
		t.Fatalf("first layer %s should be the config blob %s", m.Layers[0].Digest, m.Config.Digest)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var rc RuntimeConfig
	if err := json.Unmarshal(cfg, &rc); err != nil || rc.Type != "envoy_proxy" {
		t.Fatalf("config blob %s: %+v, %v", cfg, rc, err)
	}
	got, err := Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatal("Verify returned other bytes than the module")
	}
}

// The digest must depend on the module only: `make sha256` computes it without building or pushing anything.
func TestDigestDeterministic(t *testing.T) {
	a, err := Digest(fakeModule("one"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Digest(fakeModule("one"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Digest(fakeModule("two"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("same module, different digests: %s, %s", a, b)
	}
	if a == c {
		t.Fatalf("different modules, same digest %s", a)
	}
	if a.Algorithm != "sha256" || len(a.Hex) != 64 {
		t.Fatalf("digest %s is not a sha256", a)
	}
}

func TestImageRejectsNonWasm(t *testing.T) {
	_, err := Image([]byte("#!/bin/sh\necho not wasm\n"))
	if err == nil || !strings.Contains(err.Error(), "not a WebAssembly binary") {
		t.Fatalf("got %v", err)
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	module := fakeModule("layout")
	img, err := Image(module)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	// Twice: the second write must replace the first layout, not add a second image to it.
	for range 2 {
		if err := WriteLayout(dir, img, "test"); err != nil {
			t.Fatal(err)
		}
	}
	back, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatal("layer read back from the layout differs from the module")
	}
	want, _ := img.Digest()
	if d, _ := back.Digest(); d != want {
		t.Fatalf("layout digest %s, built %s", d, want)
	}
	// The module blob sits in the layout uncompressed, under its own SHA-256.
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", ModuleSHA256(module)))
	if err != nil || !bytes.Equal(blob, module) {
		t.Fatalf("module blob in layout: %v", err)
	}
}

func TestWriteLayoutRefusesOtherDirectories(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Image(fakeModule("x"))
	if err != nil {
		t.Fatal(err)
	}
	err = WriteLayout(dir, img, "")
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("unrelated file was removed: %v", err)
	}
}

func TestPushPull(t *testing.T) {
	module := fakeModule("push")
	img, err := Image(module)
	if err != nil {
		t.Fatal(err)
	}
	ref := startRegistry(t) + "/chips/filter:test"
	if err := Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Digest(module)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want || desc.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("registry has %s (%s), want %s", desc.Digest, desc.MediaType, want)
	}
	pulled, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(pulled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatal("pulled module differs")
	}
}

// badImage assembles a two-layer artifact with the given media types, the way a hand-rolled build might.
func badImage(t *testing.T, manifest, config types.MediaType, layers ...types.MediaType) v1.Image {
	t.Helper()
	img := empty.Image
	for i, mt := range layers {
		b := []byte(`{"type":"envoy_proxy","abiVersions":[],"config":{"rootIds":[]}}`)
		if i == len(layers)-1 {
			b = fakeModule("bad")
		}
		var err error
		if img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, mt)}); err != nil {
			t.Fatal(err)
		}
	}
	img = mutate.MediaType(img, manifest)
	return mutate.ConfigMediaType(img, config)
}

func TestVerifyRejects(t *testing.T) {
	tests := []struct {
		name string
		img  v1.Image
		want string
	}{
		{"wasm layer with a generic media type", badImage(t, types.OCIManifestSchema1, WasmConfigMediaType, WasmConfigMediaType, "application/octet-stream"),
			`layer 1: media type "application/octet-stream" (want application/vnd.module.wasm.content.layer.v1+wasm)`},
		{"single layer", badImage(t, types.OCIManifestSchema1, WasmConfigMediaType, WasmLayerMediaType),
			"1 layers; Istio reads the Wasm artifact variant only with exactly 2"},
		{"docker manifest", badImage(t, types.DockerManifestSchema2, WasmConfigMediaType, WasmConfigMediaType, WasmLayerMediaType),
			"manifest media type"},
		{"docker config", badImage(t, types.OCIManifestSchema1, types.DockerConfigJSON, WasmConfigMediaType, WasmLayerMediaType),
			`config media type "application/vnd.docker.container.image.v1+json"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.img)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
