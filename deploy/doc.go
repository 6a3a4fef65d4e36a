// Package deploy checks the deployment artefacts of every target under deploy/ — standalone Envoy (envoy/),
// Istio (istio/, istio/gateway-api/), Envoy Gateway (envoy-gateway/) and Google Cloud Service Extensions
// (gcp-service-extensions/) — the only way this repository can without an Envoy binary, a Kubernetes cluster or a
// cloud project: by decoding them strictly into the upstream projects' own Go types
// (github.com/envoyproxy/go-control-plane, istio.io/client-go and istio.io/api, k8s.io/api, sigs.k8s.io/gateway-api,
// github.com/envoyproxy/gateway/api/v1alpha1; for Service Extensions, which publishes none usable here, the fields of
// its REST reference), running the upstream validation rules those types carry, and feeding every embedded filter
// configuration to the filter's own parser (filter/config) with the environment the proxy would give the Wasm VM.
//
// On top of the schemas it checks what only this project knows and what breaks silently when wrong: the filter
// order (wasm, stateful_session, router; for Envoy Gateway, the chain its default ranks and the EnvoyProxy's
// filterOrder produce), the routing header name agreeing across the filter, Envoy's stateful
// session and Istio's Service label, the affinity keys arriving through the environment rather than pasted into
// a manifest, and a failure policy that never lets a broken filter open the routing header to clients.
//
// Errors name the file, the document and the field at fault.
package deploy
