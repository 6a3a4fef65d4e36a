package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

var serveProcess = flag.Bool("serve.process", false, "run BenchmarkServeProcess (wasmhost serve as a child process); make bench passes it with a fixed -test.benchtime")

// The configurations of BenchmarkServeProcess: the same wasmhost serve without the filter, with the filter and an
// empty configuration (the defaults), and with testdata/config/affinity.json (every request without a cookie gets
// one issued).
const (
	ConfigNone     = "config=none"
	ConfigDefault  = "config=default"
	ConfigAffinity = "config=affinity"
)

var serveConfigs = []string{ConfigNone, ConfigDefault, ConfigAffinity}

// processClients is the number of concurrent keep-alive clients of BenchmarkServeProcess.
const processClients = 16

// serveProc is one `wasmhost serve` child process and the load that drives it.
type serveProc struct {
	cmd  *exec.Cmd
	load *Load
}

type serveProcs struct {
	upstream *http.Server
	procs    map[string]*serveProc
}

var (
	procsOnce  sync.Once
	procsState *serveProcs
	procsErr   error
)

// BenchmarkServeProcess measures `wasmhost serve` as it runs: a separate process in front of a loopback upstream
// (the chat response: three Set-Cookie), driven by processClients keep-alive clients. cpu-ns/op is the serve
// process's own CPU time (user and system, all threads, from /proc/PID/stat) per request, so neither the load
// generator nor the upstream counts; req/s is the throughput. make bench runs it with a fixed request count per
// configuration (-test.benchtime=Nx), several times in a row so that the configurations alternate.
func BenchmarkServeProcess(b *testing.B) {
	if !*serveProcess {
		b.Skip("needs -serve.process (make bench passes it)")
	}
	procsOnce.Do(func() { procsState, procsErr = startServeProcs(b) })
	if procsErr != nil {
		b.Fatal(procsErr)
	}
	for _, cfg := range serveConfigs {
		b.Run(cfg, func(b *testing.B) {
			p := procsState.procs[cfg]
			// One checked round proves what the configuration measures and warms the connections.
			p.load.Check = checkConfig(cfg)
			if _, err := p.load.Run(context.Background(), 4*p.load.Clients); err != nil {
				b.Fatal(err)
			}
			p.load.Check = nil
			cpu0, err := processCPU(p.cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			res, err := p.load.Run(context.Background(), b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			cpu1, err := processCPU(p.cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(res.Throughput(), "req/s")
		})
	}
}

// checkConfig proves what each configuration runs: no rewriting without the filter, every cookie rewritten with
// it, and an affinity cookie issued with the affinity configuration.
func checkConfig(cfg string) func(*http.Response) error {
	return func(r *http.Response) error {
		partitioned, affinity := 0, 0
		for _, c := range r.Header.Values("Set-Cookie") {
			if strings.HasSuffix(c, "; Partitioned") {
				partitioned++
			}
			if strings.HasPrefix(c, "__Host-chips_affinity=") {
				affinity++
			}
		}
		switch {
		case cfg == ConfigNone && partitioned > 0:
			return errors.New("bench: cookies rewritten without the filter")
		case cfg != ConfigNone && partitioned < len(ChatCookies):
			return fmt.Errorf("bench: %s: %d cookies rewritten, want %d", cfg, partitioned, len(ChatCookies))
		case (cfg == ConfigAffinity) != (affinity == 1):
			return fmt.Errorf("bench: %s: %d affinity cookies", cfg, affinity)
		}
		return nil
	}
}

// startServeProcs builds wasmhost, starts the upstream and one wasmhost serve per configuration.
func startServeProcs(tb testing.TB) (*serveProcs, error) {
	filter := testwasm.Filter(tb)
	bin := filepath.Join(testwasm.RepoRoot(), "build", "bench", "wasmhost")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./host/cmd/wasmhost")
	build.Dir = testwasm.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: building wasmhost: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	s := &serveProcs{
		upstream: &http.Server{Handler: ChatUpstream(), ReadHeaderTimeout: 10 * time.Second},
		procs:    map[string]*serveProc{},
	}
	go s.upstream.Serve(ln)
	for _, cfg := range serveConfigs {
		args := []string{"serve", "--listen", "127.0.0.1:0", "--upstream", "http://" + ln.Addr().String(),
			"--log-level", "warn", "--cache-dir", CacheDir()}
		switch cfg {
		case ConfigDefault:
			args = append(args, "--wasm", filter)
		case ConfigAffinity:
			args = append(args, "--wasm", filter, "--config", filepath.Join(testwasm.RepoRoot(), "testdata", "config", "affinity.json"))
		}
		p, err := startServeProc(bin, args)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bench: %s: %w", cfg, err)
		}
		s.procs[cfg] = p
	}
	return s, nil
}

// startServeProc starts wasmhost and waits for its banner's first line, which it prints once it listens.
func startServeProc(bin string, args []string) (*serveProc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("no banner: %w", err)
	}
	go io.Copy(io.Discard, br)
	rest, ok := strings.CutPrefix(line, "wasmhost: proxy on ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("unexpected banner %q", line)
	}
	url, _, _ := strings.Cut(rest, " ")
	return &serveProc{cmd: cmd, load: &Load{URL: url + "/genesys/cometd/connect", Clients: processClients}}, nil
}

func (s *serveProcs) close() {
	for _, p := range s.procs {
		p.load.Close()
		p.cmd.Process.Signal(os.Interrupt)
		p.cmd.Wait()
	}
	s.upstream.Close()
}

// userHZ is the unit of the CPU times in /proc/PID/stat: Linux reports them in USER_HZ ticks, which is 100 on
// every architecture Go supports there.
const userHZ = 100

// processCPU returns the user and system CPU time of process pid and all its threads so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: process CPU: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("bench: process CPU: unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: process CPU: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}
