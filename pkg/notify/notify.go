// Package notify turns the body of one SQS message into the S3 objects it announces.
//
// Amazon S3 can tell an SQS queue about new objects in three ways, and Parse reads all of
// them:
//
//   - an S3 event notification ({"Records":[...]}), sent straight to the queue or through
//     an SNS topic with raw message delivery;
//   - the same notification wrapped in an SNS envelope ({"Type":"Notification",
//     "Message":"<notification as a string>",...}), when the SNS subscription does not use
//     raw message delivery;
//   - an EventBridge event ({"detail-type":"Object Created","source":"aws.s3",...}), when an
//     EventBridge rule sends S3 events to the queue.
//
// It also recognises the s3:TestEvent that S3 sends when a notification configuration is
// saved. Only ObjectCreated events yield objects; other events are counted and ignored.
//
// # Object keys
//
// S3 event notifications carry keys URL-encoded as a form value ("red flower.jpg" arrives as
// "red+flower.jpg", "=" as "%3D"), so keys are decoded with url.QueryUnescape, the rule that
// aws-lambda-go's S3Object.URLDecodedKey also follows. A key that does not decode is an error.
//
// For EventBridge events AWS documents no encoding: the S3 notification page says the key is
// URL-encoded, the EventBridge "event message structure" page does not, and reports disagree
// (some consumers use the key as is, AWS Lambda Powertools decodes it with unquote_plus).
// Parse decodes EventBridge keys with the same rule, and keeps the key as it came when it does
// not decode. For every key that VPC Flow Logs writes (letters, digits and "/_-.=", never "%",
// "+" or a space) this is right whichever way EventBridge behaves: a plain key decodes to
// itself and "%3D" decodes to "=". A key that does not decode cannot have come from an
// encoder, so it is plain. Only a plain key with a literal "+" or "%XX" comes out wrong, and
// that is not a flow log.
package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Source says which notification shape announced an object.
type Source string

// The notification shapes.
const (
	SourceS3          Source = "s3"          // S3 event notification, direct or SNS raw delivery
	SourceSNS         Source = "sns"         // S3 event notification in an SNS envelope
	SourceEventBridge Source = "eventbridge" // EventBridge "Object Created" event
	SourceResume      Source = "resume"      // our own continuation message (see Continuation)
)

// Object is one S3 object announced by a notification.
type Object struct {
	Bucket    string
	Key       string // URL-decoded ('+' is a space, %3D is '=')
	Size      int64  // -1 when the notification does not say
	ETag      string // without quotes; "" when unknown
	VersionID string
	Sequencer string
	EventName string // e.g. "ObjectCreated:Put" (S3), "Object Created" (EventBridge)
	EventTime time.Time
	Region    string
	Source    Source
	// SkipRecords and Part come from a continuation message: the flow records already put
	// on the wire by earlier invocations, and how many invocations worked on the object.
	SkipRecords int64
	Part        int
}

// Notification is what one SQS message body announces.
type Notification struct {
	Objects []Object // ObjectCreated objects only
	Test    bool     // s3:TestEvent: acknowledge and ignore
	Ignored int      // records that were not ObjectCreated (e.g. ObjectRemoved), ignored
}

// ErrUnknownShape is wrapped by the error for a JSON object that is none of the shapes.
var ErrUnknownShape = errors.New("not an S3 notification, SNS notification or EventBridge event")

// RecordError is a problem with one record of an S3 event notification.
type RecordError struct {
	Index int // position in Records, from 0
	Err   error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// Parse reads one SQS message body. It never panics. An error means the body is not a
// notification we understand: the caller fails the message, so that it is retried and then
// dead-lettered. Errors start with "notify: " and name what was wrong; a problem with one
// record of an S3 notification is a *RecordError (e.g. "notify: record 2: missing
// s3.bucket.name", counting from 0).
func Parse(body []byte) (Notification, error) {
	n, err := parse(body, true)
	if err != nil {
		return Notification{}, fmt.Errorf("notify: %w", err)
	}
	return n, nil
}

// shape holds the top-level fields that tell the shapes apart.
type shape struct {
	Records    json.RawMessage `json:"Records"`     // S3 event notification
	Event      string          `json:"Event"`       // "s3:TestEvent"
	Type       string          `json:"Type"`        // SNS: "Notification"
	DetailType string          `json:"detail-type"` // EventBridge
	Source     string          `json:"source"`      // EventBridge: "aws.s3"
	Resume     json.RawMessage `json:"vpcflowIpfixResume"`
}

// ContinuationKey is the top-level key of a continuation message body.
const ContinuationKey = "vpcflowIpfixResume"

// Checkpoint is where an earlier invocation stopped in one object.
type Checkpoint struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"` // plain, not URL-encoded
	VersionID   string `json:"versionId,omitempty"`
	ETag        string `json:"etag,omitempty"` // as GetObject returned it; a changed object starts over
	Size        int64  `json:"size"`
	SkipRecords int64  `json:"skipRecords"`
	Part        int    `json:"part"` // the invocation number that will continue: 2 for the first continuation
}

