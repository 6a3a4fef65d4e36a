package affinity

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

const cookieName = config.DefaultAffinityCookieName

var (
	keyA = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("A", 32)))
	keyB = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("B", 32)))
	now  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// affinityConfig parses an enabled affinity section with the given keys and extra JSON members.
func affinityConfig(t *testing.T, keys []string, extra string) *config.Config {
	t.Helper()
	return parse(t, `{"affinity":{"enabled":true,"keys":["`+strings.Join(keys, `","`)+`"]`+extra+`}}`)
}

func parse(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatalf("config %s: %v", doc, err)
	}
	return cfg
}

func sealToken(t *testing.T, a *config.Affinity, tok seal.Token) string {
	t.Helper()
	v, err := a.Sealer.Seal(tok, a.CookieName)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReadRequestVerdicts(t *testing.T) {
	a := &affinityConfig(t, []string{keyA}, "").Affinity
	other := &affinityConfig(t, []string{keyB}, "").Affinity
	up := "10.0.0.1:8080"
	valid := sealToken(t, a, seal.Token{Upstream: up, Issued: now.Add(-time.Hour), LastSeen: now.Add(-time.Minute)})
	forged := sealToken(t, other, seal.Token{Upstream: up, Issued: now, LastSeen: now})
	idle := sealToken(t, a, seal.Token{Upstream: up, Issued: now.Add(-time.Hour), LastSeen: now.Add(-31 * time.Minute)})
	old := sealToken(t, a, seal.Token{Upstream: up, Issued: now.Add(-25 * time.Hour), LastSeen: now})
	future := sealToken(t, a, seal.Token{Upstream: up, Issued: now.Add(time.Hour), LastSeen: now.Add(time.Hour)})

	tests := []struct {
		name    string
		headers []string
		want    Verdict
	}{
		{"no cookie header", nil, Absent},
		{"other cookies only", []string{"a=1; b=2"}, Absent},
		{"name as a value elsewhere", []string{"a=" + cookieName}, Absent},
		{"valid", []string{"a=1; " + cookieName + "=" + valid + "; b=2"}, Honoured},
		{"valid, second header", []string{"a=1", cookieName + "=" + valid}, Honoured},
		{"garbage", []string{cookieName + "=garbage"}, RejectedMalformed},
		{"empty value", []string{cookieName + "="}, RejectedMalformed},
		{"quoted", []string{cookieName + `="` + valid + `"`}, RejectedMalformed},
		{"other key", []string{cookieName + "=" + forged}, RejectedTampered},
		{"idle", []string{cookieName + "=" + idle}, RejectedExpiredIdle},
		{"too old", []string{cookieName + "=" + old}, RejectedExpiredLife},
		{"from the future", []string{cookieName + "=" + future}, RejectedFromFuture},
		{"invalid then valid", []string{cookieName + "=" + forged + "; " + cookieName + "=" + valid}, Honoured},
		{"valid then invalid", []string{cookieName + "=" + valid, cookieName + "=junk"}, Honoured},
		{"two invalid: the first reason", []string{cookieName + "=" + idle + "; " + cookieName + "=" + forged}, RejectedExpiredIdle},
		{"case differs", []string{strings.ToLower(cookieName) + "=" + valid}, Absent},
		{"whitespace around", []string{" \t" + cookieName + " = " + valid + " ;x=y"}, Honoured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ReadRequest(a, tt.headers, now)
			if r.Verdict != tt.want {
				t.Fatalf("verdict = %v, want %v", r.Verdict, tt.want)
			}
			if tt.want == Honoured {
				if r.Token.Upstream != up || r.Route != EncodeRoutingValue(up) {
					t.Errorf("token %+v route %q", r.Token, r.Route)
				}
			} else if r.Route != "" {
				t.Errorf("route %q set for verdict %v", r.Route, r.Verdict)
			}
			if r.Verdict.Rejected() != (tt.want != Absent && tt.want != Honoured) {
				t.Errorf("Rejected() = %t for %v", r.Verdict.Rejected(), r.Verdict)
			}
		})
	}
}

