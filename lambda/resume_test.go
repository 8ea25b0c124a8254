package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/sqsfake"
)

// TestHandlerResumesThroughTheQueue runs the handler as Lambda would, with a real-time
// deadline, against in-process S3 and SQS servers: an object too large for one
// invocation continues in messages on the queue and every record arrives once.
func TestHandlerResumesThroughTheQueue(t *testing.T) {
	const records = 900
	client, put := s3Server(t)
	var text bytes.Buffer
	text.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
	for i := 0; i < records; i++ {
		fmt.Fprintf(&text, "2 123456789012 eni-0123456789abcdef0 10.0.%d.%d 10.1.0.1 %d 443 6 1 100 1796313900 1796313960 ACCEPT OK\n", i/256, i%256, 1024+i)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(text.Bytes())
	zw.Close()
	key := "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/big.log.gz"
	put(key, gz.Bytes())

	queue := sqsfake.New("flowlogs")
	defer queue.Close()
	capture := goflowcheck.Listen(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	a, logs, metricsOut := testApp(t, client, fmt.Sprint(capture.Addr().Port()),
		"EPS_LIMIT", "600", "MAX_CONCURRENCY", "1", "DEADLINE_MARGIN_SECONDS", "1",
		"QUEUE_URL", queue.QueueURL("flowlogs"), "SQS_ENDPOINT_URL", queue.URL())

	body := s3Body(key, gz.Len())
	invocations := 0
	for body != "" {
		invocations++
		if invocations > 30 {
			t.Fatalf("object not finished after 30 invocations\n%s", logs.String())
		}
		// A 1.5 s function timeout with a 1 s margin: about 300 records an invocation.
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		resp, err := a.handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint("m", invocations), Body: body}}})
		cancel()
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invocation %d: %v %+v\n%s", invocations, err, resp, logs.String())
		}
		body = ""
		if msgs := queue.Take(queue.QueueURL("flowlogs")); len(msgs) == 1 {
			body = msgs[0].Body
		} else if len(msgs) > 1 {
			t.Fatalf("%d continuation messages for one object", len(msgs))
		}
	}
	if invocations < 3 {
		t.Fatalf("finished in %d invocations; the test wants at least 3", invocations)
	}
	// The listener goroutine may still be reading the last datagrams: decode until all
	// records are in or a few seconds have passed.
	var d *goflowcheck.Decoder
	for deadline := time.Now().Add(5 * time.Second); ; {
		d = goflowcheck.NewDecoder()
		for _, b := range capture.Datagrams(0, 0) {
			if err := d.Decode(b); err != nil {
				t.Fatal(err)
			}
		}
		if len(d.Flows) >= records || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(d.Flows) != records {
		t.Fatalf("collector got %d flows, want %d, in %d invocations", len(d.Flows), records, invocations)
	}
	for i, f := range d.Flows {
		if f.SrcPort != uint16(1024+i) {
			t.Fatalf("flow %d: source port %d, want %d (lost or repeated record)", i, f.SrcPort, 1024+i)
		}
	}
	if !bytes.Contains(metricsOut.Bytes(), []byte(`"ResumedObjects":1`)) || !bytes.Contains(metricsOut.Bytes(), []byte(fmt.Sprintf(`"PartsPerObject":[%d]`, invocations))) {
		t.Errorf("metrics lines do not show the resume:\n%s", metricsOut.String())
	}
}
