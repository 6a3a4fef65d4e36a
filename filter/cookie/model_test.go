package cookie

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// This file holds two independent views of a Set-Cookie value that the tests
// check Rewrite's output against:
//
//   - refParse, a deliberately naive transcription of RFC 6265bis §5.6/§5.7
//     (split, cut, trim, drop over-long attributes, last one wins), sharing
//     no code with the package;
//   - net/http's ParseSetCookie, an independent parser with its own quirks.

// refAttribute is one attribute as refParse sees it.
type refAttribute struct {
	lowerName string // ASCII-lowercased, trimmed
	text      string // the trimmed attribute text, as written
	value     string // trimmed value
	honoured  bool   // value at most 1024 octets
}

// refCookie is a parsed Set-Cookie value.
type refCookie struct {
	name, value string
	attributes  []refAttribute // every non-empty attribute, in order
}

// refParse parses like RFC 6265bis §5.6, plus this package's documented
// refusals (no '=', empty name).
func refParse(line string) (refCookie, bool) {
	for _, r := range []byte(line) {
		if r <= 0x08 || (r >= 0x0a && r <= 0x1f) || r == 0x7f {
			return refCookie{}, false
		}
	}
	parts := strings.Split(line, ";")
	name, value, found := strings.Cut(parts[0], "=")
	if !found {
		return refCookie{}, false
	}
	c := refCookie{name: strings.Trim(name, " \t"), value: strings.Trim(value, " \t")}
	if c.name == "" || len(c.name)+len(c.value) > 4096 {
		return refCookie{}, false
	}
	for _, part := range parts[1:] {
		text := strings.Trim(part, " \t")
		if text == "" {
			continue
		}
		n, v, _ := strings.Cut(text, "=")
		n, v = strings.Trim(n, " \t"), strings.Trim(v, " \t")
		c.attributes = append(c.attributes, refAttribute{
			lowerName: refLower(n), text: text, value: v, honoured: len(v) <= 1024,
		})
	}
	return c, true
}

// refLower lowercases ASCII letters only, as browsers do for attribute names.
func refLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// refView is what a browser concludes from a refCookie (RFC 6265bis §5.7).
type refView struct {
	sameSite                      string // "", "none", "lax", "strict" or "default"
	sameSiteSettled               bool   // no SameSite attribute, honoured or not, follows the effective one
	secure, httpOnly, partitioned bool
	path, domain                  string
	hasPath, hasDomain            bool
	expires, maxAge               string
	hasExpires, hasMaxAge         bool
}

func (c refCookie) view() refView {
	var v refView
	lastSameSite := -1
	for i, a := range c.attributes {
		if a.lowerName == "samesite" {
			lastSameSite = i
		}
		if !a.honoured {
			continue
		}
		switch a.lowerName {
		case "secure":
			v.secure = true
		case "httponly":
			v.httpOnly = true
		case "partitioned":
			v.partitioned = true
		case "samesite":
			switch refLower(a.value) {
			case "none", "lax", "strict":
				v.sameSite = refLower(a.value)
			default:
				v.sameSite = "default"
			}
			v.sameSiteSettled = i == lastSameSite
		case "path":
			v.path, v.hasPath = a.value, true
		case "domain":
			v.domain, v.hasDomain = a.value, true
		case "expires":
			v.expires, v.hasExpires = a.value, true
		case "max-age":
			v.maxAge, v.hasMaxAge = a.value, true
		}
	}
	if lastSameSite >= 0 && !c.attributes[lastSameSite].honoured {
		v.sameSiteSettled = false
	}
	return v
}

// explicitPath reports a path taken from the Path attribute (§5.6.4).
func (v refView) explicitPath() bool { return v.hasPath && strings.HasPrefix(v.path, "/") }

// keptTexts lists the attribute texts Rewrite must carry over unchanged and in
// order: all of them except SameSite, and except Domain when the policy sets it.
func (c refCookie) keptTexts(p Policy) []string {
	var kept []string
	for _, a := range c.attributes {
		if a.lowerName == "samesite" || (a.lowerName == "domain" && p.Domain != "") {
			continue
		}
		kept = append(kept, a.text)
	}
	return kept
}

