// Command e2e runs the product end to end on real local components, all on 127.0.0.1:
// the real bootstrap under the AWS Lambda Runtime Interface Emulator, versitygw as S3,
// goflow2 as the IPFIX collector, and this harness as the SQS event source mapping.
// See README.md in this directory. Run it through run.sh, which installs the tools.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// Harness is what every scenario shares: the tools, a work directory and the S3 server.
type Harness struct {
	tools Tools
	work  string
	s3    *S3Server
	keep  bool
}

// scenario is one named case. It reports problems through t; a returned error (or a
// t.Fatalf) ends it early.
type scenario struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context, h *Harness, t *T)
}

// T collects the problems of one scenario.
type T struct {
	name  string
	fails []string
	notes []string
}

type fatal struct{}

// Errorf records a failure and goes on.
func (t *T) Errorf(format string, args ...any) {
	t.fails = append(t.fails, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the scenario.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(fatal{})
}

// Logf prints progress.
func (t *T) Logf(format string, args ...any) {
	fmt.Printf("    %s: %s\n", t.name, fmt.Sprintf(format, args...))
}

// Notef records something that is not a failure but belongs in the summary (a known
// limitation, a measured value).
func (t *T) Notef(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
	t.Logf("note: "+format, args...)
}

func main() {
	os.Exit(run())
}

func run() int {
	binDir := flag.String("bin", os.Getenv("E2E_BIN"), "directory of aws-lambda-rie, versitygw and goflow2 (else PATH)")
	bootstrap := flag.String("bootstrap", "", "the bootstrap binary, built for this machine")
	work := flag.String("work", "", "work directory (default: a new temporary directory)")
	only := flag.String("run", "", "run only the scenarios whose name matches this regexp")
	keep := flag.Bool("keep", false, "keep the work directory (logs, objects, collector output)")
	total := flag.Duration("timeout", 9*time.Minute, "bound for the whole run")
	flag.Parse()

	// Every server is stopped on every way out: normal end, failure, panic, signal.
	defer stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), *total)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping every server\n", s)
		cancel()
		stopAll()
		os.Exit(2)
	}()

	if *bootstrap == "" {
		fmt.Fprintln(os.Stderr, "e2e: -bootstrap is required")
		return 2
	}
	tools, err := findTools(*binDir, *bootstrap)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	var re *regexp.Regexp
	if *only != "" {
		if re, err = regexp.Compile(*only); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: -run:", err)
			return 2
		}
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vpcflow-ipfix-e2e-"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, _ = filepath.Abs(dir)
	h := &Harness{tools: tools, work: dir, keep: *keep}
	fmt.Printf("e2e: work directory %s\n", dir)

	start := time.Now()
	var passed, failed int
	var summary []string
	for _, sc := range scenarios() {
		if re != nil && !re.MatchString(sc.name) {
			continue
		}
		t := &T{name: sc.name}
		fmt.Printf("--- %s\n", sc.name)
		t0 := time.Now()
		h.runScenario(ctx, sc, t)
		d := time.Since(t0).Round(100 * time.Millisecond)
		if len(t.fails) == 0 {
			passed++
			fmt.Printf("ok   %s (%v)\n", sc.name, d)
			summary = append(summary, fmt.Sprintf("ok   %-22s %v", sc.name, d))
		} else {
			failed++
			fmt.Printf("FAIL %s (%v)\n", sc.name, d)
			for _, f := range t.fails {
				fmt.Printf("      - %s\n", f)
			}
			summary = append(summary, fmt.Sprintf("FAIL %-22s %v: %s", sc.name, d, strings.Join(t.fails, "; ")))
		}
		for _, n := range t.notes {
			summary = append(summary, fmt.Sprintf("     %-22s note: %s", "", n))
		}
	}
	h.s3.Stop()
	stopAll()
	if !h.keep && failed == 0 && *work == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Printf("e2e: logs and collector output kept in %s\n", dir)
	}
	fmt.Println()
	for _, s := range summary {
		fmt.Println(s)
	}
	fmt.Printf("e2e: total %v\n", time.Since(start).Round(time.Second))
	fmt.Printf("e2e: %d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}

// runScenario runs one scenario within its timeout and stops what it started.
func (h *Harness) runScenario(ctx context.Context, sc scenario, t *T) {
	ctx, cancel := context.WithTimeout(ctx, sc.timeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatal); !ok {
					t.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}
		}()
		sc.run(ctx, h, t)
	}()
	select {
	case <-done:
	case <-time.After(sc.timeout + 30*time.Second):
		// The scenario ignores its context: give up on it (its servers are stopped below).
		t.Errorf("did not finish within %v", sc.timeout+30*time.Second)
	}
	if ctx.Err() == context.DeadlineExceeded && len(t.fails) == 0 {
		t.Errorf("timed out after %v", sc.timeout)
	}
	stopScenarioProcs()
}

// stopScenarioProcs stops everything except the shared S3 server.
func stopScenarioProcs() {
	procs.Lock()
	var all []*Proc
	for p := range procs.m {
		if p.Name != "versitygw" {
			all = append(all, p)
		}
	}
	procs.Unlock()
	for _, p := range all {
		p.Stop()
	}
}
