// Package oci packages the filter's .wasm as an OCI image that Istio's agent can pull for a WasmPlugin
// (`url: oci://…`), writes it as an OCI image layout, pushes it to a registry and checks images of that shape.
//
// The image is the "OCI artifact" variant of the Wasm image format that Istio reads (the specification published by
// solo-io/wasm, implemented by istio/istio pkg/wasm/imagefetcher.go):
//
//   - an OCI image manifest with exactly two layers — Istio refuses the artifact variant with any other count;
//   - layer 1: a small JSON runtime description, media type application/vnd.module.wasm.config.v1+json, which is
//     also the manifest's config blob (the same shape the reference packaging tool produced);
//   - layer 2: the module itself, media type application/vnd.module.wasm.content.layer.v1+wasm, stored
//     uncompressed: the blob is byte-for-byte the .wasm file, and Istio reads it as such.
//
// The build is deterministic (no timestamps, fixed field order), so the manifest digest — the value Istio compares
// a WasmPlugin's sha256 field with for oci:// URLs — follows from the module bytes alone: Digest computes it
// without a registry, and a pushed copy has the same digest.
package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of the Wasm OCI artifact variant.
const (
	// WasmLayerMediaType marks the layer holding the raw .wasm module; Istio looks the module up by it.
	WasmLayerMediaType types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
	// WasmConfigMediaType marks the JSON runtime description, used for the config blob and the first layer.
	WasmConfigMediaType types.MediaType = "application/vnd.module.wasm.config.v1+json"
	// ManifestMediaType is the manifest's own media type: a plain OCI image manifest, so that Istio reads it
	// through the OCI path (a Docker schema 2 manifest sends it down the tar.gz "compat" path instead).
	ManifestMediaType = types.OCIManifestSchema1
)

// Annotation and file names carried by the layers; pullers such as oras use the title as the file name.
const (
	titleAnnotation = "org.opencontainers.image.title"
	configTitle     = "runtime-config.json"
	moduleTitle     = "filter.wasm"
)

// RuntimeConfig is the JSON document of the config blob and first layer, as the Wasm image specification
// describes it. Istio does not read it; other tools use it to tell which proxy and ABI a module targets.
type RuntimeConfig struct {
	// Type is the runtime family: "envoy_proxy" for proxy-wasm filters.
	Type string `json:"type"`
	// ABIVersions lists the proxy-wasm ABI versions the module exports.
	ABIVersions []string `json:"abiVersions"`
	// Config holds runtime-specific settings; RootIDs stays empty because the filter has a single root context.
	Config RuntimeEnvoyConfig `json:"config"`
}

// RuntimeEnvoyConfig is the Envoy-specific part of RuntimeConfig.
type RuntimeEnvoyConfig struct {
	RootIDs []string `json:"rootIds"`
}

// DefaultRuntimeConfig describes the filter: a proxy-wasm module for Envoy exporting proxy_abi_version_0_2_0 (the
// ABI version the proxy-wasm Go SDK exports).
func DefaultRuntimeConfig() RuntimeConfig {
	return RuntimeConfig{Type: "envoy_proxy", ABIVersions: []string{"proxy_abi_version_0_2_0"}, Config: RuntimeEnvoyConfig{RootIDs: []string{}}}
}

// wasmMagic is the header every WebAssembly binary starts with ("\0asm", version 1).
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Image builds the two-layer Wasm artifact for module. It refuses bytes that are not a WebAssembly binary, so a
// stray file never ends up in a registry under the filter's name.
func Image(module []byte) (v1.Image, error) {
	if !bytes.HasPrefix(module, wasmMagic) {
		return nil, errors.New("oci: module is not a WebAssembly binary (missing the \\0asm version 1 header)")
	}
	cfg, err := json.Marshal(DefaultRuntimeConfig())
	if err != nil {
		return nil, fmt.Errorf("oci: runtime config: %w", err)
	}
	img := &artifact{
		config: static.NewLayer(cfg, WasmConfigMediaType),
		layers: []v1.Layer{static.NewLayer(cfg, WasmConfigMediaType), static.NewLayer(module, WasmLayerMediaType)},
		titles: []string{configTitle, moduleTitle},
	}
	if img.manifest, err = img.buildManifest(); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

// artifact is a fixed, in-memory image: its manifest is computed once from static layers.
type artifact struct {
	config   v1.Layer
	layers   []v1.Layer
	titles   []string
	manifest []byte
}

func descriptor(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: d}, nil
}

