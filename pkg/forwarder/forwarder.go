// Package forwarder is the orchestrator, the one package that knows every stage:
// notification -> object reference -> S3 stream -> gunzip -> flow log records ->
// IPFIX flows -> exporter (pacing, sending). The Lambda handler and the local command
// line both call it, so they run exactly the same code path.
//
// Each SQS message stands alone: HandleMessage returns an error only for that message,
// and the caller reports it in batchItemFailures so SQS retries it and finally moves it
// to the dead-letter queue.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/flowlog"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/metrics"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/notify"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/pacer"
)

// Opener opens an S3 object as decompressed text; with ifMatch, an object whose ETag
// differs fails with objectreader.ErrChanged.
type Opener interface {
	Open(ctx context.Context, bucket, key, versionID, ifMatch string) (io.ReadCloser, objectreader.Info, error)
}

// Exporter takes flows and puts them on the wire.
type Exporter interface {
	Add(ctx context.Context, l ipfix.Layout, f *ipfix.Flow) error
	Flush(ctx context.Context) error
	Discard()
	Stats() exporter.Stats
}

// Continuer puts a continuation message (a notify.Continuation body) on the queue the
// function reads, so that the next invocation resumes an object within seconds.
type Continuer interface {
	Continue(ctx context.Context, body []byte) error
}

// DefaultFilePattern matches the objects VPC Flow Logs deliver in text format.
const DefaultFilePattern = `\.log\.gz$`

// maxMalformedLogs bounds the malformed-line log lines per object; the rest are counted
// and summarised in one line, so a garbage object cannot flood CloudWatch Logs.
const maxMalformedLogs = 10

// Options configure a Forwarder.
type Options struct {
	// FilePattern selects objects by decoded key; default DefaultFilePattern.
	FilePattern *regexp.Regexp
	// PreferPacketAddresses uses pkt-srcaddr/pkt-dstaddr when the format has them.
	PreferPacketAddresses bool
	// EnterpriseNumber enables the enterprise-specific AWS elements; must match the exporter's.
	EnterpriseNumber uint32
	// SendErrors reports the sender's cumulative error count, for the metrics.
	SendErrors func() uint64
	Logger     *slog.Logger
	// Now is the clock for the lag metric; default time.Now.
	Now func() time.Time
	// Continuer, when set, resumes unfinished objects in a new message (see HandleMessage);
	// without it an unfinished object fails its message and is sent again from the start.
	Continuer Continuer
}

// Forwarder runs the pipeline; one per Lambda instance, used by one goroutine.
type Forwarder struct {
	opener   Opener
	exporter Exporter
	opts     Options
	reader   *flowlog.Reader
	rec      flowlog.Record
	flow     ipfix.Flow
	tpath    [1]byte
}