// checkRewrite asserts every property Rewrite promises for one input and
// policy, and returns the output. It is shared by the table tests and the
// fuzz targets.
func checkRewrite(t *testing.T, in string, p Policy) (string, Outcome) {
	t.Helper()
	out, outcome := Rewrite(in, p)

	if outcome != Rewritten && out != in {
		t.Fatalf("Rewrite(%q) = %q, %v: a %v value must come back unchanged", in, out, outcome, outcome)
	}
	if outcome == Rewritten && out == in {
		t.Fatalf("Rewrite(%q) reported rewritten but returned the input", in)
	}
	if strings.ContainsAny(out, "\r\n") && !strings.ContainsAny(in, "\r\n") {
		t.Fatalf("Rewrite(%q) = %q: introduced CR or LF", in, out)
	}

	// AppendRewrite agrees, appends after what dst holds and leaves that alone.
	const kept = "kept;"
	dst, appended, appendedOutcome := AppendRewrite(append(make([]byte, 0, 8), kept...), in, p)
	wantDst := kept
	if outcome == Rewritten {
		wantDst += out
	}
	if appended != out || appendedOutcome != outcome || string(dst) != wantDst {
		t.Fatalf("AppendRewrite(%q, %q) = %q, %q, %v; want %q, %v", kept, in, dst, appended, appendedOutcome, out, outcome)
	}

	// Idempotence.
	again, againOutcome := Rewrite(out, p)
	wantAgain := outcome
	if outcome == Rewritten {
		wantAgain = Compliant
	}
	if again != out || againOutcome != wantAgain {
		t.Fatalf("Rewrite(Rewrite(%q)) = %q, %v; want %q, %v", in, again, againOutcome, out, wantAgain)
	}

	// Name() agrees on the name whenever the line is a cookie.
	inCookie, parsed := refParse(in)
	if parsed {
		if name, ok := Name(in); !ok || name != inCookie.name {
			t.Fatalf("Name(%q) = %q, %v; want %q", in, name, ok, inCookie.name)
		}
	}

	isHost := strings.HasPrefix(refLower(inCookie.name), "__host-")
	switch {
	case !parsed && outcome != Malformed:
		t.Fatalf("Rewrite(%q) = %v; the reference parser rejects it, want malformed", in, outcome)
	case parsed && outcome == Malformed:
		v := inCookie.view()
		hostRejected := isHost && (v.hasDomain ||
			(v.explicitPath() && v.path != "/") ||
			(!v.explicitPath() && p.effective().Path != "/"))
		if !hostRejected {
			t.Fatalf("Rewrite(%q) = malformed; the reference parser accepts it", in)
		}
	}
	if outcome == Malformed {
		checkNetHTTPAgrees(t, in, out, outcome, p)
		return out, outcome
	}

	outCookie, ok := refParse(out)
	if !ok {
		t.Fatalf("Rewrite(%q) = %q: the output is not a cookie", in, out)
	}
	if outCookie.name != inCookie.name || outCookie.value != inCookie.value {
		t.Fatalf("Rewrite(%q) = %q: name/value %q=%q became %q=%q", in, out,
			inCookie.name, inCookie.value, outCookie.name, outCookie.value)
	}
	if pair := in[:strings.IndexByte(in+";", ';')]; !strings.HasPrefix(out, strings.TrimRight(pair, " \t")) {
		t.Fatalf("Rewrite(%q) = %q: the name-value-pair text changed", in, out)
	}

	eff := p.effective()
	before, after := inCookie.view(), outCookie.view()
	prefixed := strings.HasPrefix(refLower(inCookie.name), "__secure-") || isHost
	if after.sameSite != refLower(eff.SameSite.String()) || !after.sameSiteSettled {
		t.Errorf("Rewrite(%q) = %q: effective SameSite %q (settled %v), want %q", in, out, after.sameSite, after.sameSiteSettled, eff.SameSite)
	}
	if (eff.Partitioned || before.partitioned) && !after.partitioned {
		t.Errorf("Rewrite(%q) = %q: not Partitioned", in, out)
	}
	if !eff.Partitioned && !before.partitioned && after.partitioned {
		t.Errorf("Rewrite(%q) = %q: Partitioned added against the policy", in, out)
	}
	if (after.partitioned || after.sameSite == "none" || prefixed) && !after.secure {
		t.Errorf("Rewrite(%q) = %q: needs Secure", in, out)
	}
	if (eff.HTTPOnly || before.httpOnly) && !after.httpOnly {
		t.Errorf("Rewrite(%q) = %q: not HttpOnly", in, out)
	}
	switch {
	case before.explicitPath():
		if after.path != before.path {
			t.Errorf("Rewrite(%q) = %q: Path %q became %q", in, out, before.path, after.path)
		}
	case eff.Path != "":
		if after.path != eff.Path {
			t.Errorf("Rewrite(%q) = %q: Path %q, want %q", in, out, after.path, eff.Path)
		}
	default:
		if after.hasPath != before.hasPath || after.path != before.path {
			t.Errorf("Rewrite(%q) = %q: Path changed without a policy", in, out)
		}
	}
	switch {
	case isHost:
		if after.hasDomain || after.path != "/" || !after.explicitPath() {
			t.Errorf("Rewrite(%q) = %q: a __Host- cookie browsers reject", in, out)
		}
	case eff.Domain != "":
		if !sameDomain(after.domain, eff.Domain) {
			t.Errorf("Rewrite(%q) = %q: Domain %q, want %q", in, out, after.domain, eff.Domain)
		}
	default:
		if after.hasDomain != before.hasDomain || after.domain != before.domain {
			t.Errorf("Rewrite(%q) = %q: Domain changed without a policy", in, out)
		}
	}
	if after.expires != before.expires || after.hasExpires != before.hasExpires ||
		after.maxAge != before.maxAge || after.hasMaxAge != before.hasMaxAge {
		t.Errorf("Rewrite(%q) = %q: expiry changed", in, out)
	}

	// Kept attributes stay, in order; only canonical ones are appended.
	keptIn, keptOut := inCookie.keptTexts(eff), outCookie.keptTexts(eff)
	if len(keptOut) < len(keptIn) || !slices.Equal(keptOut[:len(keptIn)], keptIn) {
		t.Errorf("Rewrite(%q) = %q: kept attributes %q became %q", in, out, keptIn, keptOut)
	} else {
		for _, added := range keptOut[len(keptIn):] {
			if added != "Secure" && added != "Partitioned" && added != "HttpOnly" && added != "Path="+eff.Path {
				t.Errorf("Rewrite(%q) = %q: unexpected attribute %q added", in, out, added)
			}
		}
	}
	if outcome == Compliant && out != in {
		t.Errorf("compliant but changed")
	}
	checkNetHTTPAgrees(t, in, out, outcome, p)
	return out, outcome
}

