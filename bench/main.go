// Command bench is the performance harness behind `make bench`. It generates its flow
// log objects once (deterministic, cached), builds the bootstrap binary, and measures
// what the performance issue asks for, printing one table:
//
//   - end to end: `bootstrap replay --eps 0` of a 1,000,000-record .log.gz to a UDP
//     listener on loopback, as a ratio to `gzip -dc FILE > /dev/null` (medians of runs
//     interleaved, since the machine is shared and noisy);
//   - allocations per record of the hot path (parse, map, encode) in steady state;
//   - peak RSS (/usr/bin/time -v) of an unpaced replay of a ~75 MB .log.gz;
//   - cold start: exec to the first /runtime/invocation/next request of a fake Lambda
//     runtime API, and to the "ready" log line; the binary's size;
//   - encoding against vmware/go-ipfix's exporter: the benchmarks of the nested module
//     bench/goipfixcmp, as a ratio of time per record, in memory and through UDP;
//   - pacing precision at 5,000 and 100,000 EPS over 10 s, by arrival time at the
//     listener, with CPU seconds per paced second; both through bootstrap (as deployed)
//     and through the same pipeline with pacer.Options.MaxLag set.
//
// Usage: go run ./bench [-quick] [-dir DIR]. Nothing here is a test: it reports, and
// `make bench` never fails on a missed target.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/flowlog"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/pacer"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/udpsender"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "listen" { // for experiments: a sink that reports on SIGINT
		l := newListener(0)
		fmt.Println(l.addr())
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		<-ctx.Done()
		stop()
		l.close()
		fmt.Fprintln(os.Stderr, "datagrams", l.datagrams.Load())
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "paced-replay" {
		os.Exit(pacedReplay(os.Args[2:]))
	}
	defaultDir := filepath.Join(os.TempDir(), "vpcflow-bench")
	if home, err := os.UserHomeDir(); err == nil {
		defaultDir = filepath.Join(home, ".cache", "vpcflow-bench")
	}
	dir := flag.String("dir", defaultDir, "cache directory for the generated objects and the binary")
	quick := flag.Bool("quick", false, "fewer runs, 3 s of pacing instead of 10 s")
	runs := flag.Int("runs", 5, "runs of each end-to-end measurement (medians are reported)")
	bigRecords := flag.Int("big-records", 2_900_000, "records in the large object (about 75 MB gzipped)")
	flag.Parse()
	if *quick {
		*runs = 3
	}
	pacingSeconds := 10.0
	if *quick {
		pacingSeconds = 3
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fatal(err)
	}
	h := &harness{dir: *dir, runs: *runs}
	h.run(pacingSeconds, *bigRecords)
}

type harness struct {
	dir  string
	runs int
	bin  string
	rows []row
	self string
}

type row struct{ target, measured, value, verdict string }