func (a *artifact) buildManifest() ([]byte, error) {
	cfg, err := descriptor(a.config)
	if err != nil {
		return nil, fmt.Errorf("oci: config descriptor: %w", err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: ManifestMediaType, Config: cfg}
	for i, l := range a.layers {
		d, err := descriptor(l)
		if err != nil {
			return nil, fmt.Errorf("oci: layer %d descriptor: %w", i, err)
		}
		d.Annotations = map[string]string{titleAnnotation: a.titles[i]}
		m.Layers = append(m.Layers, d)
	}
	return json.Marshal(m)
}

// MediaType implements partial.CompressedImageCore.
func (a *artifact) MediaType() (types.MediaType, error) { return ManifestMediaType, nil }

// RawManifest implements partial.CompressedImageCore.
func (a *artifact) RawManifest() ([]byte, error) { return a.manifest, nil }

// RawConfigFile implements partial.CompressedImageCore.
func (a *artifact) RawConfigFile() ([]byte, error) {
	rc, err := a.config.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// LayerByDigest implements partial.CompressedImageCore; the config blob is also reachable by its digest, as
// registries expect of every blob a manifest names.
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range append([]v1.Layer{a.config}, a.layers...) {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("oci: no blob %s in the image", h)
}

// Digest returns the manifest digest ("sha256:<hex>") of the image Image(module) builds — what a registry reports
// for the pushed image and what Istio checks a WasmPlugin's sha256 field against (without the "sha256:" prefix).
func Digest(module []byte) (v1.Hash, error) {
	img, err := Image(module)
	if err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// ModuleSHA256 returns the hex SHA-256 of the module itself: what Istio checks the sha256 field against for
// file:// and http(s):// URLs, where no image is involved.
func ModuleSHA256(module []byte) string {
	sum := sha256.Sum256(module)
	return hex.EncodeToString(sum[:])
}

// layoutMarker is the file every OCI image layout has at its root.
const layoutMarker = "oci-layout"

// WriteLayout writes img as an OCI image layout at dir, tagged ref (the index's
// org.opencontainers.image.ref.name annotation; empty for none). An existing layout at dir is replaced; any other
// existing, non-empty directory is left alone and reported, so a mistyped --out never deletes unrelated files.
func WriteLayout(dir string, img v1.Image, ref string) error {
	if err := clearLayout(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	return nil
}

func clearLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("oci: layout %s: %w", dir, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, layoutMarker)); err != nil {
		return fmt.Errorf("oci: %s exists and is not an OCI image layout (no %s file); refusing to overwrite it", dir, layoutMarker)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("oci: replacing layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the single image of the OCI image layout at dir.
func ReadLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("oci: layout %s: want exactly one image, found %d", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("oci: layout %s: %w", dir, err)
	}
	return img, nil
}

// Push uploads img to the registry reference ref (e.g. "registry.example.com/chips/filter:v1") with the
// credentials of the default keychain (~/.docker/config.json and credential helpers). Registries on localhost or
// loopback addresses are spoken to over plain HTTP, as go-containerregistry does by default.
func Push(ctx context.Context, img v1.Image, ref string, opts ...remote.Option) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("oci: image reference %q: %w", ref, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		return fmt.Errorf("oci: push %s: %w", ref, err)
	}
	return nil
}

// Verify checks that img has the shape Istio's agent accepts as a Wasm OCI artifact and returns the module bytes.
// Errors name what is wrong, e.g. "oci: layer 1: media type … (want application/vnd.module.wasm.content.layer.v1+wasm)".
func Verify(img v1.Image) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("oci: manifest: %w", err)
	}
	if m.MediaType != ManifestMediaType {
		return nil, fmt.Errorf("oci: manifest media type %q (want %s)", m.MediaType, ManifestMediaType)
	}
	if m.Config.MediaType != WasmConfigMediaType {
		return nil, fmt.Errorf("oci: config media type %q (want %s)", m.Config.MediaType, WasmConfigMediaType)
	}
	if len(m.Layers) != 2 {
		return nil, fmt.Errorf("oci: %d layers; Istio reads the Wasm artifact variant only with exactly 2", len(m.Layers))
	}
	want := []types.MediaType{WasmConfigMediaType, WasmLayerMediaType}
	for i, l := range m.Layers {
		if l.MediaType != want[i] {
			return nil, fmt.Errorf("oci: layer %d: media type %q (want %s)", i, l.MediaType, want[i])
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("oci: config blob: %w", err)
	}
	var rc RuntimeConfig
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return nil, fmt.Errorf("oci: config blob: %w", err)
	}
	if rc.Type != "envoy_proxy" {
		return nil, fmt.Errorf("oci: config blob: type %q (want envoy_proxy)", rc.Type)
	}
	layer, err := img.LayerByDigest(m.Layers[1].Digest)
	if err != nil {
		return nil, fmt.Errorf("oci: module layer: %w", err)
	}
	// Compressed, not Uncompressed: the blob is stored as is, and go-containerregistry would otherwise try to
	// gunzip a layer type it does not know.
	r, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("oci: module layer: %w", err)
	}
	defer r.Close()
	module, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("oci: module layer: %w", err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: ModuleSHA256(module)}
	if got != m.Layers[1].Digest {
		return nil, fmt.Errorf("oci: module layer: content digest %s does not match the manifest's %s", got, m.Layers[1].Digest)
	}
	if !bytes.HasPrefix(module, wasmMagic) {
		return nil, errors.New("oci: module layer is not a WebAssembly binary")
	}
	return module, nil
}
