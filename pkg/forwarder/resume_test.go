package forwarder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/metrics"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/notify"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/pacer"
)

// memOpener serves objects from memory, honouring If-Match like S3.
type memOpener struct {
	objects map[string][]byte
	etags   map[string]string
}

func (m *memOpener) Open(_ context.Context, bucket, key, _, ifMatch string) (io.ReadCloser, objectreader.Info, error) {
	data, ok := m.objects[key]
	if !ok {
		return nil, objectreader.Info{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, objectreader.ErrNotFound)
	}
	if ifMatch != "" && ifMatch != m.etags[key] {
		return nil, objectreader.Info{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, objectreader.ErrChanged)
	}
	rc, gz, err := objectreader.Decompress(io.NopCloser(bytes.NewReader(data)))
	return rc, objectreader.Info{ETag: m.etags[key], Size: int64(len(data)), Gzip: gz}, err
}

type queue struct{ bodies [][]byte }

func (q *queue) Continue(_ context.Context, body []byte) error {
	q.bodies = append(q.bodies, body)
	return nil
}

// fakeClock moves only when the pacer sleeps, so a deadline is reached after an exact
// number of records whatever the machine's speed.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// failingSender refuses every datagram, like a collector that is down.
type failingSender struct{ errors uint64 }

func (s *failingSender) Send(context.Context, []byte) error {
	s.errors++
	return errors.New("write udp: connection refused")
}

type rig struct {
	fw     *forwarder.Forwarder
	sender *captureSender
	pacer  *pacer.Pacer
	clock  *fakeClock
	queue  *queue
	opener *memOpener
	logs   *bytes.Buffer
}