// Continuation is the body of the message the forwarder sends to its own queue when an
// invocation stops in the middle of objects, so the next invocation starts within seconds
// at the exact record (see the README, "Large objects").
type Continuation struct {
	Objects []Checkpoint `json:"objects"`
}

// MarshalContinuation returns the message body for c.
func MarshalContinuation(c Continuation) ([]byte, error) {
	return json.Marshal(map[string]Continuation{ContinuationKey: c})
}

func parseContinuation(raw json.RawMessage) (Notification, error) {
	var c Continuation
	if err := json.Unmarshal(raw, &c); err != nil {
		return Notification{}, fmt.Errorf("continuation: %w", err)
	}
	if len(c.Objects) == 0 {
		return Notification{}, errors.New("continuation: no objects")
	}
	var n Notification
	for i, cp := range c.Objects {
		switch {
		case cp.Bucket == "" || cp.Key == "":
			return Notification{}, fmt.Errorf("continuation object %d: missing bucket or key", i)
		case cp.SkipRecords < 0 || cp.Part < 1 || cp.Size < -1:
			return Notification{}, fmt.Errorf("continuation object %d: skipRecords %d, part %d, size %d out of range", i, cp.SkipRecords, cp.Part, cp.Size)
		}
		n.Objects = append(n.Objects, Object{
			Bucket: cp.Bucket, Key: cp.Key, VersionID: cp.VersionID, ETag: cp.ETag, Size: cp.Size,
			SkipRecords: cp.SkipRecords, Part: cp.Part, EventName: "Resume", Source: SourceResume,
		})
	}
	return n, nil
}

// parse reads a body. SNS envelopes and EventBridge events are accepted only when outer is
// set: the message inside an SNS envelope must be an S3 notification or a test event.
func parse(body []byte, outer bool) (Notification, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Notification{}, errors.New("empty body")
	}
	var s shape
	if err := json.Unmarshal(body, &s); err != nil {
		return Notification{}, fmt.Errorf("decoding JSON: %w", err)
	}
	switch {
	case outer && s.Resume != nil:
		return parseContinuation(s.Resume)
	case s.Records != nil:
		return parseRecords(s.Records)
	case s.Event == "s3:TestEvent":
		return Notification{Test: true}, nil
	case outer && s.Type != "":
		return parseSNS(body)
	case outer && (s.DetailType != "" || s.Source != ""):
		return parseEventBridge(body)
	}
	return Notification{}, ErrUnknownShape
}

// s3Record is one record of an S3 event notification. It is not events.S3EventRecord
// because that cannot tell a missing size from 0, and fails the whole event on one bad key.
type s3Record struct {
	EventSource string    `json:"eventSource"`
	AWSRegion   string    `json:"awsRegion"`
	EventTime   time.Time `json:"eventTime"`
	EventName   string    `json:"eventName"`
	S3          struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      *int64 `json:"size"`
			ETag      string `json:"eTag"`
			VersionID string `json:"versionId"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

func parseRecords(raw json.RawMessage) (Notification, error) {
	var records []json.RawMessage
	if err := json.Unmarshal(raw, &records); err != nil {
		return Notification{}, fmt.Errorf("Records: %w", err)
	}
	if len(records) == 0 {
		return Notification{}, errors.New("S3 notification has no records")
	}
	n := Notification{Objects: make([]Object, 0, len(records))}
	for i, raw := range records {
		var r s3Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return Notification{}, &RecordError{i, err}
		}
		if r.EventSource != "aws:s3" {
			return Notification{}, &RecordError{i, fmt.Errorf("eventSource %q is not aws:s3", r.EventSource)}
		}
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			n.Ignored++
			continue
		}
		o := r.S3.Object
		if r.S3.Bucket.Name == "" {
			return Notification{}, &RecordError{i, errors.New("missing s3.bucket.name")}
		}
		if o.Key == "" {
			return Notification{}, &RecordError{i, errors.New("missing s3.object.key")}
		}
		key, err := decodeKey(o.Key)
		if err != nil {
			return Notification{}, &RecordError{i, err}
		}
		sz, err := objectSize(o.Size)
		if err != nil {
			return Notification{}, &RecordError{i, err}
		}
		n.Objects = append(n.Objects, Object{
			Bucket:    r.S3.Bucket.Name,
			Key:       key,
			Size:      sz,
			ETag:      strings.Trim(o.ETag, `"`),
			VersionID: o.VersionID,
			Sequencer: o.Sequencer,
			EventName: r.EventName,
			EventTime: r.EventTime,
			Region:    r.AWSRegion,
			Source:    SourceS3,
		})
	}
	return n, nil
}