func (h *harness) add(target, measured, value, verdict string) {
	h.rows = append(h.rows, row{target, measured, value, verdict})
	fmt.Fprintf(os.Stderr, "  %s: %s (%s) %s\n", target, measured, value, verdict)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func (h *harness) run(pacingSeconds float64, bigRecords int) {
	fmt.Fprintf(os.Stderr, "bench: %s, %d CPUs, %s, cache %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), h.dir)
	h.build()
	million := h.object("default", 1_000_000)
	h.endToEnd(million, 1_000_000)
	h.allocs(million)
	big := h.object("default", bigRecords)
	h.memory(big, bigRecords)
	h.coldStart()
	h.encodeComparison()
	perRate := map[float64]string{5000: h.object("default", int(5000*pacingSeconds)), 100000: h.object("default", int(100000*pacingSeconds))}
	for _, eps := range []float64{5000, 100000} {
		// The product itself (lambda/app.go sets MaxLag 5 ms), then the same pipeline
		// with less catch-up, to show why 5 ms was chosen.
		h.pacing(perRate[eps], eps, 0)
		h.pacing(perRate[eps], eps, 2*time.Millisecond)
	}
	h.print()
}

func (h *harness) print() {
	w := []int{len("target"), len("measured"), len("value / ratio"), len("result")}
	for _, r := range h.rows {
		for i, s := range []string{r.target, r.measured, r.value, r.verdict} {
			w[i] = max(w[i], len(s))
		}
	}
	line := func(a, b, c, d string) {
		fmt.Printf("| %-*s | %-*s | %-*s | %-*s |\n", w[0], a, w[1], b, w[2], c, w[3], d)
	}
	fmt.Println()
	fmt.Printf("vpcflow-ipfix performance: %s, %d CPUs, %s, %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	line("target", "measured", "value / ratio", "result")
	line(strings.Repeat("-", w[0]), strings.Repeat("-", w[1]), strings.Repeat("-", w[2]), strings.Repeat("-", w[3]))
	for _, r := range h.rows {
		line(r.target, r.measured, r.value, r.verdict)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for l := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// build compiles bootstrap as `make build` does, for this machine's architecture, and
// reports the size of the Lambda binary (linux/arm64) too.
func (h *harness) build() {
	h.bin = filepath.Join(h.dir, "bootstrap")
	flags := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}
	cmd := exec.Command("go", append(flags, "-o", h.bin, "./lambda")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fatal(fmt.Errorf("building bootstrap: %w", err))
	}
	arm := filepath.Join(h.dir, "bootstrap-arm64")
	cmd = exec.Command("go", append(flags, "-o", arm, "./lambda")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err == nil {
		if st, err := os.Stat(arm); err == nil {
			h.add("binary size (linux/arm64, make build flags)", fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20)), "report only", "-")
		}
	}
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	h.self = self
}

// object returns the path of a deterministic default-format .log.gz of n records,
// generating it on first use.
func (h *harness) object(kind string, n int) string {
	path := filepath.Join(h.dir, fmt.Sprintf("%s-%d.log.gz", kind, n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	fmt.Fprintf(os.Stderr, "bench: generating %s\n", path)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		fatal(err)
	}
	zw, _ := kgzip.NewWriterLevel(f, kgzip.DefaultCompression)
	bw := bufio.NewWriterSize(zw, 1<<20)
	writeRecords(bw, n)
	if err := bw.Flush(); err != nil {
		fatal(err)
	}
	if err := zw.Close(); err != nil {
		fatal(err)
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fatal(err)
	}
	return path
}

// writeRecords writes a header and n plausible records: a few hundred interfaces and
// hosts, ephemeral ports, mostly TCP, 10% REJECT, a spread of packet and byte counts.
// The seed is fixed, so the object is the same on every run and every machine.
func writeRecords(w io.Writer, n int) {
	r := rand.New(rand.NewPCG(2055, 7011))
	fmt.Fprintln(w, flowlog.DefaultHeader)
	const start = 1796313900
	var b []byte
	for i := range n {
		b = b[:0]
		b = append(b, "2 123456789012 eni-0"...)
		b = strconv.AppendUint(b, 0x123456789abc0000+uint64(r.IntN(300)), 16)
		b = append(b, ' ')
		b = fmt.Appendf(b, "10.%d.%d.%d ", r.IntN(4), r.IntN(256), 1+r.IntN(254))
		if r.IntN(4) == 0 {
			b = fmt.Appendf(b, "%d.%d.%d.%d ", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		} else {
			b = fmt.Appendf(b, "10.%d.%d.%d ", r.IntN(4), r.IntN(256), 1+r.IntN(254))
		}
		proto, dport := 6, []int{443, 80, 22, 5432, 3306, 53, 8080, 6379}[r.IntN(8)]
		if dport == 53 || r.IntN(10) == 0 {
			proto = 17
		}
		packets := 1 + r.IntN(2000)
		b = fmt.Appendf(b, "%d %d %d %d %d ", 1024+r.IntN(64511), dport, proto, packets, packets*(40+r.IntN(1461)))
		t := start + i/2000
		b = fmt.Appendf(b, "%d %d ", t, t+1+r.IntN(59))
		if r.IntN(10) == 0 {
			b = append(b, "REJECT OK\n"...)
		} else {
			b = append(b, "ACCEPT OK\n"...)
		}
		w.Write(b)
	}
}

// --- UDP listener ------------------------------------------------------------------

// listener counts what arrives and notes, for each data message, its arrival time
// and sequence number (the data records sent before it), from which the achieved
// rate follows without decoding a single record.
type listener struct {
	conn       *net.UDPConn
	datagrams  atomic.Uint64
	mu         sync.Mutex
	first      arrival // first data message
	last       arrival
	done       chan struct{}
	batchPause time.Duration
}

type arrival struct {
	at  time.Time
	seq uint32
	ok  bool
}

// newListener listens on 127.0.0.1. A non-zero batchPause makes it sleep that long after
// a read that did not fill its batch, so datagrams accumulate in the (large) socket
// buffer and one wake-up takes many: for unpaced runs, where arrival times do not matter.
func newListener(batchPause time.Duration) *listener {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fatal(err)
	}
	conn.SetReadBuffer(16 << 20) // capped by net.core.rmem_max
	if rc, err := conn.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { // as root, past rmem_max
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 32<<20)
		})
	}
	l := &listener{conn: conn, done: make(chan struct{}), batchPause: batchPause}
	go l.loop()
	return l
}

func (l *listener) addr() string { return l.conn.LocalAddr().String() }

// loop receives with recvmmsg, up to 64 datagrams a system call, so that the listener
// (which shares this machine's two cores with the replay it measures) costs as little
// CPU as a collector on another host would cost us: nothing.
func (l *listener) loop() {
	defer close(l.done)
	const batch = 64
	bufs := make([][2048]byte, batch)
	iovs := make([]syscall.Iovec, batch)
	hdrs := make([]mmsghdr, batch)
	for i := range hdrs {
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(len(bufs[i]))
		hdrs[i].hdr.Iov = &iovs[i]
		hdrs[i].hdr.Iovlen = 1
	}
	rc, err := l.conn.SyscallConn()
	if err != nil {
		fatal(err)
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), batch, syscall.MSG_DONTWAIT, 0, 0)
			if e == syscall.EAGAIN {
				return false // wait for the poller
			}
			if e != 0 {
				rerr = e
			}
			n = int(r)
			return true
		})
		if err != nil || rerr != nil {
			return // closed
		}
		now := time.Now()
		l.datagrams.Add(uint64(n))
		for i := range n {
			msg := bufs[i][:hdrs[i].len]
			if len(msg) < ipfix.HeaderLen+ipfix.SetHeaderLen {
				continue
			}
			if binary.BigEndian.Uint16(msg[16:]) < 256 {
				continue // templates or type information
			}
			seq := binary.BigEndian.Uint32(msg[8:])
			l.mu.Lock()
			if !l.first.ok {
				l.first = arrival{now, seq, true}
			}
			l.last = arrival{now, seq, true}
			l.mu.Unlock()
		}
		if n < batch && l.batchPause > 0 {
			time.Sleep(l.batchPause)
		}
	}
}

