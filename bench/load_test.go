package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a bounded HTTP/1.1 load generator for loopback servers: a fixed number of keep-alive clients share a
// fixed number of requests, and every request's latency (from sending the request to reading the last byte of the
// body) is recorded.
type Load struct {
	URL     string // absolute URL, http://127.0.0.1:port/path
	Clients int    // concurrent clients, each with its own keep-alive connection
	// Check, when set, inspects every response; an error stops the run.
	Check  func(*http.Response) error
	client *http.Client
}

// LoadResult is one run of a Load.
type LoadResult struct {
	Requests  int
	Elapsed   time.Duration
	Latencies []time.Duration // one per request, in completion order
}

// Throughput is the run's requests per second.
func (r LoadResult) Throughput() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Percentile returns the latency below which a fraction q (0..1) of the requests completed.
func (r LoadResult) Percentile(q float64) time.Duration { return Percentile(r.Latencies, q) }

// Percentile returns the q-quantile (0..1) of latencies by the nearest-rank method; latencies need not be sorted.
func Percentile(latencies []time.Duration, q float64) time.Duration {
	if len(latencies) == 0 {
		return 0
	}
	s := slices.Clone(latencies)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// loopbackOnly refuses any destination outside 127.0.0.0/8 and ::1: the load generator must never leave the
// machine, whatever URL it is given.
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("bench: load generator: %s is not a loopback address", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (l *Load) httpClient() *http.Client {
	if l.client == nil {
		l.client = &http.Client{
			Transport: &http.Transport{
				DialContext:         loopbackOnly,
				MaxIdleConns:        l.Clients,
				MaxIdleConnsPerHost: l.Clients,
				MaxConnsPerHost:     l.Clients,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
				ForceAttemptHTTP2:   false,
			},
			Timeout: 30 * time.Second,
		}
	}
	return l.client
}

// Close releases the clients' idle connections.
func (l *Load) Close() {
	if l.client != nil {
		l.client.CloseIdleConnections()
	}
}

// Run sends n requests with l.Clients concurrent clients and waits for all of them. The first failure stops the
// run and is returned.
func (l *Load) Run(ctx context.Context, n int) (LoadResult, error) {
	if l.Clients <= 0 {
		return LoadResult{}, errors.New("bench: load generator: Clients must be positive")
	}
	if !strings.HasPrefix(l.URL, "http://") {
		return LoadResult{}, fmt.Errorf("bench: load generator: want an http:// URL, got %q", l.URL)
	}
	client := l.httpClient()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, l.Clients)
	start := time.Now()
	for c := range l.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/l.Clients+1)
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t0 := time.Now()
				err := l.one(ctx, client)
				mine = append(mine, time.Since(t0))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
			}
			lat[c] = mine
		}()
	}
	wg.Wait()
	res := LoadResult{Elapsed: time.Since(start)}
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	res.Requests = len(res.Latencies)
	return res, firstErr
}

func (l *Load) one(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", ChatUserAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: load generator: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("bench: load generator: reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: load generator: status %d", resp.StatusCode)
	}
	if l.Check != nil {
		return l.Check(resp)
	}
	return nil
}