func parseSNS(body []byte) (Notification, error) {
	var e events.SNSEntity
	if err := json.Unmarshal(body, &e); err != nil {
		return Notification{}, fmt.Errorf("SNS envelope: %w", err)
	}
	if e.Type != "Notification" {
		return Notification{}, fmt.Errorf("SNS message of type %q, not Notification", e.Type)
	}
	n, err := parse([]byte(e.Message), false)
	if err != nil {
		return Notification{}, fmt.Errorf("SNS message is not an S3 notification: %w", err)
	}
	for i := range n.Objects {
		n.Objects[i].Source = SourceSNS
	}
	return n, nil
}

// ebDetail is the detail of an EventBridge S3 event; aws-lambda-go has no type for it.
type ebDetail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		Size      *int64 `json:"size"`
		ETag      string `json:"etag"`
		VersionID string `json:"version-id"`
		Sequencer string `json:"sequencer"`
	} `json:"object"`
}

func parseEventBridge(body []byte) (Notification, error) {
	var e events.EventBridgeEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return Notification{}, fmt.Errorf("EventBridge event: %w", err)
	}
	if e.Source != "aws.s3" {
		return Notification{}, fmt.Errorf("EventBridge event from source %q, not aws.s3", e.Source)
	}
	switch e.DetailType {
	case "":
		return Notification{}, errors.New("EventBridge event: missing detail-type")
	case "Object Created":
	default: // "Object Deleted", "Object Restore Completed", ...
		return Notification{Ignored: 1}, nil
	}
	var d ebDetail
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return Notification{}, fmt.Errorf("EventBridge detail: %w", err)
	}
	if d.Bucket.Name == "" {
		return Notification{}, errors.New("EventBridge event: missing detail.bucket.name")
	}
	if d.Object.Key == "" {
		return Notification{}, errors.New("EventBridge event: missing detail.object.key")
	}
	key, err := decodeKey(d.Object.Key)
	if err != nil {
		key = d.Object.Key // not encoded: see the package comment
	}
	sz, err := objectSize(d.Object.Size)
	if err != nil {
		return Notification{}, fmt.Errorf("EventBridge event: %w", err)
	}
	return Notification{Objects: []Object{{
		Bucket:    d.Bucket.Name,
		Key:       key,
		Size:      sz,
		ETag:      strings.Trim(d.Object.ETag, `"`),
		VersionID: d.Object.VersionID,
		Sequencer: d.Object.Sequencer,
		EventName: e.DetailType,
		EventTime: e.Time,
		Region:    e.Region,
		Source:    SourceEventBridge,
	}}}, nil
}

// decodeKey undoes the form encoding of a key in an S3 event notification. S3 keys are
// UTF-8, so a key that decodes to anything else is an error too.
func decodeKey(s string) (string, error) {
	key, err := url.QueryUnescape(s)
	if err != nil {
		return "", fmt.Errorf("s3.object.key %q: %w", s, err)
	}
	if !utf8.ValidString(key) {
		return "", fmt.Errorf("s3.object.key %q is not UTF-8 once decoded", s)
	}
	return key, nil
}

// objectSize is the size a notification gives, or -1 when it gives none.
func objectSize(p *int64) (int64, error) {
	switch {
	case p == nil:
		return -1, nil
	case *p < 0:
		return 0, fmt.Errorf("object size %d is negative", *p)
	}
	return *p, nil
}