// A client cannot make one request open more than maxTokensTried tokens, however many it sends.
func TestReadRequestBoundsWork(t *testing.T) {
	a := &affinityConfig(t, []string{keyA}, "").Affinity
	valid := sealToken(t, a, seal.Token{Upstream: "10.0.0.1:80", Issued: now, LastSeen: now})
	junk := strings.Repeat(cookieName+"=junk; ", maxTokensTried)
	r := ReadRequest(a, []string{junk + cookieName + "=" + valid}, now)
	if r.Verdict != RejectedMalformed {
		t.Fatalf("verdict = %v: a token past the bound was opened", r.Verdict)
	}
	if !r.StripCookies || len(r.Cookies) != 0 {
		t.Errorf("every copy must still be stripped: %t %q", r.StripCookies, r.Cookies)
	}
}

func TestReadRequestIndirect(t *testing.T) {
	on := &affinityConfig(t, []string{keyA}, "").Affinity
	off := &affinityConfig(t, []string{keyA}, `,"indirect":false`).Affinity
	valid := sealToken(t, on, seal.Token{Upstream: "10.0.0.1:80", Issued: now, LastSeen: now})
	pair := cookieName + "=" + valid

	tests := []struct {
		name    string
		headers []string
		strip   bool
		want    []string
	}{
		{"absent", []string{"a=1; b=2"}, false, nil},
		{"middle", []string{"a=1; " + pair + "; b=2"}, true, []string{"a=1; b=2"}},
		{"alone: header dropped", []string{pair}, true, []string{}},
		{"own header among others", []string{"a=1", pair, "b=2"}, true, []string{"a=1", "b=2"}},
		{"invalid one stripped too", []string{cookieName + "=junk;a=1"}, true, []string{"a=1"}},
		{"both copies", []string{pair + "; a=1; " + cookieName + "=x"}, true, []string{"a=1"}},
		{"non-pairs kept", []string{`x; ` + pair + `;  q="a b" `}, true, []string{`x; q="a b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ReadRequest(on, tt.headers, now)
			if r.StripCookies != tt.strip {
				t.Fatalf("StripCookies = %t, want %t", r.StripCookies, tt.strip)
			}
			if tt.strip && strings.Join(r.Cookies, "|") != strings.Join(tt.want, "|") || len(r.Cookies) != len(tt.want) {
				t.Errorf("cookies = %q, want %q", r.Cookies, tt.want)
			}
			if r := ReadRequest(off, tt.headers, now); r.StripCookies || r.Cookies != nil {
				t.Errorf("indirect off stripped: %q", r.Cookies)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	a := &affinityConfig(t, []string{keyA}, "").Affinity
	up, other := "10.0.0.1:8080", "10.0.0.2:8080"
	issued := now.Add(-time.Hour)
	honoured := func(lastSeen time.Time) *Request {
		return &Request{Verdict: Honoured, Token: seal.Token{Upstream: up, Issued: issued, LastSeen: lastSeen}}
	}
	fresh := seal.Token{Upstream: up, Issued: now, LastSeen: now}

	tests := []struct {
		name     string
		req      *Request
		upstream string
		want     Action
		tok      seal.Token
	}{
		{"no upstream, no token", &Request{}, "", Keep, seal.Token{}},
		{"no upstream, rejected token", &Request{Verdict: RejectedTampered}, "", Keep, seal.Token{}},
		{"first response", &Request{}, up, Issue, fresh},
		{"rejected token replaced", &Request{Verdict: RejectedExpiredIdle}, up, Issue, fresh},
		{"same upstream, recently seen", honoured(now.Add(-30 * time.Second)), up, Keep, seal.Token{}},
		{"same upstream, refresh due", honoured(now.Add(-time.Minute)), up, Refresh,
			seal.Token{Upstream: up, Issued: issued, LastSeen: now}},
		{"failover", honoured(now.Add(-30 * time.Second)), other, Repin,
			seal.Token{Upstream: other, Issued: now, LastSeen: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tok := Decide(a, tt.req, tt.upstream, now)
			if got != tt.want || tok != tt.tok {
				t.Errorf("Decide = %v %+v, want %v %+v", got, tok, tt.want, tt.tok)
			}
		})
	}

	always := &affinityConfig(t, []string{keyA}, `,"refresh_interval":"0s"`).Affinity
	if got, _ := Decide(always, honoured(now), up, now); got != Refresh {
		t.Errorf("refresh_interval 0: %v, want refreshed every time", got)
	}
}

// The whole cycle through the decisions: issue, honour, refresh after the interval, re-pin on failover.
func TestLifecycle(t *testing.T) {
	a := &affinityConfig(t, []string{keyA}, "").Affinity
	rr := rewrite.NewRequest(affinityConfig(t, []string{keyA}, ""), "chat.example.com", "/", "")
	jar := ""
	step := func(at time.Time, upstream string) (Request, Action) {
		t.Helper()
		var hdr []string
		if jar != "" {
			hdr = []string{"other=1; " + cookieName + "=" + jar}
		}
		req := ReadRequest(a, hdr, at)
		act, tok := Decide(a, &req, upstream, at)
		if act != Keep {
			line := SetCookie(a, sealToken(t, a, tok), &rr)
			v, _, _ := strings.Cut(strings.TrimPrefix(line, cookieName+"="), ";")
			jar = v
		}
		return req, act
	}
	if r, act := step(now, "10.0.0.1:80"); r.Verdict != Absent || act != Issue {
		t.Fatalf("first: %v %v", r.Verdict, act)
	}
	if r, act := step(now.Add(10*time.Second), "10.0.0.1:80"); r.Verdict != Honoured || act != Keep || r.Token.Upstream != "10.0.0.1:80" {
		t.Fatalf("second: %v %v %+v", r.Verdict, act, r.Token)
	}
	if r, act := step(now.Add(2*time.Minute), "10.0.0.1:80"); r.Verdict != Honoured || act != Refresh {
		t.Fatalf("after the refresh interval: %v %v", r.Verdict, act)
	}
	if r, act := step(now.Add(3*time.Minute), "10.0.0.2:80"); r.Verdict != Honoured || act != Repin {
		t.Fatalf("failover: %v %v", r.Verdict, act)
	}
	if r, _ := step(now.Add(4*time.Minute), "10.0.0.2:80"); r.Token.Upstream != "10.0.0.2:80" {
		t.Fatalf("after failover pinned to %q", r.Token.Upstream)
	}
	if r, act := step(now.Add(time.Hour), "10.0.0.2:80"); r.Verdict != RejectedExpiredIdle || act != Issue {
		t.Fatalf("after an hour idle: %v %v", r.Verdict, act)
	}
}

func TestVerdictAndActionNames(t *testing.T) {
	for v, want := range map[Verdict]string{Absent: "absent", Honoured: "honoured", RejectedMalformed: "malformed",
		RejectedTampered: "tampered", RejectedExpiredIdle: "expired_idle", RejectedExpiredLife: "expired_life",
		RejectedFromFuture: "from_future", RejectedFromFuture + 1: "unknown"} {
		if v.String() != want {
			t.Errorf("Verdict(%d) = %q, want %q", v, v.String(), want)
		}
	}
	for a, want := range map[Action]string{Keep: "keep", Issue: "issued", Repin: "repinned", Refresh: "refreshed", Refresh + 1: "unknown"} {
		if a.String() != want {
			t.Errorf("Action(%d) = %q, want %q", a, a.String(), want)
		}
	}
}
