package notify_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/notify"
)

const (
	bucket  = "vpcflow-ipfix-demo"
	flowKey = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261203T1605Z_0a1b2c3d.log.gz"
	hiveKey = "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=03/hour=16/123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261203T1600Z_a1b2c3d4.log.gz"
)

// eventsDir holds the sample SQS events, at the repository root.
var eventsDir = filepath.Join("..", "..", "events")

func at(hour, min, sec, ms int) time.Time {
	return time.Date(2026, 12, 3, hour, min, sec, ms*int(time.Millisecond), time.UTC)
}

// put is the object most fixtures announce; tests change what differs.
func put(src notify.Source) notify.Object {
	return notify.Object{
		Bucket:    bucket,
		Key:       flowKey,
		Size:      2841,
		ETag:      "5d4f1c7d6a8a3e1f9b2c0e4a7d3b6c91",
		Sequencer: "00693061A2C4D7E5F1",
		EventName: "ObjectCreated:Put",
		EventTime: at(16, 10, 42, 318),
		Region:    "us-east-1",
		Source:    src,
	}
}

func with(o notify.Object, f func(*notify.Object)) notify.Object {
	f(&o)
	return o
}

func objects(o ...notify.Object) notify.Notification { return notify.Notification{Objects: o} }

// eventBridge is the object of an EventBridge "Object Created" event for key.
func eventBridge(key string, f func(*notify.Object)) notify.Object {
	o := with(put(notify.SourceEventBridge), func(o *notify.Object) {
		o.Key = key
		o.EventName = "Object Created"
		o.EventTime = at(16, 10, 42, 0)
	})
	if f != nil {
		f(&o)
	}
	return o
}

func TestParse(t *testing.T) {
	tests := []struct {
		file    string
		want    notify.Notification
		wantErr string // substring of the error; "" for no error
		record  int    // RecordError.Index wanted, when the error names a record
	}{
		{file: "s3-put.json", want: objects(with(put(notify.SourceS3), func(o *notify.Object) {
			o.VersionID = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
		}))},
		{file: "s3-multiple-records.json", want: notify.Notification{
			Objects: []notify.Object{
				put(notify.SourceS3),
				with(put(notify.SourceS3), func(o *notify.Object) {
					o.Key = strings.Replace(flowKey, "1605Z_0a1b2c3d", "1610Z_1b2c3d4e", 1)
					o.Size = 10485760
					o.ETag = "e0b6c1f3a7d2948b5c0e1f2a3b4c5d6e-2" // quotes removed
					o.Sequencer = "00693062CE18A4B6D2"
					o.EventName = "ObjectCreated:CompleteMultipartUpload"
					o.EventTime = at(16, 15, 47, 61)
				}),
			},
			Ignored: 1,
		}},
		{file: "s3-removed-only.json", want: notify.Notification{Ignored: 1}},
		{file: "s3-plus-and-encoded-key.json", want: objects(with(put(notify.SourceS3), func(o *notify.Object) {
			o.Key = "AWSLogs/aws-account-id=123456789012/flow logs/copy (1)+1.log.gz"
		}))},
		{file: "s3-hive-key.json", want: objects(with(put(notify.SourceS3), func(o *notify.Object) {
			o.Key = hiveKey
			o.Size = 3107
		}))},
		{file: "s3-size-zero.json", want: objects(with(put(notify.SourceS3), func(o *notify.Object) {
			o.Size = 0
			o.ETag = "d41d8cd98f00b204e9800998ecf8427e"
		}))},
		{file: "s3-minimal.json", want: objects(notify.Object{
			Bucket: bucket, Key: "a.log.gz", Size: -1, EventName: "ObjectCreated:Copy", Source: notify.SourceS3,
		})},
		{file: "s3-test-event.json", want: notify.Notification{Test: true}},
		{file: "sns-s3.json", want: objects(put(notify.SourceSNS))},
		{file: "sns-test-event.json", want: notify.Notification{Test: true}},
		{file: "eventbridge-created.json", want: objects(eventBridge(flowKey, func(o *notify.Object) {
			o.VersionID = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
		}))},
		{file: "eventbridge-encoded-key.json", want: objects(eventBridge(hiveKey, nil))},
		// Not a valid encoding, so not encoded: kept as it came (see the package comment).
		{file: "eventbridge-raw-percent-key.json", want: objects(eventBridge("reports/100%_done+final.log.gz", nil))},
		{file: "eventbridge-deleted.json", want: notify.Notification{Ignored: 1}},

		{file: "bad-empty.json", wantErr: "notify: empty body"},
		{file: "bad-invalid-json.json", wantErr: "notify: decoding JSON: unexpected end of JSON input"},
		{file: "bad-not-object.json", wantErr: "notify: decoding JSON: json: cannot unmarshal array"},
		{file: "bad-unknown-shape.json", wantErr: "notify: not an S3 notification, SNS notification or EventBridge event"},
		{file: "bad-s3-missing-key.json", wantErr: "notify: record 1: missing s3.object.key", record: 1},
		{file: "bad-s3-missing-bucket.json", wantErr: "notify: record 0: missing s3.bucket.name", record: 0},
		{file: "bad-s3-percent.json", wantErr: `notify: record 0: s3.object.key "AWSLogs/123456789012/vpcflowlogs/bad%zzkey.log.gz": invalid URL escape "%zz"`, record: 0},
		{file: "bad-s3-no-records.json", wantErr: "notify: S3 notification has no records"},
		{file: "bad-s3-event-source.json", wantErr: `notify: record 0: eventSource "aws:sns" is not aws:s3`, record: 0},
		{file: "bad-sns-invalid-inner.json", wantErr: "notify: SNS message is not an S3 notification: decoding JSON: invalid character 'h'"},
		{file: "bad-sns-inner-eventbridge.json", wantErr: "notify: SNS message is not an S3 notification: not an S3 notification"},
		{file: "bad-sns-subscription-confirmation.json", wantErr: `notify: SNS message of type "SubscriptionConfirmation", not Notification`},
		{file: "bad-eventbridge-source.json", wantErr: `notify: EventBridge event from source "aws.ec2", not aws.s3`},
		{file: "bad-eventbridge-missing-key.json", wantErr: "notify: EventBridge event: missing detail.object.key"},
		{file: "bad-eventbridge-no-detail-type.json", wantErr: "notify: EventBridge event: missing detail-type"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := notify.Parse(body)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				checkNotification(t, got, tt.want)
				return
			}
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, notify.Notification{}) {
				t.Errorf("Parse returned %+v with its error", got)
			}
			var re *notify.RecordError
			switch isRecord := errors.As(err, &re); {
			case strings.Contains(tt.wantErr, "record ") && !isRecord:
				t.Errorf("error %q is not a *RecordError", err)
			case isRecord && re.Index != tt.record:
				t.Errorf("RecordError.Index = %d, want %d", re.Index, tt.record)
			}
		})
	}
	t.Run("unknown shape wraps ErrUnknownShape", func(t *testing.T) {
		if _, err := notify.Parse([]byte(`{"hello":"world"}`)); !errors.Is(err, notify.ErrUnknownShape) {
			t.Errorf("error %v does not wrap ErrUnknownShape", err)
		}
	})
}

