// Package cookie rewrites Set-Cookie header values so that the cookies they
// carry survive third-party-cookie blocking (CHIPS: the Partitioned
// attribute), and holds the small pieces of browser knowledge the filter needs
// around that: which user agents mishandle SameSite=None, and what the
// registrable domain of a host is.
//
// The package is pure Go with no proxy-wasm dependency, so it is unit-tested
// and fuzzed natively and linked unchanged into the Wasm filter. It must not
// import net/http or anything else that would pull extra WASI imports into
// the filter (see RegistrableDomain).
//
// # Model
//
// Every function takes ONE Set-Cookie header value. Values are never split on
// commas (Expires dates contain one). Parsing follows RFC 6265bis §5.6
// (draft-ietf-httpbis-rfc6265bis) as browsers implement it:
//
//   - a set-cookie-string containing a control character other than HTAB is
//     ignored entirely (§5.6 step 1);
//   - the name-value-pair runs up to the first ';' and splits at the first '=';
//     name and value are trimmed of SP and HTAB;
//   - a name plus value longer than 4096 octets makes the cookie ignored;
//   - each attribute runs up to the next ';', splits at its first '=', and is
//     trimmed; attribute names are ASCII-case-insensitive; an attribute whose
//     value exceeds 1024 octets is ignored (§5.6 step "cookie-av");
//   - Secure, HttpOnly and Partitioned ignore their value ("secure=xyz" is
//     Secure, "Secure qux" is an unknown attribute);
//   - for every other attribute the last occurrence wins (§5.7).
//
// # Rewrite
//
// Rewrite normalises instead of appending blindly: a SameSite=Lax later in
// the value would otherwise override an appended SameSite=None. It keeps the
// original text of every attribute it does not have to change, so unknown
// attributes, quoted values, Expires and Max-Age pass through byte-for-byte.
// A value that is already what the policy asks for comes back as the very
// same string, without allocating. Rewrite(Rewrite(x)) == Rewrite(x).
//
// A value that is not a cookie, or that browsers would already reject and
// that the policy cannot make acceptable without changing what the config
// did not ask to change, comes back unchanged with Outcome Malformed, so the
// caller can count it. See Rewrite for the exact rules.
//
// # Edge cases, decided
//
//   - "a=" (empty value) is a cookie. "=v", "=" and "v" (no name) are not:
//     RFC 6265bis would store a nameless cookie, but net/http and RFC 6265
//     refuse it and a nameless cookie cannot be selected; it passes unchanged.
//   - Quotes are not special: `a="x y"` keeps its quotes, and `a="x;y"` ends
//     its pair at the ';' exactly as browsers do.
//   - "Secure qux" is an unknown attribute; "secure=xyz" is Secure;
//     "ſecure" (U+017F) is not: only ASCII case is folded.
//   - An attribute value over 1024 octets does not count, but its text stays,
//     except a SameSite or Domain the policy replaces (all of those go).
//   - A __Host- cookie with a Domain, a Path other than "/", or no Path when
//     the policy's Path is not "/" is already rejected by browsers; it passes
//     unchanged as Malformed rather than having its scope changed.
//   - An earlier, overridden SameSite is left alone when the last one already
//     has the policy's value: the cookie is compliant and stays byte-identical.
//   - The append order is Path, Domain, HttpOnly, Secure, SameSite,
//     Partitioned; trailing ';' and whitespace are dropped before appending.
package cookie
