package cookie

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Real User-Agent strings of the clients on Chromium's list, their
// neighbours, and current browsers.
var userAgentCases = []struct {
	name         string
	ua           string
	incompatible bool
}{
	{"Chrome 50", "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/50.0.2661.102 Safari/537.36", false},
	{"Chrome 51", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36", true},
	{"Chrome 66", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.181 Safari/537.36", true},
	{"Chrome 66 Android", "Mozilla/5.0 (Linux; Android 8.0.0; SM-G960F Build/R16NW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.126 Mobile Safari/537.36", true},
	{"Chromium 60 Ubuntu", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/60.0.3112.113 Chrome/60.0.3112.113 Safari/537.36", true},
	{"HeadlessChrome 66", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/66.0.3359.181 Safari/537.36", true},
	{"Chrome 67", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/67.0.3396.99 Safari/537.36", false},
	{"Chrome 131", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", false},
	{"Edge 120", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", false},
	{"UC Browser 11.8 Android", "Mozilla/5.0 (Linux; U; Android 7.0; en-US; SM-G935F Build/NRD90M) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UCBrowser/11.8.5.1112 U3/0.8.0 Mobile Safari/534.30", true},
	{"UC Browser 12.13.1 Android", "Mozilla/5.0 (Linux; U; Android 9; en-US; SM-A505F Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 UCBrowser/12.13.1.1189 Mobile Safari/537.36", true},
	{"UC Browser 12.13.2 Android", "Mozilla/5.0 (Linux; U; Android 9; en-US; SM-A505F Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 UCBrowser/12.13.2.1208 Mobile Safari/537.36", false},
	{"UC Browser 12.14 Android", "Mozilla/5.0 (Linux; U; Android 10; en-US; Redmi Note 8 Build/QKQ1.200114.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/12.14.0.1221 Mobile Safari/537.36", false},
	{"UC Browser 13 Android", "Mozilla/5.0 (Linux; U; Android 11; en-US; M2101K6G Build/RKQ1.200826.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36", false},
	{"iOS 12 Safari iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1", true},
	{"iOS 12 Safari iPad", "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1", true},
	{"iOS 12 Chrome", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/76.0.3809.123 Mobile/15E148 Safari/605.1", true},
	{"iOS 12 Firefox", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/18.1 Mobile/15E148 Safari/605.1.15", true},
	{"iOS 12 app WebView", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", true},
	{"iOS 11 Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1", false},
	{"iOS 13 Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.5 Mobile/15E148 Safari/604.1", false},
	{"iOS 17 Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", false},
	{"macOS 10.14 Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15", true},
	{"macOS 10.14 embedded WebView", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)", true},
	{"macOS 10.14 Chrome 78", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36", false},
	{"macOS 10.14 Firefox", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:70.0) Gecko/20100101 Firefox/70.0", false},
	{"macOS 10.14 other app", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Slack_SSB/4.0.2", false},
	{"macOS 10.13 Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15", false},
	{"macOS 10.15 Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0 Safari/605.1.15", false},
	{"Safari 18", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", false},
	{"Firefox 133", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", false},
	{"curl", "curl/8.5.0", false},
	{"empty", "", false},
}

func TestSameSiteNoneIncompatible(t *testing.T) {
	for _, tc := range userAgentCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameSiteNoneIncompatible(tc.ua); got != tc.incompatible {
				t.Errorf("SameSiteNoneIncompatible(%q) = %v, want %v", tc.ua, got, tc.incompatible)
			}
			if got := referenceIncompatible(tc.ua); got != tc.incompatible {
				t.Errorf("the reference regular expressions say %v for %q, want %v", got, tc.ua, tc.incompatible)
			}
		})
	}
}

// Corner cases where a hand-written matcher easily departs from the regular
// expressions: several candidate tokens, greedy choices, missing pieces.
var userAgentEdgeCases = []string{
	"(iP; CPU OS 12_0) AppleWebKit/",
	"(iPx; CPU OS 12_0) AppleWebKit/",
	"(iPx; CPU OS 12_0 OS 13_0) AppleWebKit/",
	"(iPx; CPU OS 12_0) AppleWebKit/ OS 13_0",
	"(iPx; CPU OS 12_0) AppleWebKit/ OS 13_0) AppleWebKit/",
	"(iPx; CPU ; CPU OS 12) AppleWebKit/",
	"(iPx; CPU OS 012_0) AppleWebKit/",
	"(iPxOS 12; CPU x) AppleWebKit/",
	"; CPU OS 12 (iPx; CPU y) AppleWebKit/",
	"OS 1) AppleWebKit/(iP",
	"OS 12) AppleWebKit/ (iP; CPU ",
	"(Macintosh;",
	"Mac OS X 10_14) AppleWebKit/(Macintosh;",
	"Mozilla/",
	"Mozilla/1 (Macintosh;",
	"Mozilla/1 (Macintosh;Mac OS X 1) AppleWebKit/1 (KHTML, like Gecko)",
	"Chrom",
	"Chrome/",
	"UCBrowser/",
	"UCBrowser/1.",
	"UCBrowser/1.2.",
	"(Macintosh; Mac OS X 10_14) AppleWebKit/ Version/1 Safari/",
	"(Macintosh;Mac OS X 10_14) AppleWebKit/ Version/ Safari/",
	"(Macintosh; Mac OS X 10_14 Mac OS X 10_15) AppleWebKit/ Version/ Safari/",
	"(Macintosh; Mac OS X 10_14) AppleWebKit/ Mac OS X 10_15 Version/ Safari/",
	"(Macintosh; Mac OS X 10_14_) AppleWebKit/ Version/ Safari/",
	"(Macintosh; Mac OS X 10) AppleWebKit/ Version/ Safari/",
	"Mac OS X 10_14 (Macintosh; x) AppleWebKit/ Version/ Safari/",
	"(Macintosh; Mac OS X 10_14) AppleWebKit/ Safari/ Version/",
	"(Macintosh; Mac OS X 10_14) AppleWebKit/ Version/ Safari/ Chromium",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14) AppleWebKit/605 (KHTML, like Gecko)",
	"Mozilla/5.0 (Macintosh; Mac OS X 10_14) AppleWebKit/605 (KHTML, like Gecko) ",
	"Mozilla/ (Macintosh; Mac OS X 10_14) AppleWebKit/605 (KHTML, like Gecko)",
	"Mozilla/5 (Macintosh;Mac OS X 10_14) AppleWebKit/. (KHTML, like Gecko)",
	"Mozilla/5 (Macintosh;Mac OS X 10_14_) AppleWebKit/. (KHTML, like Gecko)",
	"Chrome/51.0 ",
	"Chrome/51.0",
	"Chrome/51.0x ",
	"Chrom/51 ",
	"Chromium/52 Chrome/70 ",
	"ChromeChrome/55 ",
	"Chrome/ Chrome/60 ",
	"Chrome/x Chrome/60.1 ",
	"Chrome-Lighthouse/58.0.1 ",
	"Chrome/0000000000000000000000000060 ",
	"Chrome/99999999999999999999999999 ",
	"UCBrowser/12.13.2 ",
	"UCBrowser/12.13.2",
	"UCBrowser/12.13 ",
	"UCBrowser/12.13.1x UCBrowser/12.13.3 ",
	"UCBrowser/x Chrome/60 ",
	"UCBrowser/012.013.002 ",
	"UCBrowser/12.12.99999999999999999999 ",
}

func TestSameSiteNoneIncompatibleMatchesReference(t *testing.T) {
	for _, tc := range userAgentCases {
		checkUserAgent(t, tc.ua)
	}
	for _, ua := range userAgentEdgeCases {
		checkUserAgent(t, ua)
	}
}

func TestSameSiteNoneIncompatibleAllocations(t *testing.T) {
	ua := userAgentCases[len(userAgentCases)-4].ua
	if n := testing.AllocsPerRun(100, func() { SameSiteNoneIncompatible(ua) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// checkUserAgent compares the hand-written matchers with the published
// regular expressions, piece by piece so that a difference is easy to place.
func checkUserAgent(t *testing.T, ua string) {
	t.Helper()
	if strings.ContainsRune(ua, '\n') {
		return // '.' in the expressions stops at LF; header values have none
	}
	if got, want := iosMajorVersion(ua), referenceGroup(refIOSVersion, ua, 1); got != want {
		t.Fatalf("iosMajorVersion(%q) = %q, the expression says %q", ua, got, want)
	}
	major, minor := macOSXVersion(ua)
	if want1, want2 := referenceGroup(refMacOSXVersion, ua, 1), referenceGroup(refMacOSXVersion, ua, 2); major != want1 || minor != want2 {
		t.Fatalf("macOSXVersion(%q) = %q, %q; the expression says %q, %q", ua, major, minor, want1, want2)
	}
	if got, want := isSafari(ua), refSafari.MatchString(ua) && !refChromiumBased.MatchString(ua); got != want {
		t.Fatalf("isSafari(%q) = %v, the expression says %v", ua, got, want)
	}
	if got, want := isMacEmbeddedBrowser(ua), refMacEmbedded.MatchString(ua); got != want {
		t.Fatalf("isMacEmbeddedBrowser(%q) = %v, the expression says %v", ua, got, want)
	}
	if got, want := chromiumMajorVersion(ua), referenceNumber(referenceGroup(refChromiumVersion, ua, 1)); got != want {
		t.Fatalf("chromiumMajorVersion(%q) = %d, the expression says %d", ua, got, want)
	}
	if got, want := SameSiteNoneIncompatible(ua), referenceIncompatible(ua); got != want {
		t.Fatalf("SameSiteNoneIncompatible(%q) = %v, the reference says %v", ua, got, want)
	}
}

// The regular expressions of Chromium's published pseudo-code, verbatim.
var (
	refIOSVersion      = regexp.MustCompile(`\(iP.+; CPU .*OS (\d+)[_\d]*.*\) AppleWebKit\/`)
	refMacOSXVersion   = regexp.MustCompile(`\(Macintosh;.*Mac OS X (\d+)_(\d+)[_\d]*.*\) AppleWebKit\/`)
	refSafari          = regexp.MustCompile(`Version\/.* Safari\/`)
	refMacEmbedded     = regexp.MustCompile(`^Mozilla\/[\.\d]+ \(Macintosh;.*Mac OS X [_\d]+\) AppleWebKit\/[\.\d]+ \(KHTML, like Gecko\)$`)
	refChromiumBased   = regexp.MustCompile(`Chrom(e|ium)`)
	refChromiumVersion = regexp.MustCompile(`Chrom[^ \/]+\/(\d+)[\.\d]* `)
	refUCBrowser       = regexp.MustCompile(`UCBrowser\/`)
	refUCBrowserVer    = regexp.MustCompile(`UCBrowser\/(\d+)\.(\d+)\.(\d+)[\.\d]* `)
)

// referenceIncompatible is Chromium's pseudo-code, transcribed literally.
func referenceIncompatible(ua string) bool {
	iOS12 := referenceGroup(refIOSVersion, ua, 1) == "12"
	macOS1014 := referenceGroup(refMacOSXVersion, ua, 1) == "10" && referenceGroup(refMacOSXVersion, ua, 2) == "14"
	chromium := refChromiumBased.MatchString(ua)
	safari := refSafari.MatchString(ua) && !chromium
	webKitBug := iOS12 || (macOS1014 && (safari || refMacEmbedded.MatchString(ua)))

	var dropsUnrecognized bool
	if refUCBrowser.MatchString(ua) {
		m := refUCBrowserVer.FindStringSubmatch(ua)
		atLeast := false // no readable version: treated as old
		if m != nil {
			major, minor, build := referenceNumber(m[1]), referenceNumber(m[2]), referenceNumber(m[3])
			switch {
			case major != 12:
				atLeast = major > 12
			case minor != 13:
				atLeast = minor > 13
			default:
				atLeast = build >= 2
			}
		}
		dropsUnrecognized = !atLeast
	} else {
		v := referenceNumber(referenceGroup(refChromiumVersion, ua, 1))
		dropsUnrecognized = chromium && v >= 51 && v < 67
	}
	return webKitBug || dropsUnrecognized
}

func referenceGroup(re *regexp.Regexp, s string, group int) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[group]
	}
	return ""
}

// referenceNumber parses a version; "" is 0 and overflow is "very large".
func referenceNumber(s string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 1<<30 {
		return 1 << 30
	}
	return n
}