// checkNotification compares with time.Time.Equal, and a nil Objects with an empty one.
func checkNotification(t *testing.T, got, want notify.Notification) {
	t.Helper()
	if got.Test != want.Test || got.Ignored != want.Ignored || len(got.Objects) != len(want.Objects) {
		t.Fatalf("got Test=%v Ignored=%d %d objects, want Test=%v Ignored=%d %d objects\ngot %+v",
			got.Test, got.Ignored, len(got.Objects), want.Test, want.Ignored, len(want.Objects), got)
	}
	for i, g := range got.Objects {
		w := want.Objects[i]
		if !g.EventTime.Equal(w.EventTime) {
			t.Errorf("object %d: EventTime %v, want %v", i, g.EventTime, w.EventTime)
		}
		g.EventTime, w.EventTime = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("object %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// sampleEvents reads every events/*.json as the Lambda receives it.
func sampleEvents(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events in %s (%v)", eventsDir, err)
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestParseSampleEvents(t *testing.T) {
	want := map[string][]notify.Notification{
		"sqs-s3-direct.json":   {objects(put(notify.SourceS3))},
		"sqs-sns-wrapped.json": {objects(put(notify.SourceSNS))},
		"sqs-eventbridge.json": {objects(eventBridge(flowKey, nil))},
		"sqs-test-event.json":  {{Test: true}},
		"sqs-hive-encoded-key.json": {objects(with(put(notify.SourceS3), func(o *notify.Object) {
			o.Key = hiveKey
			o.Size = 3107
			o.ETag = "9b1e6f0a2c4d8e7f3a5b1c9d0e2f4a6b"
			o.Sequencer = "0069305E2A7B9C1D3E"
			o.EventTime = at(16, 5, 39, 804)
		}))},
		"sqs-mixed-batch.json": {
			objects(put(notify.SourceS3)),
			{Test: true},
			objects(with(put(notify.SourceS3), func(o *notify.Object) {
				o.Key = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/manifest.json"
				o.Size = 412
				o.ETag = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
				o.Sequencer = "006930619B3E5A7C90"
				o.EventTime = at(16, 11, 5, 127)
			})),
			{Ignored: 1},
			objects(with(put(notify.SourceS3), func(o *notify.Object) {
				o.Key = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/123456789012_vpcflowlogs_us-east-1_fl-0fedcba9876543210_20261203T1610Z_custom01.log.gz"
				o.Size = 1966
				o.ETag = "c3a9e1f7b5d2048e6a1f9c3b7d5e2a80"
				o.Sequencer = "00693062CE18A4B6D2"
				o.EventTime = at(16, 15, 47, 61)
			})),
		},
	}
	samples := sampleEvents(t)
	for name := range want {
		if _, ok := samples[name]; !ok {
			t.Errorf("events/%s is missing", name)
		}
	}
	for name, raw := range samples {
		t.Run(name, func(t *testing.T) {
			wantMsgs, ok := want[name]
			if !ok {
				t.Fatalf("events/%s has no expectations in this test: add them", name)
			}
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if len(ev.Records) != len(wantMsgs) {
				t.Fatalf("%d messages, want %d", len(ev.Records), len(wantMsgs))
			}
			for i, m := range ev.Records {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					if m.EventSource != "aws:sqs" || m.EventSourceARN != "arn:aws:sqs:us-east-1:123456789012:vpcflow-ipfix-notifications" || m.AWSRegion != "us-east-1" {
						t.Errorf("message source %q %q %q", m.EventSource, m.EventSourceARN, m.AWSRegion)
					}
					if sum := md5.Sum([]byte(m.Body)); hex.EncodeToString(sum[:]) != m.Md5OfBody {
						t.Errorf("md5OfBody %s, but the body's MD5 is %x", m.Md5OfBody, sum)
					}
					got, err := notify.Parse([]byte(m.Body))
					if err != nil {
						t.Fatalf("Parse: %v", err)
					}
					checkNotification(t, got, wantMsgs[i])
				})
			}
		})
	}
}

// TestSampleEventsRoundTrip checks that each sample is a valid events.SQSEvent: nothing is
// lost or misspelt by unmarshalling it and marshalling it back.
func TestSampleEventsRoundTrip(t *testing.T) {
	for name, raw := range sampleEvents(t) {
		t.Run(name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			var ev events.SQSEvent
			if err := dec.Decode(&ev); err != nil {
				t.Fatal(err)
			}
			back, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := normalise(t, raw), normalise(t, back); !reflect.DeepEqual(a, b) {
				t.Errorf("round trip differs:\n in %v\nout %v", a, b)
			}
		})
	}
}

// normalise decodes JSON into generic values without the empty ones ("", null, {}, []),
// which a round trip through a Go struct without omitempty adds or drops.
func normalise(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return prune(v)
}

func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e = prune(e); e == nil {
				delete(v, k)
			} else {
				v[k] = e
			}
		}
		if len(v) == 0 {
			return nil
		}
	case []any:
		for i, e := range v {
			v[i] = prune(e)
		}
		if len(v) == 0 {
			return nil
		}
	case string:
		if v == "" {
			return nil
		}
	}
	return v
}

