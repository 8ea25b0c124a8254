package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
)

const bucket = "vpcflow-ipfix-demo"

// s3Server is an in-process S3-compatible server (gofakes3) on 127.0.0.1. Keys under
// "denied/" answer 403 AccessDenied, as a bucket policy would.
func s3Server(t *testing.T) (*s3.Client, func(key string, body []byte)) {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true))
	inner := faker.Server()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/denied/") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	client := s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(ts.URL),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	put := func(key string, body []byte) {
		_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	return client, put
}

// s3Body is an S3 ObjectCreated notification as S3 writes it: the key URL-encoded.
func s3Body(key string, size int) string {
	enc := strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
	return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-12-03T16:10:00.000Z","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":%q,"arn":"arn:aws:s3:::%s"},"object":{"key":%q,"size":%d,"eTag":"0123456789abcdef0123456789abcdef","sequencer":"0061A1B2C3D4E5F6A7"}}}]}`, bucket, bucket, enc, size)
}

// testApp builds the app as the Lambda cold start does, from environment variables:
// unpaced, domain 77, collector on 127.0.0.1; extra variables are added or override.
func testApp(t *testing.T, client *s3.Client, collector string, extra ...string) (*app, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	env := map[string]string{"COLLECTOR_HOST": "127.0.0.1", "COLLECTOR_PORT": collector, "EPS_LIMIT": "0", "DOMAIN_PER_INSTANCE": "false", "OBSERVATION_DOMAIN_ID": "77"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var logs, metricsOut bytes.Buffer
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)), &metricsOut, "test-fn", client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.sender.Close() })
	return a, &logs, &metricsOut
}