// New returns a Forwarder.
func New(opener Opener, exp Exporter, opts Options) *Forwarder {
	if opts.FilePattern == nil {
		opts.FilePattern = regexp.MustCompile(DefaultFilePattern)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SendErrors == nil {
		opts.SendErrors = func() uint64 { return 0 }
	}
	return &Forwarder{
		opener:   opener,
		exporter: exp,
		opts:     opts,
		reader:   flowlog.NewReader(nil, flowlog.Options{PreferPacketAddresses: opts.PreferPacketAddresses}),
	}
}

// Job says where in an object to begin. It is the seam for resuming a large object in
// a later invocation: SkipRecords flow records (those that would be exported) are read
// and not sent again.
type Job struct {
	SkipRecords int64
	// IfMatch is the ETag the checkpoint was taken in; an object with another ETag starts
	// over (it was replaced since, and its records are not the ones counted).
	IfMatch string
	// VersionID pins the object version (versioned buckets).
	VersionID string
}

// Result is what forwarding one object did.
type Result struct {
	Counts metrics.Counts
	// Sent is the number of flow records of this object put on the wire in this attempt.
	Sent int64
	// Position is where a later attempt begins: the records of this object on the wire
	// in this and earlier attempts (SkipRecords + Sent, or Sent after a restart).
	Position int64
	// ETag and VersionID identify what was read, for the checkpoint.
	ETag, VersionID string
	// Restarted: the object changed since the checkpoint and was read from the start.
	Restarted bool
}

// HandleMessage processes every object one SQS message body announces, adding to
// counts. The error, if any, fails this message only: SQS delivers it again later and,
// after maxReceiveCount attempts, moves it to the dead-letter queue.
//
// With a Continuer, an object that could not finish (the deadline came, or a failure
// after some of its records went out) is not failed: its checkpoint goes to the queue in
// a continuation message and this message succeeds, so the next invocation starts within
// seconds at the exact record. The message fails instead when it made no progress at all
// and something other than the deadline stopped it (a corrupt object, a dead collector):
// that is what lets a poison object reach the dead-letter queue, and a dead collector be
// retried with SQS's backoff rather than in a tight loop.
func (f *Forwarder) HandleMessage(ctx context.Context, messageID string, body []byte, counts *metrics.Counts) error {
	log := f.opts.Logger.With("message_id", messageID)
	n, err := notify.Parse(body)
	if err != nil {
		return fmt.Errorf("message %s: %w", messageID, err)
	}
	if n.Test {
		log.Info("s3:TestEvent acknowledged and ignored")
		return nil
	}
	if n.Ignored > 0 {
		log.Info("notification records that are not ObjectCreated ignored", "count", n.Ignored)
	}
	var (
		unfinished []notify.Checkpoint
		errs       []error
		progress   bool // an object finished or records went out
		hardFail   bool // something other than the deadline stopped an object without progress
	)
	for _, obj := range n.Objects {
		olog := log.With("bucket", obj.Bucket, "key", obj.Key)
		if !f.opts.FilePattern.MatchString(obj.Key) {
			olog.Info("object skipped: key does not match the file pattern", "pattern", f.opts.FilePattern.String())
			counts.SkippedObjects++
			continue
		}
		if obj.Size == 0 {
			olog.Info("object skipped: empty")
			counts.SkippedObjects++
			continue
		}
		part := max(obj.Part, 1)
		cp := notify.Checkpoint{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, ETag: obj.ETag,
			Size: obj.Size, SkipRecords: obj.SkipRecords, Part: part}
		if err := ctx.Err(); err != nil {
			unfinished = append(unfinished, cp)
			errs = append(errs, fmt.Errorf("s3://%s/%s: not started before the deadline: %w", obj.Bucket, obj.Key, err))
			continue
		}
		if obj.SkipRecords > 0 {
			counts.ResumedObjects++
		}
		sendErrors := f.opts.SendErrors()
		res, err := f.ForwardS3(ctx, obj.Bucket, obj.Key, Job{SkipRecords: obj.SkipRecords, IfMatch: obj.ETag, VersionID: obj.VersionID})
		counts.Add(res.Counts)
		if res.Restarted {
			counts.RestartedObjects++
		}
		if err == nil {
			counts.Objects++
			counts.PartsPerObject = append(counts.PartsPerObject, part)
			progress = true
			if part > 1 {
				olog.Info("object finished", "parts", part, "records_sent", res.Position)
			}
			continue
		}
		if res.Sent > 0 {
			progress = true
		}
		deadline := (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pacer.ErrDeadline)) && f.opts.SendErrors() == sendErrors
		if res.Sent == 0 && !deadline {
			hardFail = true
		}
		cp.SkipRecords, cp.ETag, cp.Part = res.Position, res.ETag, part+1
		if res.VersionID != "" {
			cp.VersionID = res.VersionID
		}
		unfinished = append(unfinished, cp)
		errs = append(errs, err)
		olog.Warn("object stopped", "error", err.Error(), "sent", res.Sent, "position", res.Position, "part", part)
	}
	if len(unfinished) == 0 {
		return nil
	}
	if f.opts.Continuer == nil || (hardFail && !progress) {
		counts.FailedObjects += uint64(len(unfinished))
		return errors.Join(errs...)
	}
	// One continuation message per object keeps each object's retries and dead-lettering
	// its own.
	for i, cp := range unfinished {
		body, err := notify.MarshalContinuation(notify.Continuation{Objects: []notify.Checkpoint{cp}})
		if err == nil {
			// The continuation must go out even though the work context is past its
			// deadline: the margin before the function's real deadline is for this.
			err = f.opts.Continuer.Continue(context.WithoutCancel(ctx), body)
		}
		if err != nil {
			counts.FailedObjects += uint64(len(unfinished) - i)
			return errors.Join(append(errs, fmt.Errorf("continuation for s3://%s/%s could not be queued, so the message will be retried from its start: %w", cp.Bucket, cp.Key, err))...)
		}
		counts.Continuations++
		log.Info("object continues in a new message", "bucket", cp.Bucket, "key", cp.Key, "skip_records", cp.SkipRecords, "part", cp.Part)
	}
	return nil
}

