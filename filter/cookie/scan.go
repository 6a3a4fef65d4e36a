package cookie

// lastWins follows an attribute for which the last occurrence decides
// (RFC 6265bis §5.7: "the last attribute in the cookie-attribute-list with an
// attribute-name of …").
type lastWins struct {
	value  string // value of the last honoured occurrence
	at     int    // start offset of that occurrence; -1 when there is none
	lastAt int    // start offset of the last occurrence, honoured or not; -1 when none
	n      int    // occurrences, honoured or not
	// textStart and textEnd delimit the text of the honoured occurrence (see attribute).
	textStart, textEnd int
}

// present reports whether browsers see the attribute at all.
func (l lastWins) present() bool { return l.at >= 0 }

// settled reports whether the last occurrence is also the honoured one. Only
// then do parsers with and without the 1024-octet rule (older browsers,
// net/http) agree on the value, so only then is it left alone.
func (l lastWins) settled() bool { return l.at >= 0 && l.at == l.lastAt }

func (l *lastWins) observe(a *attribute) {
	l.lastAt = a.start
	l.n++
	if a.honoured() {
		l.at, l.value, l.textStart, l.textEnd = a.start, a.value, a.textStart, a.textEnd
	}
}

// cookieState is what a browser concludes from one Set-Cookie value, as far
// as this package cares, plus where the deciding attributes sit in the line.
type cookieState struct {
	pair                          cookiePair
	secure, httpOnly, partitioned bool
	sameSite, path, domain        lastWins
}

// scanCookie parses line into c without allocating: one pass for control characters, then one over the
// attributes. It reports false for a line that is not a cookie: a CTL anywhere, or see parsePair.
func scanCookie(line string, c *cookieState) bool {
	if hasCTL(line) {
		return false // §5.6 step 1
	}
	pair, ok := parsePair(line)
	if !ok {
		return false
	}
	*c = cookieState{
		pair:     pair,
		sameSite: lastWins{at: -1, lastAt: -1},
		path:     lastWins{at: -1, lastAt: -1},
		domain:   lastWins{at: -1, lastAt: -1},
	}
	var a attribute
	for pos := pair.end; pos < len(line); pos = a.end {
		a.scan(line, pos)
		switch a.kind {
		case attrSecure:
			c.secure = c.secure || a.honoured()
		case attrHTTPOnly:
			c.httpOnly = c.httpOnly || a.honoured()
		case attrPartitioned:
			c.partitioned = c.partitioned || a.honoured()
		case attrSameSite:
			c.sameSite.observe(&a)
		case attrPath:
			c.path.observe(&a)
		case attrDomain:
			c.domain.observe(&a)
		}
	}
	return true
}

// hasExplicitPath reports whether the cookie's path comes from its Path
// attribute. A Path value that is empty or does not start with '/' makes
// browsers use the default-path (RFC 6265bis §5.6.4), as if there were none.
func (c *cookieState) hasExplicitPath() bool {
	return c.path.present() && len(c.path.value) > 0 && c.path.value[0] == '/'
}
