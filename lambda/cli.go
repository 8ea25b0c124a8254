package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/metrics"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
)

const usage = `usage:
  bootstrap replay --collector HOST:PORT [--eps N] [flags] PATH...
      PATH: a .log.gz or .log file, a directory (walked, filtered by --pattern), or s3://bucket/key
  bootstrap collect --listen HOST:PORT [--count N] [--idle DURATION]
  bootstrap invoke [--timeout DURATION] EVENT.json   (configuration from the environment, as in Lambda)
Run "bootstrap COMMAND -h" for the flags of a command.`

// runCLI runs one command and returns the exit status.
func runCLI(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "replay":
		err = runReplay(ctx, args[1:], stdout, stderr)
	case "collect":
		err = runCollect(ctx, args[1:], stdout, stderr)
	case "invoke":
		err = runInvoke(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s\n", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func cliLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
}

// dropTime keeps CLI logs short; Lambda logs keep their timestamps.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := defaultConfig()
	cfg.DomainPerInstance = false // one process, one domain: keep it as given
	collector := fs.String("collector", "", "collector HOST:PORT (port defaults to 2055)")
	fs.Float64Var(&cfg.EPSLimit, "eps", cfg.EPSLimit, "flow records per second; 0 = unlimited")
	pattern := fs.String("pattern", cfg.FilePattern.String(), "regex for files found in directories")
	fs.StringVar(&cfg.S3EndpointURL, "s3-endpoint", "", "S3-compatible endpoint URL for s3:// paths (path-style)")
	domain := fs.Uint("domain", uint(cfg.ObservationDomainID), "observation domain id")
	pen := fs.Uint("enterprise-number", 0, "your IANA private enterprise number; enables the AWS-specific elements")
	fs.IntVar(&cfg.MaxDatagramBytes, "max-datagram", cfg.MaxDatagramBytes, "largest IPFIX message in bytes")
	fs.BoolVar(&cfg.PreferPacketAddresses, "prefer-pkt-addr", cfg.PreferPacketAddresses, "use pkt-srcaddr/pkt-dstaddr when present")
	refresh := fs.Duration("template-refresh", cfg.TemplateRefresh, "template refresh interval")
	verbose := fs.Bool("v", false, "debug logs")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *collector == "" || fs.NArg() == 0 {
		return usageError{"replay needs --collector HOST:PORT and at least one PATH"}
	}
	host, port, err := splitHostPort(*collector)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg.CollectorHost, cfg.CollectorPort = host, port
	if cfg.FilePattern, err = regexp.Compile(*pattern); err != nil {
		return usageError{"--pattern: " + err.Error()}
	}
	if cfg.EPSLimit < 0 {
		return usageError{"--eps must be 0 (unlimited) or more"}
	}
	if *pen > 1<<32-1 || *domain > 1<<32-1 {
		return usageError{"--enterprise-number and --domain are 32-bit"}
	}
	cfg.ObservationDomainID, cfg.EnterpriseNumber = uint32(*domain), uint32(*pen)
	cfg.TemplateRefresh = *refresh
	cfg.MaxConcurrency = 1
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := cliLogger(stderr, level)
	a, err := newApp(ctx, cfg, log, io.Discard, "replay", nil)
	if err != nil {
		return err
	}
	defer a.sender.Close()
	a.pacer.Restart()

	var counts metrics.Counts
	var failed []string
	forward := func(name string, open func() (io.ReadCloser, error)) {
		rc, err := open()
		var res forwarder.Result
		if err == nil {
			res, err = a.forwarder.Forward(ctx, rc, name, forwarder.Job{})
			rc.Close()
		}
		counts.Add(res.Counts)
		if err != nil {
			counts.FailedObjects++
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			return
		}
		counts.Objects++
	}
	for _, path := range fs.Args() {
		if bucket, key, ok := strings.Cut(strings.TrimPrefix(path, "s3://"), "/"); strings.HasPrefix(path, "s3://") {
			if !ok || bucket == "" || key == "" {
				counts.FailedObjects++
				failed = append(failed, path+": want s3://bucket/key")
				continue
			}
			res, err := a.forwarder.ForwardS3(ctx, bucket, key, forwarder.Job{})
			counts.Add(res.Counts)
			if err != nil {
				counts.FailedObjects++
				failed = append(failed, err.Error())
			} else {
				counts.Objects++
			}
			continue
		}
		files, err := expand(path, cfg.FilePattern)
		if err != nil {
			counts.FailedObjects++
			failed = append(failed, err.Error())
			continue
		}
		if len(files) == 0 {
			log.Warn("no files match the pattern", "path", path, "pattern", cfg.FilePattern.String())
		}
		for _, file := range files {
			forward(file, func() (io.ReadCloser, error) {
				rc, _, err := objectreader.OpenFile(file)
				return rc, err
			})
		}
	}
	counts.SendErrors = a.sender.Stats().SendErrors
	line, _ := json.Marshal(counts)
	fmt.Fprintln(stdout, string(line))
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(stderr, "failed:", f)
		}
		return fmt.Errorf("%d of %d objects failed", len(failed), counts.Objects+uint64(len(failed)))
	}
	return nil
}

// expand returns path itself for a file, or the files under a directory whose names
// match pattern, in lexical order.
func expand(path string, pattern *regexp.Regexp) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && pattern.MatchString(filepath.ToSlash(p)) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

func splitHostPort(s string) (string, int, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		// No port: the JSA default.
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(s, "[]"), 2055, nil
		}
		return "", 0, fmt.Errorf("%q: %v", s, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 1 to 65535", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: missing host", s)
	}
	return host, port, nil
}

func runInvoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 5*time.Minute, "the function timeout to simulate (the deadline)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"invoke needs one EVENT.json (an SQS event)"}
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return fmt.Errorf("%s: not an SQS event: %w", fs.Arg(0), err)
	}
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	log := cliLogger(stderr, cfg.LogLevel)
	a, err := newApp(ctx, cfg, log, stderr, "invoke", nil)
	if err != nil {
		return err
	}
	defer a.sender.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := a.handle(ctx, ev)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(resp)
	fmt.Fprintln(stdout, string(out))
	return nil
}

func runCollect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2055", "UDP HOST:PORT to listen on")
	count := fs.Int("count", 0, "exit after this many flows (0: run until interrupted)")
	idle := fs.Duration("idle", 0, "exit after this long without a datagram (0: never)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	addr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return usageError{"--listen: " + err.Error()}
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(stderr, "{\"listening\":%q}\n", conn.LocalAddr().String())
	c := newCollector(stdout, stderr)
	defer c.summary()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	buf := make([]byte, 65535)
	for *count == 0 || c.flows < *count {
		if *idle > 0 {
			conn.SetReadDeadline(time.Now().Add(*idle))
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.datagram(from, buf[:n])
	}
	return nil
}

// collector decodes datagrams per exporter (templates belong to a transport session)
// and checks that sequence numbers run without gaps per exporter and domain.
type collector struct {
	out, errw io.Writer
	decoders  map[netip.AddrPort]*ipfix.Decoder
	next      map[seqKey]uint32
	flows     int
	datagrams int
	gaps      int
	errors    int
}

type seqKey struct {
	exporter netip.AddrPort
	domain   uint32
}

func newCollector(out, errw io.Writer) *collector {
	return &collector{out: out, errw: errw, decoders: map[netip.AddrPort]*ipfix.Decoder{}, next: map[seqKey]uint32{}}
}

func (c *collector) summary() {
	line, _ := json.Marshal(map[string]int{"datagrams": c.datagrams, "flows": c.flows, "sequence_gaps": c.gaps, "decode_errors": c.errors})
	fmt.Fprintln(c.errw, string(line))
}

func (c *collector) datagram(from netip.AddrPort, msg []byte) {
	c.datagrams++
	d := c.decoders[from]
	if d == nil {
		d = ipfix.NewDecoder()
		c.decoders[from] = d
	}
	records := 0
	enc := json.NewEncoder(c.out)
	h, _, err := d.Decode(msg, func(r *ipfix.DataRecord) {
		records++
		if r.Options {
			return
		}
		c.flows++
		enc.Encode(flowJSON(from, r))
	})
	if err != nil {
		c.errors++
		fmt.Fprintf(c.errw, "{\"decode_error\":%q,\"exporter\":%q}\n", err.Error(), from.String())
		return
	}
	key := seqKey{from, h.Domain}
	if want, ok := c.next[key]; ok && want != h.Sequence {
		c.gaps++
		fmt.Fprintf(c.errw, "{\"sequence_gap\":true,\"exporter\":%q,\"domain\":%d,\"want\":%d,\"got\":%d}\n", from.String(), h.Domain, want, h.Sequence)
	}
	c.next[key] = h.Sequence + uint32(records)
}

// flowJSON names the fields a reader of the debug output needs.
func flowJSON(from netip.AddrPort, r *ipfix.DataRecord) map[string]any {
	m := map[string]any{
		"exporter": from.String(), "domain": r.Header.Domain, "sequence": r.Header.Sequence, "template": r.TemplateID,
	}
	aws := map[string]any{}
	for i, f := range r.Fields {
		v := r.Values[i]
		if f.Enterprise != 0 {
			name := fmt.Sprintf("%d/%d", f.Enterprise, f.ID)
			for _, el := range ipfix.EnterpriseElements {
				if el.ID == f.ID {
					name = el.Name
				}
			}
			if f.Length == ipfix.VariableLength {
				aws[name] = string(v)
			} else {
				aws[name] = uintOf(v)
			}
			continue
		}
		switch f.ID {
		case ipfix.IESourceIPv4Address, ipfix.IESourceIPv6Address:
			a, _ := netip.AddrFromSlice(v)
			m["src"] = a.String()
		case ipfix.IEDestinationIPv4Address, ipfix.IEDestinationIPv6Address:
			a, _ := netip.AddrFromSlice(v)
			m["dst"] = a.String()
		case ipfix.IESourceTransportPort:
			m["src_port"] = uintOf(v)
		case ipfix.IEDestinationTransportPort:
			m["dst_port"] = uintOf(v)
		case ipfix.IEProtocolIdentifier:
			m["protocol"] = uintOf(v)
		case ipfix.IEPacketDeltaCount:
			m["packets"] = uintOf(v)
		case ipfix.IEOctetDeltaCount:
			m["bytes"] = uintOf(v)
		case ipfix.IEFlowStartMilliseconds:
			m["start"] = time.UnixMilli(int64(uintOf(v))).UTC().Format(time.RFC3339Nano)
		case ipfix.IEFlowEndMilliseconds:
			m["end"] = time.UnixMilli(int64(uintOf(v))).UTC().Format(time.RFC3339Nano)
		case ipfix.IEForwardingStatus:
			m["forwarding_status"] = uintOf(v)
		case ipfix.IETCPControlBits:
			m["tcp_flags"] = uintOf(v)
		case ipfix.IEFlowDirection:
			m["direction"] = map[uint64]string{0: "ingress", 1: "egress"}[uintOf(v)]
		case ipfix.IEInterfaceName:
			m["interface"] = string(v)
		default:
			m[fmt.Sprintf("ie%d", f.ID)] = fmt.Sprintf("%x", v)
		}
	}
	if len(aws) > 0 {
		m["aws"] = aws
	}
	return m
}

func uintOf(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