func TestHandlerPartialBatchFailure(t *testing.T) {
	client, put := s3Server(t)
	good, err := os.ReadFile("../pkg/forwarder/testdata/default.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	custom, err := os.ReadFile("../pkg/forwarder/testdata/custom.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	goodKey := "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261203T1605Z_0a1b2c3d.log.gz"
	hiveKey := "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=03/hour=16/with space_custom.log.gz"
	put(goodKey, good)
	put(hiveKey, custom)
	put("AWSLogs/corrupt.log.gz", good[:len(good)/2])
	put("denied/secret.log.gz", good)
	put("AWSLogs/empty.log.gz", nil)
	put("AWSLogs/readme.txt", []byte("not a flow log"))

	capture := goflowcheck.Listen(t)
	a, logs, metricsOut := testApp(t, client, fmt.Sprint(capture.Addr().Port()))

	testEvent := `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-03T16:00:00.000Z","Bucket":"vpcflow-ipfix-demo","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw"}`
	sns := fmt.Sprintf(`{"Type":"Notification","MessageId":"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324","TopicArn":"arn:aws:sns:us-east-1:123456789012:flowlogs","Subject":"Amazon S3 Notification","Message":%q,"Timestamp":"2026-12-03T16:10:00.000Z"}`, s3Body(hiveKey, len(custom)))
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "good", Body: s3Body(goodKey, len(good))},
		{MessageId: "test-event", Body: testEvent},
		{MessageId: "corrupt", Body: s3Body("AWSLogs/corrupt.log.gz", len(good)/2)},
		{MessageId: "missing", Body: s3Body("AWSLogs/missing.log.gz", 100)},
		{MessageId: "denied", Body: s3Body("denied/secret.log.gz", len(good))},
		{MessageId: "hive-sns", Body: sns},
		{MessageId: "empty", Body: s3Body("AWSLogs/empty.log.gz", 0)},
		{MessageId: "not-matching", Body: s3Body("AWSLogs/readme.txt", 14)},
		{MessageId: "garbage", Body: "this is not json"},
	}}
	resp, err := a.handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	sort.Strings(failed)
	if want := []string{"corrupt", "denied", "garbage", "missing"}; fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("failed messages %v, want %v\nlogs:\n%s", failed, want, logs)
	}
	for _, want := range []string{"corrupt compressed data", "object not found", "access denied", "s3:TestEvent acknowledged", "does not match the file pattern", "object skipped: empty"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not say %q:\n%s", want, logs)
		}
	}

	// 6 valid flows in default.log, 3 in custom.log; every one decoded by goflow2.
	const wantFlows = 9
	d := goflowcheck.NewDecoder()
	deadline := time.Now().Add(5 * time.Second)
	for len(d.Flows) < wantFlows && time.Now().Before(deadline) {
		d = goflowcheck.NewDecoder()
		for _, b := range capture.Datagrams(1, time.Second) {
			if err := d.Decode(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(d.Flows) != wantFlows {
		t.Fatalf("collector decoded %d flows, want %d", len(d.Flows), wantFlows)
	}
	// On the captured datagrams: templates first, sequence numbers without gaps, no
	// message over the default 1400 bytes.
	if first := d.Messages[0]; first.Templates == 0 || first.DataRecords != 0 {
		t.Errorf("first datagram is not template-only: %+v", first)
	}
	var seq uint32
	for i, m := range d.Messages {
		if m.Domain != 77 {
			t.Errorf("datagram %d: domain %d, want 77", i, m.Domain)
		}
		if m.Sequence != seq {
			t.Errorf("datagram %d: sequence %d, want %d", i, m.Sequence, seq)
		}
		if m.Length > 1400 {
			t.Errorf("datagram %d: %d bytes", i, m.Length)
		}
		seq += uint32(m.DataRecords + m.OptionsRecords)
	}

	var emf map[string]any
	if err := json.Unmarshal(metricsOut.Bytes(), &emf); err != nil {
		t.Fatalf("metrics line %q: %v", metricsOut, err)
	}
	for name, want := range map[string]float64{"Messages": 9, "FailedMessages": 4, "Objects": 2, "FailedObjects": 3, "SkippedObjects": 2, "Exported": wantFlows, "Malformed": 3, "NoData": 2, "SkipData": 1} {
		if emf[name] != want {
			t.Errorf("metric %s = %v, want %v", name, emf[name], want)
		}
	}
	if _, ok := emf["_aws"].(map[string]any)["CloudWatchMetrics"]; !ok {
		t.Errorf("not an EMF line: %s", metricsOut)
	}
}

func TestHandlerDeadline(t *testing.T) {
	client, put := s3Server(t)
	good, _ := os.ReadFile("../pkg/forwarder/testdata/default.log.gz")
	put("AWSLogs/a.log.gz", good)
	capture := goflowcheck.Listen(t)
	a, _, _ := testApp(t, client, fmt.Sprint(capture.Addr().Port()))
	// Less time left than the margin: nothing may start, everything is reported.
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DeadlineMargin/2)
	defer cancel()
	resp, err := a.handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: s3Body("AWSLogs/a.log.gz", len(good))},
		{MessageId: "m2", Body: s3Body("AWSLogs/a.log.gz", len(good))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 2 {
		t.Fatalf("failures %+v, want both messages", resp.BatchItemFailures)
	}
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" means valid
	}{
		{"minimal", map[string]string{"COLLECTOR_HOST": "jsa.example.internal"}, ""},
		{"missing host", map[string]string{}, "COLLECTOR_HOST"},
		{"bad host", map[string]string{"COLLECTOR_HOST": "jsa example"}, "COLLECTOR_HOST"},
		{"port range", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "COLLECTOR_PORT": "70000"}, "COLLECTOR_PORT"},
		{"eps", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "EPS_LIMIT": "fast"}, "EPS_LIMIT"},
		{"pattern", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "FILE_PATTERN": "("}, "FILE_PATTERN"},
		{"endpoint", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "S3_ENDPOINT_URL": "localhost:9000"}, "S3_ENDPOINT_URL"},
		{"role", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "ASSUME_ROLE_ARN": "reader"}, "ASSUME_ROLE_ARN"},
		{"external id alone", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "EXTERNAL_ID": "x"}, "EXTERNAL_ID"},
		{"domain per instance range", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "OBSERVATION_DOMAIN_ID": "70000"}, "OBSERVATION_DOMAIN_ID"},
		{"fixed domain 32 bit", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "DOMAIN_PER_INSTANCE": "false", "OBSERVATION_DOMAIN_ID": "4000000000"}, ""},
		{"datagram", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "MAX_DATAGRAM_BYTES": "100"}, "MAX_DATAGRAM_BYTES"},
		{"pen needs room", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "ENTERPRISE_NUMBER": "32473", "MAX_DATAGRAM_BYTES": "512"}, "MAX_DATAGRAM_BYTES"},
		{"log level", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"full", map[string]string{"COLLECTOR_HOST": "10.0.0.1", "ASSUME_ROLE_ARN": "arn:aws:iam::123456789012:role/flowlog-reader", "EXTERNAL_ID": "x", "ENTERPRISE_NUMBER": "32473", "S3_ENDPOINT_URL": "http://127.0.0.1:9000", "LOG_LEVEL": "debug"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string { return tc.env[k] })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	cfg := defaultConfig()
	cfg.ObservationDomainID = 5
	for range 20 {
		if d := cfg.domainID(); d>>16 != 5 || d&0xffff == 0 {
			t.Fatalf("per-instance domain %#x", d)
		}
	}
	if regexp.MustCompile(cfg.FilePattern.String()).MatchString("x.log") {
		t.Error("default pattern matches .log")
	}
}