// ForwardS3 forwards one S3 object from job.SkipRecords on. An object that changed since
// the checkpoint (job.IfMatch) is read again from the start, and the log says so.
func (f *Forwarder) ForwardS3(ctx context.Context, bucket, key string, job Job) (Result, error) {
	name := "s3://" + bucket + "/" + key
	ifMatch := ""
	if job.SkipRecords > 0 && job.VersionID == "" {
		ifMatch = job.IfMatch
	}
	rc, info, err := f.opener.Open(ctx, bucket, key, job.VersionID, ifMatch)
	restarted := false
	if errors.Is(err, objectreader.ErrChanged) {
		f.opts.Logger.Warn("object changed since the checkpoint: starting over from its first record",
			"object", name, "checkpoint_etag", job.IfMatch, "skipped_records_discarded", job.SkipRecords)
		job.SkipRecords = 0
		restarted = true
		rc, info, err = f.opener.Open(ctx, bucket, key, job.VersionID, "")
	}
	if err != nil {
		return Result{Position: job.SkipRecords, ETag: job.IfMatch, VersionID: job.VersionID, Restarted: restarted}, err
	}
	defer rc.Close()
	res, err := f.Forward(ctx, rc, name, job)
	res.ETag, res.VersionID, res.Restarted = info.ETag, info.VersionID, restarted
	return res, err
}

