package cookie

import "strings"

// SameSiteNoneIncompatible reports whether a User-Agent belongs to a client
// that mishandles SameSite=None, per the list the Chromium project published
// with the SameSite-by-default change ("SameSite=None: Known Incompatible
// Clients"):
//
//   - Chrome and Chromium 51 to 66 reject cookies with SameSite=None;
//   - UC Browser on Android before 12.13.2 does the same;
//   - every browser on iOS 12, and Safari and embedded browsers on
//     macOS 10.14, treat SameSite=None as SameSite=Strict (a WebKit bug).
//
// It is a faithful, allocation-free translation of the regular expressions of
// that published pseudo-code (the tests check it against them), so that the
// check costs little on every response and adds no regexp engine to the Wasm
// filter. User-Agent values cannot contain line breaks; for inputs that do,
// the result may differ from the regular expressions, whose '.' stops at LF.
func SameSiteNoneIncompatible(userAgent string) bool {
	return hasWebKitSameSiteBug(userAgent) || dropsUnrecognizedSameSiteCookies(userAgent)
}

func hasWebKitSameSiteBug(ua string) bool {
	if iosMajorVersion(ua) == "12" {
		return true
	}
	major, minor := macOSXVersion(ua)
	return major == "10" && minor == "14" && (isSafari(ua) || isMacEmbeddedBrowser(ua))
}

func dropsUnrecognizedSameSiteCookies(ua string) bool {
	if strings.Contains(ua, "UCBrowser/") {
		return !ucBrowserAtLeast(ua, 12, 13, 2)
	}
	if !isChromiumBased(ua) {
		return false
	}
	v := chromiumMajorVersion(ua)
	return v >= 51 && v < 67
}

// webKitMarker ends both the iOS and the macOS version patterns.
const webKitMarker = ") AppleWebKit/"

// iosMajorVersion returns the first group of
// `\(iP.+; CPU .*OS (\d+)[_\d]*.*\) AppleWebKit\/`, or "" without a match.
//
// With greedy quantifiers the group comes from the last "OS <digits>" that is
// followed somewhere by ") AppleWebKit/" and preceded by a "; CPU " that
// itself starts at least one byte after the first "(iP".
func iosMajorVersion(ua string) string {
	open := strings.Index(ua, "(iP")
	if open < 0 {
		return ""
	}
	webKit := strings.LastIndex(ua, webKitMarker)
	if webKit < 0 {
		return ""
	}
	version := -1
	for at := strings.LastIndex(ua, "OS "); at >= 0; at = strings.LastIndex(ua[:at], "OS ") {
		if n := countDigits(ua, at+3); n > 0 && at+3+n <= webKit {
			version = at
			break
		}
	}
	if version < 0 {
		return ""
	}
	// `.+` takes at least one byte after "(iP".
	afterOpen := min(open+len("(iP")+1, len(ua))
	cpu := strings.Index(ua[afterOpen:], "; CPU ")
	if cpu < 0 || afterOpen+cpu+len("; CPU ") > version {
		return ""
	}
	return ua[version+3 : version+3+countDigits(ua, version+3)]
}

// macOSXVersion returns the two groups of
// `\(Macintosh;.*Mac OS X (\d+)_(\d+)[_\d]*.*\) AppleWebKit\/`, or "", ""
// without a match: the last "Mac OS X <digits>_<digits>" after the first
// "(Macintosh;" that is followed somewhere by ") AppleWebKit/".
func macOSXVersion(ua string) (major, minor string) {
	const mac, osx = "(Macintosh;", "Mac OS X "
	open := strings.Index(ua, mac)
	if open < 0 {
		return "", ""
	}
	webKit := strings.LastIndex(ua, webKitMarker)
	if webKit < 0 {
		return "", ""
	}
	for at := strings.LastIndex(ua, osx); at >= open+len(mac); at = strings.LastIndex(ua[:at], osx) {
		start := at + len(osx)
		n := countDigits(ua, start)
		if n == 0 || start+n >= len(ua) || ua[start+n] != '_' {
			continue
		}
		m := countDigits(ua, start+n+1)
		if m == 0 || start+n+1+m > webKit {
			continue
		}
		return ua[start : start+n], ua[start+n+1 : start+n+1+m]
	}
	return "", ""
}

// isSafari matches `Version\/.* Safari\/` in a UA that is not Chromium-based.
func isSafari(ua string) bool {
	version := strings.Index(ua, "Version/")
	return version >= 0 &&
		strings.LastIndex(ua, " Safari/") >= version+len("Version/") &&
		!isChromiumBased(ua)
}

