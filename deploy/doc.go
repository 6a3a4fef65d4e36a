// Package deploy checks the deployment artefacts — deploy/envoy/envoy.yaml and deploy/istio/*.yaml — the only way this repository can
// without an Envoy binary or a Kubernetes cluster: by decoding them strictly into the upstream projects' own Go
// types (github.com/envoyproxy/go-control-plane, istio.io/client-go and istio.io/api, k8s.io/api), running the
// upstream validation rules those types carry, and feeding every embedded filter configuration to the filter's
// own parser (filter/config) with the environment the proxy would give the Wasm VM.
//
// On top of the schemas it checks what only this project knows and what breaks silently when wrong: the filter
// order (wasm, stateful_session, router), the routing header name agreeing across the filter, Envoy's stateful
// session and Istio's Service label, the affinity keys arriving through the environment rather than pasted into
// a manifest, and a failure policy that never lets a broken filter open the routing header to clients.
//
// Errors name the file, the document and the field at fault.
package deploy