// mmsghdr is struct mmsghdr of recvmmsg(2) on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

func (l *listener) close() {
	l.conn.Close()
	<-l.done
}

// rate is the achieved records per second between the first and the last data message.
func (l *listener) rate() (float64, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.last.at.Sub(l.first.at)
	if !l.first.ok || d <= 0 {
		return 0, 0
	}
	return float64(l.last.seq-l.first.seq) / d.Seconds(), d
}

// --- measurements -------------------------------------------------------------------

type runResult struct {
	wall       time.Duration
	user, sys  time.Duration
	maxRSSKiB  int64
	stdout     string
	timeVerbos string
}

// timed runs cmd under /usr/bin/time -v when it is installed (peak RSS and CPU from
// it), else takes the same numbers from the child's rusage.
func timed(name string, args []string, stdout io.Writer) runResult {
	useTime := false
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		useTime = true
	}
	var cmd *exec.Cmd
	var tv bytes.Buffer
	if useTime {
		cmd = exec.Command("/usr/bin/time", append([]string{"-v", name}, args...)...)
		cmd.Stderr = &tv
	} else {
		cmd = exec.Command(name, args...)
		cmd.Stderr = io.Discard
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		fatal(fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tv.String()))
	}
	res := runResult{wall: wall, user: cmd.ProcessState.UserTime(), sys: cmd.ProcessState.SystemTime(), stdout: out.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSSKiB = ru.Maxrss // of the largest child: the measured command
	}
	if useTime {
		res.timeVerbos = tv.String()
		for l := range strings.Lines(tv.String()) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Maximum resident set size (kbytes):"); ok {
				res.maxRSSKiB, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	return res
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

type summary struct {
	Records   uint64 `json:"records"`
	Exported  uint64 `json:"exported"`
	Datagrams uint64 `json:"datagrams"`
}

func (h *harness) replay(file string, eps float64, l *listener) (runResult, summary) {
	res := timed(h.bin, []string{"replay", "--collector", l.addr(), "--eps", strconv.FormatFloat(eps, 'f', -1, 64), file}, nil)
	var s summary
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.stdout)), &s); err != nil {
		fatal(fmt.Errorf("replay summary %q: %w", res.stdout, err))
	}
	return res, s
}

func (h *harness) gunzip(file string) runResult {
	return timed("sh", []string{"-c", "gzip -dc \"$0\" > /dev/null", file}, nil)
}

