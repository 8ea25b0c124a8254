package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/sqsfake"
)

// The SQS event source mapping, played by the harness, because no installable SQS
// emulator speaks the JSON protocol of the current SDK. It follows the documented
// behaviour, kept small:
//
//   - A received message is invisible for VisibilityTimeout; a message that is not
//     deleted becomes visible again when it expires and is received again.
//   - ApproximateReceiveCount counts receives. A message already received
//     MaxReceiveCount times is moved to the dead-letter queue by the next receive
//     attempt instead of being delivered (the redrive policy).
//   - One poller per instance of the function (the MaximumConcurrency); each receives
//     up to BatchSize visible messages and invokes its instance synchronously.
//   - With ReportBatchItemFailures: a normal return deletes every message except
//     those in batchItemFailures; a failure whose itemIdentifier is empty or not in
//     the batch fails the whole batch; a function error or timeout deletes nothing.
//
// Differences from AWS are listed in README.md.

// Message is one SQS message.
type Message struct {
	ID           string
	Body         string
	Sent         time.Time
	FirstReceive time.Time
	Receives     int
	visibleAt    time.Time
	Deleted      bool
	DeadLetter   bool
}

// Queue is an SQS queue with a redrive policy to a dead-letter list.
type Queue struct {
	VisibilityTimeout time.Duration
	MaxReceiveCount   int

	mu   sync.Mutex
	msgs []*Message
	dlq  []*Message
	seq  int
}

// Send enqueues a message and returns its id.
func (q *Queue) Send(body string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	m := &Message{ID: fmt.Sprintf("00000000-e2e0-4000-8000-%012d", q.seq), Body: body, Sent: time.Now()}
	q.msgs = append(q.msgs, m)
	return m.ID
}

// receive takes up to max visible messages and hides them for the visibility timeout,
// moving those already received MaxReceiveCount times to the dead-letter list.
func (q *Queue) receive(max int) []*Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var out []*Message
	for _, m := range q.msgs {
		if len(out) == max {
			break
		}
		if m.Deleted || m.DeadLetter || now.Before(m.visibleAt) {
			continue
		}
		if q.MaxReceiveCount > 0 && m.Receives >= q.MaxReceiveCount {
			m.DeadLetter = true
			q.dlq = append(q.dlq, m)
			continue
		}
		m.Receives++
		if m.FirstReceive.IsZero() {
			m.FirstReceive = now
		}
		m.visibleAt = now.Add(q.VisibilityTimeout)
		out = append(out, m)
	}
	return out
}

func (q *Queue) delete(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.ID == id {
			m.Deleted = true
		}
	}
}

// Drained reports whether every message was deleted or dead-lettered.
func (q *Queue) Drained() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if !m.Deleted && !m.DeadLetter {
			return false
		}
	}
	return true
}

// Message returns a copy of the message's state.
func (q *Queue) Message(id string) Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.ID == id {
			return *m
		}
	}
	return Message{}
}

// DeadLetters returns the ids in the dead-letter list.
func (q *Queue) DeadLetters() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for _, m := range q.dlq {
		ids = append(ids, m.ID)
	}
	return ids
}

// EventSource is the event source mapping: pollers that invoke the instances.
type EventSource struct {
	Queue     *Queue
	Functions []*Lambda // one poller each: the maximum concurrency
	BatchSize int
	Logf      func(format string, args ...any)

	mu          sync.Mutex
	Invocations []*Invocation
	Errors      []error
}

const queueARN = "arn:aws:sqs:us-east-1:123456789012:vpcflow-ipfix-notifications"

// event builds the SQSEvent for a batch, with the attributes Lambda sets.
func event(batch []*Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range batch {
		sum := md5.Sum([]byte(m.Body))
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:     m.ID,
			ReceiptHandle: fmt.Sprintf("e2e-receipt-%s-%d", m.ID, m.Receives),
			Body:          m.Body,
			Md5OfBody:     hex.EncodeToString(sum[:]),
			Attributes: map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(m.Receives),
				"SentTimestamp":                    strconv.FormatInt(m.Sent.UnixMilli(), 10),
				"SenderId":                         "AIDAE2EEXAMPLE",
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceive.UnixMilli(), 10),
			},
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSource:       "aws:sqs",
			EventSourceARN:    queueARN,
			AWSRegion:         "us-east-1",
		})
	}
	return ev
}

// Step makes each poller receive one batch and invoke its instance, concurrently, and
// returns when all invocations returned. It reports how many invocations it made.
func (es *EventSource) Step(ctx context.Context) int {
	var wg sync.WaitGroup
	var n int
	for _, fn := range es.Functions {
		batch := es.Queue.receive(max(1, es.BatchSize))
		if len(batch) == 0 {
			continue
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			es.invoke(ctx, fn, batch)
		}()
	}
	wg.Wait()
	return n
}

// Run polls until the queue is drained or ctx ends; each poller works on its own, as
// Lambda's pollers do.
func (es *EventSource) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, fn := range es.Functions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !es.Queue.Drained() {
				batch := es.Queue.receive(max(1, es.BatchSize))
				if len(batch) == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				es.invoke(ctx, fn, batch)
			}
		}()
	}
	wg.Wait()
	if !es.Queue.Drained() {
		return fmt.Errorf("queue not drained: %w", ctx.Err())
	}
	return nil
}

