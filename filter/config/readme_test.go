package config

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// knownKeys asks the parser itself which keys a section accepts, through its unknown-key error.
func knownKeys(t *testing.T, section string) []string {
	t.Helper()
	doc := `{"zz_unknown":1}`
	if section != "" {
		doc = `{"` + section + `":{"zz_unknown":1}}`
	}
	_, err := Parse([]byte(doc), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Parse(%s): %v", doc, err)
	}
	_, list, ok := strings.Cut(ce.Msg, "(known: ")
	if !ok {
		t.Fatalf("unknown-key error lists no keys: %v", err)
	}
	return strings.Split(strings.TrimSuffix(list, ")"), ", ")
}

// TestReadmeDocumentsEveryKeyWithItsDefault keeps README.md's configuration table and the parser in step: the
// table names exactly the keys the parser accepts, and setting each key to the default the table gives yields the
// same configuration as an empty document.
func TestReadmeDocumentsEveryKeyWithItsDefault(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| key | default | meaning |")
	if !ok {
		t.Fatal("README.md has no configuration table (| key | default | meaning |)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ([^|]+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}

	var parsed []string
	for _, top := range knownKeys(t, "") {
		switch top {
		case "cookies", "scope", "affinity":
			for _, k := range knownKeys(t, top) {
				parsed = append(parsed, top+"."+k)
			}
		default:
			parsed = append(parsed, top)
		}
	}
	slices.Sort(parsed)
	var inReadme []string
	for k := range documented {
		inReadme = append(inReadme, k)
	}
	slices.Sort(inReadme)
	if !reflect.DeepEqual(parsed, inReadme) {
		t.Fatalf("README.md documents %v\nthe parser accepts   %v", inReadme, parsed)
	}

	literal := regexp.MustCompile("^`([^`]*)`")
	for key, def := range documented {
		m := literal.FindStringSubmatch(def)
		if m == nil {
			if def != "—" {
				t.Errorf("%s: default %q is neither a `JSON literal` nor —", key, def)
			}
			continue // no default: the key is optional (affinity keys)
		}
		section, field, nested := strings.Cut(key, ".")
		doc := `{"` + section + `":` + m[1] + `}`
		if nested {
			doc = `{"` + section + `":{"` + field + `":` + m[1] + `}}`
		}
		c, err := Parse([]byte(doc), noEnv)
		if err != nil {
			t.Errorf("%s: README default %s is refused: %v", key, m[1], err)
			continue
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%s: README default %s differs from the parser's default:\n got %+v\nwant %+v", key, m[1], c, Default())
		}
	}
}