// newRig paces at eps flows per second of fake time, one datagram (at most 30 records)
// ahead of schedule at the most; eps 0 is unlimited, and a negative eps has no pacer.
func newRig(t *testing.T, eps float64, sender exporter.Sender) *rig {
	t.Helper()
	r := &rig{clock: &fakeClock{t: time.Now()}, queue: &queue{}, opener: &memOpener{objects: map[string][]byte{}, etags: map[string]string{}}, logs: &bytes.Buffer{}}
	if sender == nil {
		r.sender = &captureSender{}
		sender = r.sender
	}
	r.pacer = pacer.New(pacer.Options{EPS: eps, Burst: 30, Clock: r.clock})
	var p exporter.Pacer = r.pacer
	if eps < 0 {
		p = nil // no pacer: nothing between the records and the sender looks at the context
	}
	exp, err := exporter.New(sender, p, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sendErrors := func() uint64 {
		if fs, ok := sender.(*failingSender); ok {
			return fs.errors
		}
		return 0
	}
	r.fw = forwarder.New(r.opener, exp, forwarder.Options{Logger: slog.New(slog.NewJSONHandler(r.logs, nil)), Continuer: r.queue, SendErrors: sendErrors})
	return r
}

// invoke runs one "invocation" with budget seconds of fake time before the deadline.
func (r *rig) invoke(t *testing.T, body []byte, budget time.Duration) (metrics.Counts, error) {
	t.Helper()
	r.pacer.Restart()
	ctx, cancel := context.WithDeadline(context.Background(), r.clock.Now().Add(budget))
	defer cancel()
	var c metrics.Counts
	err := r.fw.HandleMessage(ctx, "m", body, &c)
	return c, err
}

func s3Notification(key string, size int) []byte {
	return []byte(fmt.Sprintf(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":%q,"size":%d}}}]}`, key, size))
}

func (r *rig) flows(t *testing.T) []goflowcheck.Flow {
	t.Helper()
	d := goflowcheck.NewDecoder()
	for _, b := range r.sender.got {
		if err := d.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	return d.Flows
}

// checkExactlyOnce: sampleObject gives record i source port 1024+i.
func checkExactlyOnce(t *testing.T, flows []goflowcheck.Flow, n int) {
	t.Helper()
	if len(flows) != n {
		t.Fatalf("collector got %d flows, want %d", len(flows), n)
	}
	for i, f := range flows {
		if f.SrcPort != uint16(1024+i) {
			t.Fatalf("flow %d has source port %d, want %d: a record was lost or sent twice", i, f.SrcPort, 1024+i)
		}
	}
}

func TestResumeAcrossInvocations(t *testing.T) {
	const records = 2500
	r := newRig(t, 100, nil)
	obj := sampleObject(records)
	r.opener.objects["big.log.gz"], r.opener.etags["big.log.gz"] = obj, `"etag-1"`

	body := s3Notification("big.log.gz", len(obj))
	var parts []notify.Checkpoint
	for part := 1; ; part++ {
		if part > 10 {
			t.Fatal("object never finished")
		}
		// 10 s of fake time at 100 flows/s: about 1000 records an invocation.
		c, err := r.invoke(t, body, 10*time.Second)
		if err != nil {
			t.Fatalf("part %d failed the message: %v\n%s", part, err, r.logs)
		}
		if c.Continuations == 0 {
			if c.Objects != 1 || fmt.Sprint(c.PartsPerObject) != fmt.Sprint([]int{part}) {
				t.Fatalf("last part: counts %+v", c)
			}
			break
		}
		var cont map[string]notify.Continuation
		if err := json.Unmarshal(r.queue.bodies[len(r.queue.bodies)-1], &cont); err != nil {
			t.Fatal(err)
		}
		cp := cont[notify.ContinuationKey].Objects[0]
		if cp.Part != part+1 || cp.ETag != `"etag-1"` || cp.Key != "big.log.gz" {
			t.Fatalf("checkpoint %+v after part %d", cp, part)
		}
		if part > 1 && (c.ResumedObjects != 1 || c.SkippedOnResume != uint64(parts[len(parts)-1].SkipRecords)) {
			t.Fatalf("part %d counts %+v", part, c)
		}
		// The checkpoint is exactly what reached the collector so far.
		if got := len(r.flows(t)); int64(got) != cp.SkipRecords {
			t.Fatalf("after part %d: checkpoint says %d records sent, the collector has %d", part, cp.SkipRecords, got)
		}
		parts = append(parts, cp)
		body = r.queue.bodies[len(r.queue.bodies)-1]
	}
	if len(parts) < 2 {
		t.Fatalf("finished in %d parts; the test wants at least 3", len(parts)+1)
	}
	checkExactlyOnce(t, r.flows(t), records)
}

func TestResumeRestartsOnChangedObject(t *testing.T) {
	r := newRig(t, 0, nil)
	obj := sampleObject(50)
	r.opener.objects["o.log.gz"], r.opener.etags["o.log.gz"] = obj, `"new"`
	body, _ := notify.MarshalContinuation(notify.Continuation{Objects: []notify.Checkpoint{
		{Bucket: "b", Key: "o.log.gz", ETag: `"old"`, Size: int64(len(obj)), SkipRecords: 30, Part: 2},
	}})
	c, err := r.invoke(t, body, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c.RestartedObjects != 1 || c.SkippedOnResume != 0 || c.Exported != 50 || c.Objects != 1 {
		t.Fatalf("counts %+v", c)
	}
	if !bytes.Contains(r.logs.Bytes(), []byte("object changed since the checkpoint")) {
		t.Errorf("the restart is not logged:\n%s", r.logs)
	}
	checkExactlyOnce(t, r.flows(t), 50)
}

func TestPoisonObjectReachesDeadLetterOnce(t *testing.T) {
	r := newRig(t, 0, nil)
	whole := sampleObject(3000)
	// Corrupt the compressed data three quarters of the way in.
	poison := append([]byte(nil), whole...)
	for i := len(poison) * 3 / 4; i < len(poison)*3/4+64; i++ {
		poison[i] ^= 0x5a
	}
	r.opener.objects["p.log.gz"], r.opener.etags["p.log.gz"] = poison, `"p"`
	// Attempt 1: the records before the corruption go out; the rest continues.
	c, err := r.invoke(t, s3Notification("p.log.gz", len(poison)), time.Minute)
	if err != nil || c.Continuations != 1 || c.Exported == 0 {
		t.Fatalf("attempt 1: err %v counts %+v", err, c)
	}
	before := len(r.flows(t))
	// Attempts 2..: nothing new can be read, so the message fails every time and SQS
	// moves it to the dead-letter queue after maxReceiveCount.
	cont := r.queue.bodies[0]
	for attempt := 2; attempt <= 4; attempt++ {
		c, err := r.invoke(t, cont, time.Minute)
		if err == nil || !errors.Is(err, objectreader.ErrCorrupt) || c.Continuations != 0 || c.Exported != 0 {
			t.Fatalf("attempt %d: err %v counts %+v", attempt, err, c)
		}
	}
	flows := r.flows(t)
	if len(flows) != before {
		t.Fatalf("records before the corruption were sent again: %d then %d", before, len(flows))
	}
	checkExactlyOnce(t, flows, before)
}

func TestDeadCollectorFailsTheMessage(t *testing.T) {
	r := newRig(t, 0, &failingSender{})
	obj := sampleObject(100)
	r.opener.objects["d.log.gz"], r.opener.etags["d.log.gz"] = obj, `"d"`
	c, err := r.invoke(t, s3Notification("d.log.gz", len(obj)), time.Minute)
	// Nothing went out: no continuation (that would retry in a tight loop); the message
	// fails and SQS retries it with its visibility timeout.
	if err == nil || c.Continuations != 0 || c.FailedObjects != 1 {
		t.Fatalf("err %v counts %+v", err, c)
	}
}

func TestNotStartedBeforeDeadlineContinues(t *testing.T) {
	r := newRig(t, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var c metrics.Counts
	if err := r.fw.HandleMessage(ctx, "m", s3Notification("x.log.gz", 10), &c); err != nil {
		t.Fatal(err)
	}
	var cont map[string]notify.Continuation
	if len(r.queue.bodies) != 1 || json.Unmarshal(r.queue.bodies[0], &cont) != nil || cont[notify.ContinuationKey].Objects[0].SkipRecords != 0 {
		t.Fatalf("continuations %q", r.queue.bodies)
	}
}

// cancelAfter cancels its context once n bytes have been read: a deadline that falls
// between two datagrams, with records waiting in the unsent message.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if len(p) > 512 {
		p = p[:512]
	}
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestStopBetweenDatagramsLosesAndRepeatsNothing(t *testing.T) {
	const records = 5000
	r := newRig(t, -1, nil)
	zr, _, err := objectreader.Decompress(io.NopCloser(bytes.NewReader(sampleObject(records))))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(zr)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := r.fw.Forward(ctx, &cancelAfter{r: bytes.NewReader(text), n: len(text) / 3, cancel: cancel}, "o", forwarder.Job{})
	if err == nil || res.Position == 0 || res.Position >= records {
		t.Fatalf("first part: position %d, err %v", res.Position, err)
	}
	if got := len(r.flows(t)); int64(got) != res.Position {
		t.Fatalf("checkpoint %d, collector has %d", res.Position, got)
	}
	res2, err := r.fw.Forward(context.Background(), bytes.NewReader(text), "o", forwarder.Job{SkipRecords: res.Position})
	if err != nil || res2.Position != records {
		t.Fatalf("second part: position %d, err %v", res2.Position, err)
	}
	checkExactlyOnce(t, r.flows(t), records)
}
