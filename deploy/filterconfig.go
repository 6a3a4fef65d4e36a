package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
)

// vmEnv is the environment a proxy hands to the Wasm VM: some variables copied from the proxy's own environment
// (Envoy host_env_keys, Istio valueFrom: HOST), others given literally (Envoy key_values, Istio INLINE). A
// variable named for copying but missing from the proxy's environment is left out, as Envoy does.
type vmEnv struct {
	fromHost []string
	literal  map[string]string
	host     func(string) (string, bool)
}

func (e vmEnv) lookup(name string) (string, bool) {
	if v, ok := e.literal[name]; ok {
		return v, true
	}
	for _, k := range e.fromHost {
		if k == name && e.host != nil {
			return e.host(name)
		}
	}
	return "", false
}

// parseFilterConfig runs the filter's own parser over an embedded configuration with the VM's environment, and
// applies the deployment rules the parser cannot know: a manifest lives in version control, so affinity keys
// must come from the environment (keys_env), never inline.
func parseFilterConfig(doc []byte, env vmEnv) (*config.Config, error) {
	c, err := config.Parse(doc, env.lookup)
	if err != nil {
		return nil, err
	}
	if c.Affinity.Enabled && c.Affinity.KeysEnv == "" {
		return nil, fmt.Errorf("config: affinity.keys: keys pasted into a manifest end up in version control; set affinity.keys_env and pass the keys through the environment")
	}
	return c, nil
}

// protojsonPos matches the position protojson puts in its errors, e.g. "proto: (line 1:2547): unknown field".
// protojson varies the spaces (sometimes U+00A0) on purpose, so that nobody compares its messages exactly.
var protojsonPos = regexp.MustCompile(`^proto:[\s\x{00a0}]*\(line (\d+):(\d+)\):[\s\x{00a0}]*`)

// protoJSONError rewrites a protojson error about js (single-line JSON converted from a manifest's YAML) so that it
// names the field path — "static_resources.listeners[0].address: unknown field …" — instead of a column in a JSON
// text nobody wrote. prefix is the path of js itself in the manifest ("" for the whole document).
func protoJSONError(js []byte, err error, prefix string) error {
	m := protojsonPos.FindStringSubmatch(err.Error())
	if m == nil || m[1] != "1" {
		if prefix == "" {
			return err
		}
		return fmt.Errorf("%s: %w", prefix, err)
	}
	col, convErr := strconv.Atoi(m[2])
	if convErr != nil {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), m[0])
	if p := jsonPathAt(js, int64(col-1)); p != "" {
		prefix = joinPath(prefix, p)
	}
	if prefix == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", prefix, msg)
}

// jsonPathAt returns the path of the member or element whose text covers offset in js, e.g.
// "static_resources.listeners[0].name".
func jsonPathAt(js []byte, offset int64) string {
	type frame struct {
		obj     bool
		key     string
		idx     int
		wantKey bool
	}
	var stack []*frame
	render := func() string {
		var b strings.Builder
		for i, f := range stack {
			switch {
			case f.obj && (i < len(stack)-1 || !f.wantKey):
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			case !f.obj && f.idx >= 0:
				fmt.Fprintf(&b, "[%d]", f.idx)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	for {
		tok, err := dec.Token()
		if err != nil {
			return render()
		}
		hit := dec.InputOffset() > offset // the token just read covers offset
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		d, isDelim := tok.(json.Delim)
		switch {
		case isDelim && (d == '}' || d == ']'):
			stack = stack[:len(stack)-1]
			if hit {
				return render()
			}
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].wantKey = true
			}
			continue
		case top != nil && top.obj && top.wantKey:
			top.key, top.wantKey = fmt.Sprint(tok), false
			if hit {
				return render()
			}
			continue
		}
		if top != nil && !top.obj {
			top.idx++
		}
		if isDelim {
			stack = append(stack, &frame{obj: d == '{', wantKey: d == '{', idx: -1})
		}
		if hit {
			return render()
		}
		if !isDelim && top != nil && top.obj {
			top.wantKey = true
		}
	}
}
