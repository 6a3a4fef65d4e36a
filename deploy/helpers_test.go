package deploy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// keysVar is the environment variable both envoy.yaml and the Istio manifests read the affinity keys from.
const keysVar = "CHIPS_AFFINITY_KEYS"

// proxyEnv stands for the proxy's own environment (Envoy's process, the istio-proxy container): it holds a fresh
// affinity key, as an operator's Secret would.
func proxyEnv(t *testing.T) func(string) (string, bool) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{keysVar: base64.StdEncoding.EncodeToString(key)}
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutateYAML returns a broken copy of a good manifest: the document is decoded into plain maps and lists, edit
// changes it, and the result is encoded again. Deriving every negative case from the file itself means the cases
// cannot drift from it. In a multi-document file, doc picks the document.
func mutateYAML(t *testing.T, data []byte, doc int, edit func(root map[string]any)) []byte {
	t.Helper()
	docs := splitDocs(t, data)
	var root map[string]any
	if err := yaml.Unmarshal(docs[doc], &root); err != nil {
		t.Fatal(err)
	}
	edit(root)
	out, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	docs[doc] = out
	return []byte(strings.Join(bytesToStrings(docs), "\n---\n"))
}

func splitDocs(t *testing.T, data []byte) [][]byte {
	t.Helper()
	docs, err := splitYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func bytesToStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// at walks a decoded YAML tree along map keys (string) and list indexes (int) and returns the node reached.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %q: not a map", path, k)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("at %v: no key %q", path, k)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: [%d]: not a list that long", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func mapAt(t *testing.T, v any, path ...any) map[string]any {
	t.Helper()
	m, ok := at(t, v, path...).(map[string]any)
	if !ok {
		t.Fatalf("at %v: not a map", path)
	}
	return m
}

func listAt(t *testing.T, v any, path ...any) []any {
	t.Helper()
	l, ok := at(t, v, path...).([]any)
	if !ok {
		t.Fatalf("at %v: not a list", path)
	}
	return l
}

// jsonEqual reports whether two JSON documents hold the same value, ignoring layout and key order.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// wantError fails unless err is non-nil and mentions every one of parts.
func wantError(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q\ndoes not mention %q", err, p)
		}
	}
}

// brokenCase breaks a copy of one file of a deployment in one way (doc picks the document of a multi-document
// file) and lists what the error must mention.
type brokenCase struct {
	name string
	file string
	doc  int
	edit func(r map[string]any)
	want []string
}

// runBrokenCases runs each case against a copy of the good files with the one file broken.
func runBrokenCases(t *testing.T, good map[string][]byte, cases []brokenCase, check func(files map[string][]byte) error) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			files[tt.file] = mutateYAML(t, good[tt.file], tt.doc, tt.edit)
			err := check(files)
			wantError(t, err, tt.want...)
			t.Log(err)
		})
	}
}

// sortedNames returns the file names in order, so that decoding and its errors do not depend on map order.
func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