// endToEnd: unpaced replay against gzip -dc, runs interleaved.
func (h *harness) endToEnd(file string, records int) {
	fmt.Fprintln(os.Stderr, "bench: end to end, unpaced replay vs gzip -dc")
	var gz, rp, cpu []time.Duration
	var lost uint64
	for range h.runs {
		gz = append(gz, h.gunzip(file).wall)
		l := newListener(0)
		res, s := h.replay(file, 0, l)
		time.Sleep(50 * time.Millisecond) // let the listener drain
		l.close()
		if s.Exported != uint64(records) {
			fatal(fmt.Errorf("replay exported %d of %d records", s.Exported, records))
		}
		if got := l.datagrams.Load(); got < s.Datagrams {
			lost += s.Datagrams - got
		}
		rp = append(rp, res.wall)
		cpu = append(cpu, res.user+res.sys)
	}
	g, r := median(gz), median(rp)
	ratio := r.Seconds() / g.Seconds()
	v := "FAIL"
	switch {
	case ratio <= 1.5:
		v = "PASS"
	case ratio <= 2:
		v = "FAIL (<=2: within the hard limit)"
	}
	h.add("unpaced replay of 1M records <= 1.5x gzip -dc (never > 2x)",
		fmt.Sprintf("replay %.3fs, gzip -dc %.3fs (medians of %d)", r.Seconds(), g.Seconds(), h.runs),
		fmt.Sprintf("%.2fx", ratio), v)
	h.add("unpaced throughput (highest EPS one instance holds here)",
		fmt.Sprintf("%.0f records/s, CPU %.2fs user+sys", float64(records)/r.Seconds(), median(cpu).Seconds()),
		fmt.Sprintf("%.2f µs CPU/record", median(cpu).Seconds()/float64(records)*1e6), "-")
	if lost > 0 {
		h.add("datagrams lost by the loopback listener (unpaced)", fmt.Sprint(lost), "receive buffer overrun", "-")
	}
}

// discard is a Sender that drops datagrams: the hot path without the socket.
type discard struct{}

func (discard) Send(context.Context, []byte) error { return nil }

// allocs runs the object through the real pipeline in this process, twice (the first
// warms up: templates, buffers, the read-ahead pool) and counts the second's mallocs.
func (h *harness) allocs(file string) {
	exp, _ := exporter.New(discard{}, nil, exporter.Options{})
	fw := forwarder.New(nil, exp, forwarder.Options{Logger: slog.New(slog.DiscardHandler)})
	var records uint64
	var before, after runtime.MemStats
	for i := range 2 {
		rc, _, err := objectreader.OpenFile(file)
		if err != nil {
			fatal(err)
		}
		if i == 1 {
			runtime.ReadMemStats(&before)
		}
		res, err := fw.Forward(context.Background(), rc, file, forwarder.Job{})
		if i == 1 {
			runtime.ReadMemStats(&after)
		}
		rc.Close()
		if err != nil {
			fatal(err)
		}
		records = res.Counts.Exported
	}
	per := float64(after.Mallocs-before.Mallocs) / float64(records)
	h.add("hot path allocations per record (steady state)",
		fmt.Sprintf("%d allocations for %d records (one object)", after.Mallocs-before.Mallocs, records),
		fmt.Sprintf("%.6f allocs/record", per), verdict(per < 0.001))
}

func (h *harness) memory(file string, records int) {
	fmt.Fprintln(os.Stderr, "bench: peak RSS, unpaced replay of the large object")
	st, _ := os.Stat(file)
	l := newListener(0)
	res, s := h.replay(file, 0, l)
	l.close()
	g := h.gunzip(file)
	mib := float64(res.maxRSSKiB) / 1024
	h.add(fmt.Sprintf("peak RSS < 64 MiB, %.0f MB .log.gz (%d records)", float64(st.Size())/1e6, records),
		fmt.Sprintf("%.1f MiB (exported %d in %.2fs; gzip -dc %.2fs)", mib, s.Exported, res.wall.Seconds(), g.wall.Seconds()),
		fmt.Sprintf("%.2fx gzip -dc", res.wall.Seconds()/g.wall.Seconds()), verdict(mib < 64))
}