// TestParseLarge parses bodies with many records: a quadratic Parse would take minutes.
func TestParseLarge(t *testing.T) {
	const n = 20_000
	rec := `{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k%3D1","size":1}}}`
	s3 := []byte(`{"Records":[` + strings.Repeat(rec+",", n-1) + rec + `]}`)
	msg, _ := json.Marshal(string(s3))
	sns := []byte(`{"Type":"Notification","Message":` + string(msg) + `}`)
	for name, body := range map[string][]byte{"s3": s3, "sns": sns} {
		t.Run(name, func(t *testing.T) {
			got, err := notify.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Objects) != n || got.Objects[n-1].Key != "k=1" {
				t.Errorf("%d objects, last %+v", len(got.Objects), got.Objects[len(got.Objects)-1])
			}
		})
	}
}

// seeds is every fixture body and every sample message body.
func seeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for _, raw := range sampleEvents(tb) {
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			tb.Fatal(err)
		}
		for _, m := range ev.Records {
			out = append(out, []byte(m.Body))
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := notify.Parse(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "notify: ") {
				t.Errorf("error %q lacks the notify: prefix", err)
			}
			return
		}
		for i, o := range n.Objects {
			if o.Bucket == "" || o.Key == "" {
				t.Errorf("object %d has an empty bucket or key: %+v", i, o)
			}
			if o.Size < -1 {
				t.Errorf("object %d has size %d", i, o.Size)
			}
		}
		if n.Test && (len(n.Objects) > 0 || n.Ignored > 0) {
			t.Errorf("test event with objects: %+v", n)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"s3-put.json", "sns-s3.json", "eventbridge-created.json"} {
		body, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := notify.Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