// Forward reads flow log text from r and exports its flows; name identifies the object
// in logs. Malformed lines are counted, logged (a few) and skipped. An error that ends
// the object (unreadable or corrupt data, an unusable header, a send failure, the
// deadline) is returned after the records before it were flushed where possible.
func (f *Forwarder) Forward(ctx context.Context, r io.Reader, name string, job Job) (res Result, err error) {
	log := f.opts.Logger.With("object", name)
	before := f.exporter.Stats()
	sendErrorsBefore := f.opts.SendErrors()
	var newestEnd int64
	defer func() {
		after := f.exporter.Stats()
		res.Counts.Exported = after.Records - before.Records
		res.Counts.Datagrams = after.Datagrams - before.Datagrams
		res.Counts.Bytes = after.Bytes - before.Bytes
		res.Counts.PacingWaitMs = float64(after.PacingWait-before.PacingWait) / float64(time.Millisecond)
		res.Counts.SendErrors = f.opts.SendErrors() - sendErrorsBefore
		res.Sent = int64(res.Counts.Exported)
		res.Position = job.SkipRecords + res.Sent
		if newestEnd > 0 && res.Counts.Exported > 0 {
			res.Counts.LagSeconds = f.opts.Now().Sub(time.Unix(newestEnd, 0)).Seconds()
		}
		if res.Counts.Malformed > maxMalformedLogs {
			log.Warn("more malformed lines skipped", "not_logged", res.Counts.Malformed-maxMalformedLogs, "malformed", res.Counts.Malformed)
		}
	}()

	// Records not yet on the wire when the object stops are dropped, not carried into
	// the next object: the checkpoint counts exactly what was sent.
	defer func() {
		if err != nil {
			f.exporter.Discard()
		}
	}()
	f.reader.Reset(r)
	var base ipfix.Layout
	var format *flowlog.Format
	skip := job.SkipRecords
	for i := 0; ; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("%s: stopped at line %d: %w", name, f.reader.LinesRead(), err)
			}
		}
		err := f.reader.Next(&f.rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *flowlog.LineError
			if errors.As(err, &le) {
				res.Counts.Records++
				res.Counts.Malformed++
				if res.Counts.Malformed <= maxMalformedLogs {
					log.Warn("malformed line skipped", "line", le.Line, "reason", le.Reason)
				}
				continue
			}
			// The data before the failure was good: send it, then fail the object.
			flushErr := f.exporter.Flush(ctx)
			return res, errors.Join(fmt.Errorf("%s: %w", name, err), flushErr)
		}
		if format == nil {
			format = f.reader.Format()
			base = f.baseLayout(format)
			if unknown := format.Unknown(); len(unknown) > 0 {
				log.Info("unknown flow log fields ignored", "fields", unknown)
			}
		}
		res.Counts.Records++
		switch f.rec.Status {
		case flowlog.StatusNoData:
			res.Counts.NoData++
			continue
		case flowlog.StatusSkipData:
			res.Counts.SkipData++
			continue
		}
		if skip > 0 {
			skip--
			res.Counts.SkippedOnResume++
			continue
		}
		l := f.toFlow(base)
		if err := f.exporter.Add(ctx, l, &f.flow); err != nil {
			if errors.Is(err, exporter.ErrRecordTooLarge) {
				res.Counts.Malformed++
				log.Warn("record too large for one message, skipped", "line", f.rec.Line, "error", err.Error())
				continue
			}
			return res, fmt.Errorf("%s: line %d: %w", name, f.rec.Line, err)
		}
		if f.rec.End > newestEnd {
			newestEnd = f.rec.End
		}
	}
	if err := f.exporter.Flush(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// enterpriseFields maps enterprise elements to their flow log columns.
var enterpriseFields = [ipfix.NumEnterprise]flowlog.Field{
	ipfix.EntAccountID:        flowlog.FieldAccountID,
	ipfix.EntVPCID:            flowlog.FieldVPCID,
	ipfix.EntSubnetID:         flowlog.FieldSubnetID,
	ipfix.EntInstanceID:       flowlog.FieldInstanceID,
	ipfix.EntRegion:           flowlog.FieldRegion,
	ipfix.EntAZID:             flowlog.FieldAZID,
	ipfix.EntAction:           flowlog.FieldAction,
	ipfix.EntLogStatus:        flowlog.FieldLogStatus,
	ipfix.EntTrafficPath:      flowlog.FieldTrafficPath,
	ipfix.EntPktSrcAWSService: flowlog.FieldPktSrcAWSService,
	ipfix.EntPktDstAWSService: flowlog.FieldPktDstAWSService,
}

// baseLayout is the layout every record of the format carries: the variable-length
// elements whose column exists. Fixed-width optional elements (tcpControlBits,
// flowDirection, traffic path) join per record, only when the record has a value,
// because a fixed-width element has no way to say "absent" and we never invent a value.
func (f *Forwarder) baseLayout(format *flowlog.Format) ipfix.Layout {
	var l ipfix.Layout
	if format.Has(flowlog.FieldInterfaceID) {
		l |= ipfix.LayoutInterfaceName
	}
	if f.opts.EnterpriseNumber != 0 {
		for e, field := range enterpriseFields {
			if ipfix.EnterpriseElements[e].Length == ipfix.VariableLength && format.Has(field) {
				l |= ipfix.LayoutEnterprise(ipfix.Enterprise(e))
			}
		}
	}
	return l
}

// toFlow maps the current record to f.flow and returns its layout.
func (f *Forwarder) toFlow(base ipfix.Layout) ipfix.Layout {
	r := &f.rec
	fl := &f.flow
	l := base
	if !r.Src.Is4() {
		l |= ipfix.LayoutIPv6
	}
	fl.Src, fl.Dst = r.Src, r.Dst
	fl.SrcPort, fl.DstPort = r.SrcPort, r.DstPort
	fl.Protocol = r.Protocol
	fl.Packets, fl.Octets = r.Packets, r.Bytes
	fl.StartMillis = uint64(r.Start) * 1000
	fl.EndMillis = uint64(r.End) * 1000
	switch r.Action {
	case flowlog.ActionAccept:
		fl.ForwardingStatus = ipfix.ForwardingAccepted
	case flowlog.ActionReject:
		fl.ForwardingStatus = ipfix.ForwardingDropped
	default:
		fl.ForwardingStatus = ipfix.ForwardingUnknown
	}
	if r.HasTCPFlags {
		l |= ipfix.LayoutTCPFlags
		fl.TCPFlags = r.TCPFlags
	}
	switch r.Direction {
	case flowlog.DirectionIngress:
		l |= ipfix.LayoutDirection
		fl.Direction = ipfix.DirectionIngress
	case flowlog.DirectionEgress:
		l |= ipfix.LayoutDirection
		fl.Direction = ipfix.DirectionEgress
	}
	fl.InterfaceName = r.Text(flowlog.FieldInterfaceID)
	if f.opts.EnterpriseNumber != 0 {
		for e, field := range enterpriseFields {
			fl.Enterprise[e] = r.Text(field)
		}
		if r.TrafficPath != 0 {
			f.tpath[0] = r.TrafficPath
			fl.Enterprise[ipfix.EntTrafficPath] = f.tpath[:]
			l |= ipfix.LayoutEnterprise(ipfix.EntTrafficPath)
		}
	}
	return l
}
