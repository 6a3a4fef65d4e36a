package seal

import (
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const idle, life = 30 * time.Minute, 24 * time.Hour
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name             string
		issued, lastSeen time.Time
		maxIdle, maxLife time.Duration
		want             error
	}{
		{"fresh", now, now, idle, life, nil},
		{"idle at limit", ago(time.Hour), ago(idle), idle, life, nil},
		{"idle past limit", ago(time.Hour), ago(idle + time.Second), idle, life, ErrExpiredIdle},
		{"life at limit", ago(life), ago(time.Minute), idle, life, nil},
		{"life past limit", ago(life + time.Second), ago(time.Minute), idle, life, ErrExpiredLife},
		{"both past, life wins", ago(life + time.Hour), ago(life), idle, life, ErrExpiredLife},
		{"no idle limit", ago(time.Hour), ago(time.Hour), 0, life, nil},
		{"no life limit", ago(1000 * life), ago(time.Minute), idle, 0, nil},
		{"no limits", ago(1000 * life), ago(1000 * life), 0, 0, nil},
		{"issued within skew", now.Add(ClockSkew), now, idle, life, nil},
		{"issued past skew", now.Add(ClockSkew + time.Second), now, idle, life, ErrFromFuture},
		{"last seen past skew", now, now.Add(2 * ClockSkew), idle, life, ErrFromFuture},
		{"future even without limits", now.Add(time.Hour), now.Add(time.Hour), 0, 0, ErrFromFuture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := Token{Upstream: "10.0.0.1:80", Issued: tt.issued, LastSeen: tt.lastSeen}
			if got := tok.Validate(now, tt.maxIdle, tt.maxLife); got != tt.want {
				t.Errorf("Validate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNeedsRefresh(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lastSeen time.Time
		interval time.Duration
		want     bool
	}{
		{"just seen", now, time.Minute, false},
		{"before interval", now.Add(-59 * time.Second), time.Minute, false},
		{"at interval", now.Add(-time.Minute), time.Minute, true},
		{"after interval", now.Add(-time.Hour), time.Minute, true},
		{"seen slightly in the future", now.Add(30 * time.Second), time.Minute, false},
		{"zero interval refreshes always", now, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := Token{Upstream: "10.0.0.1:80", Issued: now.Add(-time.Hour), LastSeen: tt.lastSeen}
			if got := tok.NeedsRefresh(now, tt.interval); got != tt.want {
				t.Errorf("NeedsRefresh = %v, want %v", got, tt.want)
			}
		})
	}
}
