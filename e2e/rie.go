package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// One Lambda execution environment is one aws-lambda-rie process running the real
// bootstrap: the RIE serves the Runtime API to it and the Invoke API to the harness.
// The configuration is environment variables, as in AWS.

// Lambda is one execution environment (one instance of the function).
type Lambda struct {
	Name    string
	addr    string
	proc    *Proc
	invokes atomic.Int64
}

// lambdaEnv is the environment every instance gets; scenarios add and override.
func (h *Harness) lambdaEnv(s3 *S3Server, collectorPort int) map[string]string {
	return map[string]string{
		"COLLECTOR_HOST":        "127.0.0.1",
		"COLLECTOR_PORT":        fmt.Sprint(collectorPort),
		"S3_ENDPOINT_URL":       s3.URL,
		"AWS_ACCESS_KEY_ID":     s3AccessKey,
		"AWS_SECRET_ACCESS_KEY": s3SecretKey,
		"AWS_REGION":            s3Region,
		"AWS_DEFAULT_REGION":    s3Region,
		"LOG_LEVEL":             "info",
		// Nothing from the developer's machine: no profile, no IMDS, no proxy.
		"AWS_CONFIG_FILE":                 os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":     os.DevNull,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"NO_PROXY":                        "127.0.0.1,localhost",
		"AWS_LAMBDA_FUNCTION_NAME":        "vpcflow-ipfix-e2e",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "60",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
	}
}

// startLambda starts one RIE with the bootstrap and env, both its addresses on 127.0.0.1.
func (h *Harness) startLambda(ctx context.Context, dir, name string, env map[string]string) (*Lambda, error) {
	invokePort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	var envList []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			envList = append(envList, k+"="+v)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		envList = append(envList, k+"="+env[k])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Lambda{Name: name, addr: fmt.Sprintf("127.0.0.1:%d", invokePort)}
	l.proc, err = startProc("rie-"+name, filepath.Join(dir, name+".log"), envList, syscall.SIGTERM,
		h.tools.RIE,
		"--runtime-interface-emulator-address", l.addr, // its default listens on all interfaces
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--log-level", "warn",
		h.tools.Bootstrap)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitTCP(wctx, l.addr, l.proc); err != nil {
		l.proc.Stop()
		return nil, err
	}
	return l, nil
}

// Stop stops the RIE and the bootstrap it runs.
func (l *Lambda) Stop() { l.proc.Stop() }

// Invocation is what one invoke did.
type Invocation struct {
	Lambda    string
	RequestID string
	Status    int
	Body      []byte
	// FuncError is set when the invoke was not a normal return: a function error, a
	// timeout, a crash. The event source then treats the whole batch as failed.
	FuncError string
	Response  events.SQSEventResponse
	Logs      []LogLine      // the function's log lines of this invocation
	Metrics   map[string]any // its EMF line; nil when there was none
	Start     time.Time
	Duration  time.Duration
}

// Invoke sends one event, waits for the result (bounded by ctx), then collects the
// function's logs up to its "invocation done" line.
func (l *Lambda) Invoke(ctx context.Context, event any) (*Invocation, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	n := l.invokes.Add(1)
	inv := &Invocation{Lambda: l.Name, RequestID: fmt.Sprintf("e2e-%s-%04d", l.Name, n)}
	from := l.proc.Sink.Len()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+l.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	req.Header.Set("X-Amzn-RequestId", inv.RequestID)
	inv.Start = time.Now()
	resp, err := localHTTP.Do(req)
	if err != nil {
		return inv, fmt.Errorf("invoke %s: %w", l.Name, err)
	}
	inv.Body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	inv.Duration = time.Since(inv.Start)
	inv.Status = resp.StatusCode
	if err != nil {
		return inv, fmt.Errorf("invoke %s: reading response: %w", l.Name, err)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		inv.FuncError = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(inv.Body))
	case resp.Header.Get("X-Amz-Function-Error") != "":
		inv.FuncError = resp.Header.Get("X-Amz-Function-Error") + ": " + string(inv.Body)
	default:
		var probe map[string]json.RawMessage
		if json.Unmarshal(inv.Body, &probe) != nil {
			inv.FuncError = "not a JSON object: " + string(inv.Body) // e.g. "Task timed out after 6.00 seconds"
		} else if _, ok := probe["errorMessage"]; ok {
			inv.FuncError = "function error: " + string(inv.Body)
		} else if err := json.Unmarshal(inv.Body, &inv.Response); err != nil {
			inv.FuncError = "not an SQSEventResponse: " + string(inv.Body)
		}
	}
	// The function writes its metrics, then "invocation done". A function that
	// crashed or timed out writes neither: wait a little, then take what there is.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	end, werr := l.proc.Sink.WaitFor(wctx, from, msgIs("invocation done"))
	cancel()
	lines := l.proc.Sink.Lines(from)
	if werr == nil {
		lines = lines[:end-from+1]
	}
	inv.Logs = lines
	for _, line := range lines {
		if line.JSON != nil && line.JSON["_aws"] != nil {
			inv.Metrics = line.JSON
		}
	}
	return inv, nil
}

// LogsWith returns the function's log lines of this invocation whose message is msg.
func (inv *Invocation) LogsWith(msg string) []LogLine {
	var out []LogLine
	for _, l := range inv.Logs {
		if logMsg(l) == msg {
			out = append(out, l)
		}
	}
	return out
}

// Metric reads one field of the EMF line.
func (inv *Invocation) Metric(name string) uint64 {
	if inv.Metrics == nil {
		return 0
	}
	return num(inv.Metrics, name)
}

// Failed returns the message ids the function reported in batchItemFailures.
func (inv *Invocation) Failed() []string {
	var ids []string
	for _, f := range inv.Response.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// ColdStarts counts the "ready" lines the instance has logged in its life: more than
// one means the runtime was restarted (a crash).
func (l *Lambda) ColdStarts() int {
	n := 0
	for _, line := range l.proc.Sink.Lines(0) {
		if logMsg(line) == "ready" {
			n++
		}
	}
	return n
}

// RuntimeTrouble returns the RIE's own lines that say the runtime failed.
func (l *Lambda) RuntimeTrouble() []string {
	var out []string
	for _, line := range l.proc.Sink.Lines(0) {
		t := line.Text
		if strings.Contains(t, "Task timed out") || strings.Contains(t, "Runtime exited") ||
			strings.Contains(t, "panic:") || strings.Contains(t, "Runtime.ExitError") || strings.Contains(t, "fatal error:") {
			out = append(out, t)
		}
	}
	return out
}
