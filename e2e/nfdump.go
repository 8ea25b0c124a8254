package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// 9. nfdump, a second collector nobody here wrote (and the one the design notes name:
// it ignores flowStartSeconds/flowEndSeconds, so the times must arrive as milliseconds).
// bootstrap replay sends IPv4 and IPv6 records, paced, to nfcapd on 127.0.0.1; nfdump
// reads the capture file back, and every record must match its source line: addresses,
// ports, protocol, packets, bytes, first and last; nfcapd counts no sequence errors.
func scenarioNfdump(ctx context.Context, h *Harness, t *T) {
	dir := filepath.Join(h.work, t.name)
	capDir := filepath.Join(dir, "nfcapd")
	if err := os.MkdirAll(capDir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	port, err := freePort("udp")
	if err != nil {
		t.Fatalf("port: %v", err)
	}
	logPath := filepath.Join(dir, "nfcapd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer logFile.Close()
	// One capture file for the whole run (-t 3600); a large socket buffer (-B); bound to
	// loopback only (-b).
	capd := exec.Command(h.tools.NFCapd, "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", capDir, "-t", "3600", "-B", "8388608")
	capd.Stdout, capd.Stderr = logFile, logFile
	capd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := capd.Start(); err != nil {
		t.Fatalf("nfcapd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- capd.Wait() }()
	stop := func() {
		if capd.ProcessState != nil {
			return
		}
		syscall.Kill(capd.Process.Pid, syscall.SIGTERM) // nfcapd writes its file on SIGTERM
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-capd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	defer stop()
	if !waitFor(ctx, 5*time.Second, func() bool { return fileContains(logPath, "Startup") }) {
		t.Fatalf("nfcapd did not start: %s", readFile(logPath))
	}

	o := Generate(GenSpec{ID: 901, Valid: 5000, IPv6Every: 7})
	file := filepath.Join(dir, "flows.log.gz")
	if err := os.WriteFile(file, o.Gz, 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(rctx, h.tools.Bootstrap, "replay", "--collector", fmt.Sprintf("127.0.0.1:%d", port), "--eps", "20000", file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bootstrap replay: %v\n%s", err, stderr.String())
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &sum); err != nil || num(sum, "exported") != uint64(len(o.Want)) {
		t.Fatalf("replay summary %q: %v", out, err)
	}
	time.Sleep(200 * time.Millisecond) // let nfcapd read the last datagrams
	stop()

	// nfcapd's own summary: every flow, no sequence errors, no bad packets.
	logText := readFile(logPath)
	m := regexp.MustCompile(`Flows: (\d+).*Sequence Errors: (\d+), Bad Packets: (\d+)`).FindStringSubmatch(logText)
	if m == nil {
		t.Fatalf("no nfcapd summary in its log:\n%s", logText)
	}
	if m[1] != strconv.Itoa(len(o.Want)) || m[2] != "0" || m[3] != "0" {
		t.Errorf("nfcapd: flows %s (want %d), sequence errors %s, bad packets %s", m[1], len(o.Want), m[2], m[3])
	}

	dump := exec.CommandContext(rctx, h.tools.NFDump, "-R", capDir, "-o", "json")
	dump.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC"} // nfdump prints local time
	raw, err := dump.Output()
	if err != nil {
		t.Fatalf("nfdump: %v", err)
	}
	var recs []struct {
		Type     string `json:"type"`
		First    string `json:"first"`
		Last     string `json:"last"`
		Packets  uint64 `json:"in_packets"`
		Bytes    uint64 `json:"in_bytes"`
		Proto    uint64 `json:"proto"`
		SrcPort  uint64 `json:"src_port"`
		DstPort  uint64 `json:"dst_port"`
		Src4     string `json:"src4_addr"`
		Dst4     string `json:"dst4_addr"`
		Src6     string `json:"src6_addr"`
		Dst6     string `json:"dst6_addr"`
		Received string `json:"received"`
	}
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatalf("nfdump JSON: %v", err)
	}
	// nfdump keeps what nfdump understands: compare those fields, as keys.
	key := func(src, dst string, sp, dp, proto, pk, b, startMs, endMs uint64) string {
		return fmt.Sprintf("%s:%d>%s:%d p%d pk%d b%d %d-%d", src, sp, dst, dp, proto, pk, b, startMs, endMs)
	}
	want := map[string]int{}
	for _, w := range o.Want {
		want[key(w.Src, w.Dst, w.SrcPort, w.DstPort, w.Proto, w.Packets, w.Bytes, w.StartNs/1e6, w.EndNs/1e6)]++
	}
	const layout = "2006-01-02T15:04:05.000"
	got := 0
	for _, r := range recs {
		if r.Type != "FLOW" {
			continue
		}
		got++
		first, err1 := time.Parse(layout, r.First)
		last, err2 := time.Parse(layout, r.Last)
		if err1 != nil || err2 != nil {
			t.Errorf("nfdump times %q %q: %v %v", r.First, r.Last, err1, err2)
			continue
		}
		src, dst := r.Src4, r.Dst4
		if r.Src6 != "" {
			src, dst = r.Src6, r.Dst6
		}
		k := key(src, dst, r.SrcPort, r.DstPort, r.Proto, r.Packets, r.Bytes, uint64(first.UnixMilli()), uint64(last.UnixMilli()))
		if want[k] == 0 {
			t.Errorf("nfdump has a flow that is no source line (or read a field wrong): %s", k)
			continue
		}
		want[k]--
	}
	missing := 0
	for _, n := range want {
		missing += n
	}
	if got != len(o.Want) || missing != 0 {
		t.Errorf("nfdump read %d flows, want %d; %d source lines without their flow", got, len(o.Want), missing)
	}
	t.Logf("nfdump: %d flows, each matching its source line; nfcapd: %s flows, %s sequence errors", got, m[1], m[2])
}

func waitFor(ctx context.Context, limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ok() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ok()
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func fileContains(path, s string) bool { return strings.Contains(readFile(path), s) }