func (es *EventSource) invoke(ctx context.Context, fn *Lambda, batch []*Message) {
	inv, err := fn.Invoke(ctx, event(batch))
	es.mu.Lock()
	if inv != nil {
		es.Invocations = append(es.Invocations, inv)
	}
	if err != nil {
		es.Errors = append(es.Errors, err)
	}
	es.mu.Unlock()
	if err != nil || inv.FuncError != "" {
		// Nothing is deleted; every message comes back after its visibility timeout.
		if es.Logf != nil {
			es.Logf("%s: invocation failed, whole batch of %d retried: %v %s", fn.Name, len(batch), err, inv.FuncError)
		}
		return
	}
	inBatch := map[string]bool{}
	for _, m := range batch {
		inBatch[m.ID] = true
	}
	failed := map[string]bool{}
	for _, f := range inv.Response.BatchItemFailures {
		if f.ItemIdentifier == "" || !inBatch[f.ItemIdentifier] {
			// Lambda treats an invalid identifier as a failure of the whole batch.
			if es.Logf != nil {
				es.Logf("%s: invalid itemIdentifier %q: whole batch retried", fn.Name, f.ItemIdentifier)
			}
			return
		}
		failed[f.ItemIdentifier] = true
	}
	for _, m := range batch {
		if !failed[m.ID] {
			es.Queue.delete(m.ID)
		}
	}
	if es.Logf != nil {
		es.Logf("%s: batch of %d, %d failed, %v", fn.Name, len(batch), len(failed), inv.Duration.Round(time.Millisecond))
	}
}

// AllInvocations returns the invocations so far.
func (es *EventSource) AllInvocations() []*Invocation {
	es.mu.Lock()
	defer es.mu.Unlock()
	return append([]*Invocation(nil), es.Invocations...)
}

// Sum adds a metric over all invocations.
func (es *EventSource) Sum(metric string) uint64 {
	var n uint64
	for _, inv := range es.AllInvocations() {
		n += inv.Metric(metric)
	}
	return n
}

// notification bodies, in the shapes S3 can reach SQS.

func s3EventBody(bucket, key string, size int) string {
	return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-12-03T16:10:42.318Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AROA4QWERTYUIOPASDFGH:delivery.logs.amazonaws.com"},"requestParameters":{"sourceIPAddress":"10.31.62.118"},"responseElements":{"x-amz-request-id":"D5EB9283594EE215","x-amz-id-2":"8OH/ewLziSCZQ/DLrE4Y8S5uQwUqyJLeIevLLNUY9WGIkXTD74G5XrRnY1uGQRpPmPcyL2J454w="},"s3":{"s3SchemaVersion":"1.0","configurationId":"vpcflow-ipfix-log-objects","bucket":{"name":%q,"ownerIdentity":{"principalId":"A2QWERTY7EXAMPLE"},"arn":"arn:aws:s3:::%s"},"object":{"key":%q,"size":%d,"eTag":"5d4f1c7d6a8a3e1f9b2c0e4a7d3b6c91","sequencer":"00693061A2C4D7E5F1"}}}]}`,
		bucket, bucket, s3URLEncode(key), size)
}

func snsBody(bucket, key string, size int) string {
	inner := s3EventBody(bucket, key, size)
	return fmt.Sprintf(`{"Type":"Notification","MessageId":"df3c5d55-af86-4d8d-ba58-3c8bae20d81c","TopicArn":"arn:aws:sns:us-east-1:123456789012:vpcflow-ipfix-s3-events","Subject":"Amazon S3 Notification","Message":%s,"Timestamp":"2026-12-03T16:10:42.401Z","SignatureVersion":"1","Signature":"EXAMPLE","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}`,
		strconv.Quote(inner))
}

func eventBridgeBody(bucket, key string, size int) string {
	return fmt.Sprintf(`{"version":"0","id":"8dcd6c43-5151-4310-ba3a-cd4824da7bd3","detail-type":"Object Created","source":"aws.s3","account":"123456789012","time":"2026-12-03T16:10:42Z","region":"us-east-1","resources":["arn:aws:s3:::%s"],"detail":{"version":"0","bucket":{"name":%q},"object":{"key":%q,"size":%d,"etag":"5d4f1c7d6a8a3e1f9b2c0e4a7d3b6c91","sequencer":"00693061A2C4D7E5F1"},"request-id":"F0E1FF7B02F38920","requester":"delivery.logs.amazonaws.com","source-ip-address":"10.31.62.118","reason":"PutObject"}}`,
		bucket, bucket, key, size)
}

const testEventBody = `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-03T16:10:58.204Z","Bucket":"vpcflow-ipfix-demo","RequestId":"8C1E4B7F2A9D3E60","HostId":"915YfoRA6CI0+VaWIpVcSVc4T7Ts5XZb+utYFCfICvc="}`

// s3URLEncode encodes a key the way S3 event notifications do (form encoding: a space
// is "+", "=" is "%3D"; "/" stays).
func s3URLEncode(key string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '/', c == '*':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// SQSEndpoint is the one SQS API the function calls, SendMessage (continuation messages
// for objects that resume in a later invocation), in the JSON protocol of the current
// SDK: internal/sqsfake, whose own test checks it against the real aws-sdk-go-v2 client.
// A sent message goes into the Queue, so the event source delivers it like any other.
type SQSEndpoint struct {
	URL      string
	QueueURL string
	srv      *sqsfake.Server
	mu       sync.Mutex
	sent     []string // ids of the messages sent through the API
}

func startSQSEndpoint(q *Queue) (*SQSEndpoint, error) {
	srv := sqsfake.New("vpcflow-ipfix-notifications")
	e := &SQSEndpoint{URL: srv.URL(), QueueURL: srv.QueueURL("vpcflow-ipfix-notifications"), srv: srv}
	srv.Deliver = func(_, body string) string {
		id := q.Send(body)
		e.mu.Lock()
		e.sent = append(e.sent, id)
		e.mu.Unlock()
		return id
	}
	return e, nil
}

// Close stops the endpoint.
func (e *SQSEndpoint) Close() { e.srv.Close() }

// SentIDs returns the ids of the messages the function sent.
func (e *SQSEndpoint) SentIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.sent...)
}