// coldStart execs bootstrap as the Lambda runtime would, against a fake runtime API
// whose /invocation/next blocks, and times the first request to it.
func (h *harness) coldStart() {
	fmt.Fprintln(os.Stderr, "bench: cold start")
	next := make(chan time.Time, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/2018-06-01/runtime/invocation/next" {
			select {
			case next <- time.Now():
			default:
			}
			<-r.Context().Done() // block, as the runtime does between events
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	home := filepath.Join(h.dir, "home")
	os.MkdirAll(home, 0o755)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME=vpcflow-ipfix", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=example",
		"AWS_EC2_METADATA_DISABLED=true", "COLLECTOR_HOST=127.0.0.1",
	}
	var toNext, toReady []time.Duration
	const n = 15
	for range n {
		cmd := exec.Command(h.bin)
		cmd.Env = env
		stdout, _ := cmd.StdoutPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			fatal(err)
		}
		ready := make(chan time.Time, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"msg":"ready"`) || strings.Contains(sc.Text(), `"message":"ready"`) {
					ready <- time.Now()
				}
			}
		}()
		select {
		case t := <-next:
			toNext = append(toNext, t.Sub(start))
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			fatal(fmt.Errorf("bootstrap never asked for an event"))
		}
		select {
		case t := <-ready:
			toReady = append(toReady, t.Sub(start))
		case <-time.After(time.Second):
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	// The floor: exec of a process that does nothing (the harness itself, at once).
	var floor []time.Duration
	for range n {
		start := time.Now()
		exec.Command(h.self, "paced-replay", "-noop").Run()
		floor = append(floor, time.Since(start))
	}
	m := median(toNext)
	slices.Sort(toNext)
	readyText := "no ready line"
	if len(toReady) > 0 {
		readyText = fmt.Sprintf("ready log line %.1f ms", median(toReady).Seconds()*1e3)
	}
	h.add("cold start < 50 ms (exec to first /invocation/next)",
		fmt.Sprintf("median %.1f ms, max %.1f ms of %d; %s; exec floor %.1f ms", m.Seconds()*1e3, toNext[len(toNext)-1].Seconds()*1e3, n, readyText, median(floor).Seconds()*1e3),
		fmt.Sprintf("%.1f ms", m.Seconds()*1e3), verdict(m < 50*time.Millisecond))
}

// encodeComparison runs the side-by-side benchmarks of bench/goipfixcmp, a module of
// its own so that vmware/go-ipfix never enters the product's go.mod, and reports
// go-ipfix's time per record as a multiple of ours: in memory (our exporter with a
// discarding sender against go-ipfix's SendDataRecords packing without its write) and
// through a UDP socket to a loopback listener (both exporters pay the same system
// calls). Each for go-ipfix's records built as its tests build them (new elements per
// flow) and for its cheaper path (elements reused, two allocations a record). If the
// nested module does not build (its modules not downloaded, say), the rows say NOT RUN
// and why; the harness goes on.
func (h *harness) encodeComparison() {
	const target = "encoding vs vmware/go-ipfix buffered exporter"
	fmt.Fprintln(os.Stderr, "bench: encoding vs vmware/go-ipfix (bench/goipfixcmp)")
	notRun := func(why string) { h.add(target, "not measured: "+why, "n/a", "NOT RUN") }
	dir := filepath.Join("bench", "goipfixcmp")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		notRun(fmt.Sprintf("no nested module (%v); run from the repository root", err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run=^$", "-bench=.", "-benchmem", fmt.Sprintf("-count=%d", h.runs))
	cmd.Dir = dir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		why := "no output"
		for l := range strings.Lines(stderr.String() + out.String()) {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "go: downloading") && !strings.HasPrefix(l, "#") {
				why = l // the first line that says what went wrong
				break
			}
		}
		if len(why) > 200 {
			why = why[:200] + "..."
		}
		notRun(fmt.Sprintf("go test in %s: %v: %s", dir, err, why))
		return
	}
	nsPer, allocsPer := parseBench(out.String())
	for _, name := range []string{"Ours", "OursUDP", "GoIPFIX", "GoIPFIXReuse", "GoIPFIXMem", "GoIPFIXReuseMem"} {
		if len(nsPer[name]) == 0 || len(allocsPer[name]) == 0 {
			notRun(fmt.Sprintf("no ns/record or allocs/record for Benchmark%s in the output of go test", name))
			return
		}
	}
	med := func(m map[string][]float64, name string) float64 {
		s := slices.Clone(m[name])
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, v := range []struct{ how, ours, theirs, reuse string }{
		{"in memory", "Ours", "GoIPFIXMem", "GoIPFIXReuseMem"},
		{"UDP to loopback", "OursUDP", "GoIPFIX", "GoIPFIXReuse"},
	} {
		o, t, r := med(nsPer, v.ours), med(nsPer, v.theirs), med(nsPer, v.reuse)
		h.add(fmt.Sprintf("%s, %s (ours must be faster)", target, v.how),
			fmt.Sprintf("ours %.0f ns/record (%.0f allocs); go-ipfix %.0f ns (%.0f allocs), reusing elements %.0f ns (%.0f allocs); medians of %d",
				o, med(allocsPer, v.ours), t, med(allocsPer, v.theirs), r, med(allocsPer, v.reuse), len(nsPer[v.ours])),
			fmt.Sprintf("go-ipfix %.1fx ours (reusing %.1fx)", t/o, r/o), verdict(o < t && o < r))
	}
}

// parseBench collects the ns/record and allocs/record metrics of `go test -bench`
// output by benchmark name (without "Benchmark" and the -GOMAXPROCS suffix).
func parseBench(out string) (nsPer, allocsPer map[string][]float64) {
	nsPer, allocsPer = map[string][]float64{}, map[string][]float64{}
	for l := range strings.Lines(out) {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i >= 0 {
			name = name[:i]
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/record":
				nsPer[name] = append(nsPer[name], v)
			case "allocs/record":
				allocsPer[name] = append(allocsPer[name], v)
			}
		}
	}
	return nsPer, allocsPer
}

// pacing replays about 10 s of records at eps and measures the achieved rate by
// arrival time. maxLag 0 runs bootstrap itself (lambda/app.go sets no MaxLag); a
// non-zero maxLag runs the same pipeline from this harness with pacer.Options.MaxLag.
func (h *harness) pacing(file string, eps float64, maxLag time.Duration) {
	fmt.Fprintf(os.Stderr, "bench: pacing at %.0f EPS, MaxLag %v\n", eps, maxLag)
	l := newListener(0)
	var res runResult
	if maxLag == 0 {
		res, _ = h.replay(file, eps, l)
	} else {
		res = timed(h.self, []string{"paced-replay", "-collector", l.addr(), "-eps", fmt.Sprint(eps), "-max-lag", maxLag.String(), file}, nil)
	}
	time.Sleep(20 * time.Millisecond)
	l.close()
	rate, over := l.rate()
	errPct := (rate - eps) / eps * 100
	cpuPerSec := (res.user + res.sys).Seconds() / res.wall.Seconds()
	how := "bootstrap replay (MaxLag 5ms, as lambda/app.go)"
	if maxLag != 0 {
		how = fmt.Sprintf("same pipeline, MaxLag %v", maxLag)
	}
	h.add(fmt.Sprintf("pacing %.0f EPS within 1%%: %s", eps, how),
		fmt.Sprintf("%.0f records/s over %.1fs; CPU %.3f s per paced second", rate, over.Seconds(), cpuPerSec),
		fmt.Sprintf("%+.2f%%", errPct), verdict(math.Abs(errPct) <= 1))
}

// pacedReplay is `bootstrap replay` rebuilt from the packages, as lambda/app.go wires
// them, with pacer.Options.MaxLag set. It runs in a child process so that its CPU time
// is its own.
func pacedReplay(args []string) int {
	fs := flag.NewFlagSet("paced-replay", flag.ExitOnError)
	collector := fs.String("collector", "", "HOST:PORT")
	eps := fs.Float64("eps", 0, "records per second")
	maxLag := fs.Duration("max-lag", 0, "pacer.Options.MaxLag")
	noop := fs.Bool("noop", false, "exit at once (exec floor)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(args)
	if *noop {
		return 0
	}
	if *collector == "" {
		// A sink of our own, for profiling: go run ./bench paced-replay -cpuprofile F FILE
		l := newListener(0)
		defer l.close()
		*collector = l.addr()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	host, portText, _ := net.SplitHostPort(*collector)
	port, _ := strconv.Atoi(portText)
	sender, err := udpsender.New(udpsender.Options{Host: host, Port: port, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sender.Close()
	burst := (exporter.DefaultMaxMessageSize - ipfix.HeaderLen - ipfix.SetHeaderLen) / 46
	p := pacer.New(pacer.Options{EPS: *eps, Burst: burst, MaxLag: *maxLag})
	exp, err := exporter.New(sender, p, exporter.Options{DomainID: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fw := forwarder.New(nil, exp, forwarder.Options{PreferPacketAddresses: true, Logger: slog.New(slog.DiscardHandler)})
	p.Restart()
	for _, file := range fs.Args() {
		rc, _, err := objectreader.OpenFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, err = fw.Forward(context.Background(), rc, file, forwarder.Job{})
		rc.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
