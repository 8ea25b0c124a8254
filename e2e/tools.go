package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tools are the binaries the harness runs. None of them is linked into the harness:
// each runs as its own process, as it would in production.
type Tools struct {
	Bootstrap string // the product, built for this machine
	RIE       string // aws-lambda-rie
	Versitygw string
	Goflow2   string
	NFCapd    string // nfdump's collector (Debian nfdump), a second independent reader
	NFDump    string
}

// findTools looks in binDir first, then on PATH, and says which tool is missing.
func findTools(binDir, bootstrap string) (Tools, error) {
	t := Tools{Bootstrap: bootstrap}
	var missing []string
	find := func(name string, dst *string) {
		if binDir != "" {
			p := filepath.Join(binDir, name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				*dst = p
				return
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			*dst = p
			return
		}
		missing = append(missing, name)
	}
	find("aws-lambda-rie", &t.RIE)
	find("versitygw", &t.Versitygw)
	find("goflow2", &t.Goflow2)
	find("nfcapd", &t.NFCapd)
	find("nfdump", &t.NFDump)
	if st, err := os.Stat(bootstrap); err != nil || !st.Mode().IsRegular() {
		missing = append(missing, "bootstrap ("+bootstrap+")")
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing tools: %s (run e2e/run.sh, which installs them)", strings.Join(missing, ", "))
	}
	return t, nil
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(network string) (int, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	default:
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
}

// waitTCP waits until something accepts connections on addr, or ctx ends.
func waitTCP(ctx context.Context, addr string, p *Proc) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before listening on %s: %v (log %s)", p.Name, addr, p.ExitErr(), p.LogPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// udpBound reports whether a UDP socket is bound to 127.0.0.1:port (from
// /proc/net/udp, so the check does not itself bind the port).
func udpBound(port int) bool {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 1 && fields[1] == want {
			return true
		}
	}
	return false
}

func waitUDP(ctx context.Context, port int, p *Proc) error {
	for !udpBound(port) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before binding UDP %d: %v (log %s)", p.Name, port, p.ExitErr(), p.LogPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing bound UDP 127.0.0.1:%d: %w", port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Proc is a server the harness started. It runs in its own process group, so Stop
// reaches its children too (the RIE's bootstrap).
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	stopSig syscall.Signal
	done    chan struct{}
	err     error
	once    sync.Once
	Sink    *LogSink
}

// procs is every process started and not yet stopped, for the cleanup on exit.
var procs = struct {
	sync.Mutex
	m map[*Proc]bool
}{m: map[*Proc]bool{}}

// startProc starts args with env (nil: the harness's own), logging stdout and stderr
// to logPath and to a LogSink that parses JSON lines. stopSig is what asks it to stop
// (goflow2, versitygw and the RIE stop on SIGTERM; nfacctd wants SIGINT).
func startProc(name, logPath string, env []string, stopSig syscall.Signal, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	sink := newLogSink(f)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdout = sink
	cmd.Stderr = sink
	// Own process group: Stop signals the group. Pdeathsig: if the harness dies
	// without cleaning up, the kernel stops the server anyway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild holding the output pipe must not block Wait forever.
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, stopSig: stopSig, done: make(chan struct{}), Sink: sink}
	procs.Lock()
	procs.m[p] = true
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the result of Wait once the process has ended.
func (p *Proc) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop asks the process group to stop, waits up to 5 s, then kills it. Safe to call twice.
func (p *Proc) Stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, p.stopSig)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
		}
		// Whatever is left in the group (a runtime the RIE started) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		procs.Lock()
		delete(procs.m, p)
		procs.Unlock()
	})
}

// stopAll stops every process still running; the harness calls it on every exit path.
func stopAll() {
	procs.Lock()
	var all []*Proc
	for p := range procs.m {
		all = append(all, p)
	}
	procs.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
}

// LogLine is one line of a process's output; JSON is set when the line is a JSON object.
type LogLine struct {
	Text string
	JSON map[string]any
	At   time.Time
}

// LogSink keeps a process's output lines (and writes them to a file), so that the
// harness can wait for a line and read the function's logs and metrics.
type LogSink struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	lines   []LogLine
	changed chan struct{}
}

func newLogSink(w io.Writer) *LogSink {
	return &LogSink{w: w, changed: make(chan struct{})}
}

func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(p)
	s.partial = append(s.partial, p...)
	added := false
	for {
		i := strings.IndexByte(string(s.partial), '\n')
		if i < 0 {
			break
		}
		text := strings.TrimRight(string(s.partial[:i]), "\r")
		s.partial = s.partial[i+1:]
		l := LogLine{Text: text, At: time.Now()}
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") {
			var m map[string]any
			if json.Unmarshal([]byte(t), &m) == nil {
				l.JSON = m
			}
		}
		s.lines = append(s.lines, l)
		added = true
	}
	if added {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return len(p), nil
}

// Lines returns the lines from index from on.
func (s *LogSink) Lines(from int) []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from > len(s.lines) {
		return nil
	}
	return append([]LogLine(nil), s.lines[from:]...)
}

// Len is the number of complete lines so far.
func (s *LogSink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// WaitFor waits until a line from index from on satisfies match, and returns its index.
func (s *LogSink) WaitFor(ctx context.Context, from int, match func(LogLine) bool) (int, error) {
	for {
		s.mu.Lock()
		for i := from; i < len(s.lines); i++ {
			if match(s.lines[i]) {
				s.mu.Unlock()
				return i, nil
			}
		}
		from = max(from, len(s.lines))
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

// msgIs matches a JSON log line by its message ("msg", or "message" with Lambda's key names).
func msgIs(msg string) func(LogLine) bool {
	return func(l LogLine) bool { return logMsg(l) == msg }
}

func logMsg(l LogLine) string {
	if l.JSON == nil {
		return ""
	}
	for _, k := range []string{"msg", "message"} {
		if s, ok := l.JSON[k].(string); ok {
			return s
		}
	}
	return ""
}

// num reads a JSON number field as a uint64 (0 when absent).
func num(m map[string]any, key string) uint64 {
	switch v := m[key].(type) {
	case float64:
		return uint64(v)
	case json.Number:
		n, _ := strconv.ParseUint(v.String(), 10, 64)
		return n
	}
	return 0
}

func errorsJoin(errs []error) error { return errors.Join(errs...) }