// isMacEmbeddedBrowser matches the whole UA against
// `^Mozilla\/[\.\d]+ \(Macintosh;.*Mac OS X [_\d]+\) AppleWebKit\/[\.\d]+ \(KHTML, like Gecko\)$`,
// the UA of WKWebView-based apps, which carries no browser token.
func isMacEmbeddedBrowser(ua string) bool {
	rest, ok := strings.CutPrefix(ua, "Mozilla/")
	if !ok {
		return false
	}
	n := countBytes(rest, 0, isDigitOrDot)
	if n == 0 {
		return false
	}
	middle, ok := strings.CutPrefix(rest[n:], " (Macintosh;")
	if !ok {
		return false
	}
	if middle, ok = strings.CutSuffix(middle, " (KHTML, like Gecko)"); !ok {
		return false
	}
	if n = countBytesBack(middle, isDigitOrDot); n == 0 {
		return false
	}
	if middle, ok = strings.CutSuffix(middle[:len(middle)-n], webKitMarker); !ok {
		return false
	}
	if n = countBytesBack(middle, isDigitOrUnderscore); n == 0 {
		return false
	}
	_, ok = strings.CutSuffix(middle[:len(middle)-n], "Mac OS X ")
	return ok
}

// isChromiumBased matches `Chrom(e|ium)`.
func isChromiumBased(ua string) bool {
	return strings.Contains(ua, "Chrome") || strings.Contains(ua, "Chromium")
}

// chromiumMajorVersion returns the first group of
// `Chrom[^ \/]+\/(\d+)[\.\d]* ` as a number, or 0 without a match.
func chromiumMajorVersion(ua string) int {
	for from := 0; ; {
		k := strings.Index(ua[from:], "Chrom")
		if k < 0 {
			return 0
		}
		name := from + k + len("Chrom")
		slash := name + countBytes(ua, name, isNotSpaceOrSlash)
		if slash > name && slash < len(ua) && ua[slash] == '/' {
			if n := countDigits(ua, slash+1); n > 0 {
				end := slash + 1 + n
				end += countBytes(ua, end, isDigitOrDot)
				if end < len(ua) && ua[end] == ' ' {
					return atoiSaturating(ua[slash+1 : slash+1+n])
				}
			}
		}
		// Every "Chrom" that starts before slash runs into the same slash
		// (or space) and fails the same way: skip them, keeping this linear.
		from = max(from+k+1, slash)
	}
}

// ucBrowserAtLeast reports whether the version in
// `UCBrowser\/(\d+)\.(\d+)\.(\d+)[\.\d]* ` is at least major.minor.build.
// A UC Browser UA without a readable version counts as older.
func ucBrowserAtLeast(ua string, major, minor, build int) bool {
	const marker = "UCBrowser/"
	for from := 0; ; {
		k := strings.Index(ua[from:], marker)
		if k < 0 {
			return false
		}
		at := from + k + len(marker)
		from = at
		var parts [3]int
		ok := true
		for i := range parts {
			n := countDigits(ua, at)
			if n == 0 || (i < 2 && (at+n >= len(ua) || ua[at+n] != '.')) {
				ok = false
				break
			}
			parts[i] = atoiSaturating(ua[at : at+n])
			at += n
			if i < 2 {
				at++
			}
		}
		if !ok {
			continue
		}
		at += countBytes(ua, at, isDigitOrDot)
		if at >= len(ua) || ua[at] != ' ' {
			continue
		}
		if parts[0] != major {
			return parts[0] > major
		}
		if parts[1] != minor {
			return parts[1] > minor
		}
		return parts[2] >= build
	}
}

func isDigit(c byte) bool             { return '0' <= c && c <= '9' }
func isDigitOrDot(c byte) bool        { return isDigit(c) || c == '.' }
func isDigitOrUnderscore(c byte) bool { return isDigit(c) || c == '_' }
func isNotSpaceOrSlash(c byte) bool   { return c != ' ' && c != '/' }

// countBytes counts the bytes of s from start on that satisfy ok.
func countBytes(s string, start int, ok func(byte) bool) int {
	n := 0
	for start+n < len(s) && ok(s[start+n]) {
		n++
	}
	return n
}

// countBytesBack counts the bytes at the end of s that satisfy ok.
func countBytesBack(s string, ok func(byte) bool) int {
	n := 0
	for n < len(s) && ok(s[len(s)-1-n]) {
		n++
	}
	return n
}

func countDigits(s string, start int) int { return countBytes(s, start, isDigit) }

// atoiSaturating parses decimal digits, saturating instead of overflowing:
// an absurd version number is simply a very new one.
func atoiSaturating(digits string) int {
	const limit = 1 << 30
	v := 0
	for i := 0; i < len(digits); i++ {
		v = v*10 + int(digits[i]-'0')
		if v >= limit {
			return limit
		}
	}
	return v
}