// checkNetHTTPAgrees uses net/http as a second, independent parser: whatever
// it accepted it still accepts, with the same name and value; and for inputs
// without the spellings where net/http departs from RFC 6265bis, it sees the
// policy applied.
func checkNetHTTPAgrees(t *testing.T, in, out string, outcome Outcome, p Policy) {
	t.Helper()
	before, err := http.ParseSetCookie(in)
	if err != nil {
		return
	}
	after, err := http.ParseSetCookie(out)
	if err != nil {
		t.Fatalf("net/http parses %q but not Rewrite's %q: %v", in, out, err)
	}
	if after.Name != before.Name || after.Value != before.Value || after.Quoted != before.Quoted {
		t.Fatalf("net/http: Rewrite(%q) = %q changed the cookie %q=%q to %q=%q", in, out, before.Name, before.Value, after.Name, after.Value)
	}
	if outcome == Malformed || !netHTTPReadsLikeBrowsers(in) {
		return
	}
	eff := p.effective()
	wantSameSite := map[SameSite]http.SameSite{
		SameSiteNone: http.SameSiteNoneMode, SameSiteLax: http.SameSiteLaxMode, SameSiteStrict: http.SameSiteStrictMode,
	}[eff.SameSite]
	if after.SameSite != wantSameSite {
		t.Errorf("net/http: Rewrite(%q) = %q has SameSite mode %v, want %v", in, out, after.SameSite, wantSameSite)
	}
	if eff.Partitioned && !after.Partitioned {
		t.Errorf("net/http: Rewrite(%q) = %q is not Partitioned", in, out)
	}
	if (after.Partitioned || wantSameSite == http.SameSiteNoneMode) && !after.Secure {
		t.Errorf("net/http: Rewrite(%q) = %q is not Secure", in, out)
	}
	if eff.HTTPOnly && !after.HttpOnly {
		t.Errorf("net/http: Rewrite(%q) = %q is not HttpOnly", in, out)
	}
}

// netHTTPReadsLikeBrowsers reports values on which net/http's attribute
// parsing matches RFC 6265bis: net/http trims neither attribute names nor
// values around '=', skips values with bytes it deems invalid, and has no
// 1024-octet limit.
func netHTTPReadsLikeBrowsers(line string) bool {
	parts := strings.Split(line, ";")
	for _, part := range parts[1:] {
		text := strings.Trim(part, " \t")
		name, value, _ := strings.Cut(text, "=")
		if name != strings.Trim(name, " \t") || value != strings.Trim(value, " \t") || len(value) > 1024 {
			return false
		}
		for _, c := range []byte(text) {
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				return false
			}
		}
	}
	return true
}
