package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/metrics"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/pacer"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/udpsender"
)

// app is everything that survives warm invocations: the socket, the exporter's
// sequence number and template clock, the pacer. Built once at cold start, used by the
// one goroutine the Lambda runtime calls the handler on.
type app struct {
	cfg       Config
	log       *slog.Logger
	metricsW  io.Writer
	fnName    string
	sender    *udpsender.Sender
	pacer     *pacer.Pacer
	exporter  *exporter.Exporter
	forwarder *forwarder.Forwarder
	domain    uint32
}

// newApp wires the pipeline. It does no network I/O: the UDP socket is dialled on the
// first send and the AWS credentials are resolved on the first S3 call.
func newApp(ctx context.Context, cfg Config, log *slog.Logger, metricsW io.Writer, fnName string, s3api objectreader.GetObjectAPI) (*app, error) {
	sender, err := udpsender.New(udpsender.Options{Host: cfg.CollectorHost, Port: cfg.CollectorPort, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	domain := cfg.domainID()
	// Burst: the most records one datagram holds (the smallest record is 46 bytes), so
	// the pacer never lets more than one datagram run ahead of schedule.
	burst := (cfg.MaxDatagramBytes - ipfix.HeaderLen - ipfix.SetHeaderLen) / 46
	// MaxLag: timers oversleep by up to a few milliseconds; at high rates one datagram's
	// interval is shorter than that, and without catching up the schedule would keep
	// restarting (a third of 100,000 EPS was measured). 5 ms of catch-up is at most
	// 12 records at the default 2,500 EPS per instance (docs/performance.md).
	p := pacer.New(pacer.Options{EPS: pacer.PerInstanceEPS(cfg.EPSLimit, cfg.MaxConcurrency), Burst: burst, MaxLag: 5 * time.Millisecond})
	exp, err := exporter.New(sender, p, exporter.Options{
		DomainID:         domain,
		MaxMessageSize:   cfg.MaxDatagramBytes,
		TemplateRefresh:  cfg.TemplateRefresh,
		EnterpriseNumber: cfg.EnterpriseNumber,
	})
	if err != nil {
		return nil, err
	}
	var awsCfg aws.Config
	if s3api == nil || cfg.QueueURL != "" {
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("AWS configuration: %w", err)
		}
	}
	if s3api == nil {
		s3api = newS3Client(awsCfg, cfg)
	}
	var continuer forwarder.Continuer
	if cfg.QueueURL != "" {
		continuer = sqsContinuer{client: newSQSClient(awsCfg, cfg), queueURL: cfg.QueueURL}
	} else {
		log.Warn("QUEUE_URL is not set: an object that cannot finish in one invocation is retried from its start (records before the stop arrive twice)")
	}
	fw := forwarder.New(objectreader.S3{Client: s3api}, exp, forwarder.Options{
		FilePattern:           cfg.FilePattern,
		PreferPacketAddresses: cfg.PreferPacketAddresses,
		EnterpriseNumber:      cfg.EnterpriseNumber,
		SendErrors:            func() uint64 { return sender.Stats().SendErrors },
		Logger:                log,
		Continuer:             continuer,
	})
	log.Info("ready", "collector", fmt.Sprintf("%s:%d", cfg.CollectorHost, cfg.CollectorPort),
		"eps_limit", cfg.EPSLimit, "max_concurrency", cfg.MaxConcurrency,
		"eps_per_instance", pacer.PerInstanceEPS(cfg.EPSLimit, cfg.MaxConcurrency),
		"observation_domain_id", domain, "max_datagram_bytes", cfg.MaxDatagramBytes,
		"enterprise_number", cfg.EnterpriseNumber, "file_pattern", cfg.FilePattern.String())
	return &app{cfg: cfg, log: log, metricsW: metricsW, fnName: fnName, sender: sender, pacer: p, exporter: exp, forwarder: fw, domain: domain}, nil
}

// newS3Client builds the S3 client: default credential chain (the function's role),
// optionally an assumed role in the bucket's account, optionally a custom endpoint with
// path-style addressing. The SDK's HTTP client honours HTTPS_PROXY and NO_PROXY.
// Nothing here touches the network: credentials are resolved on the first call.
func newS3Client(awsCfg aws.Config, cfg Config) *s3.Client {
	if cfg.AssumeRoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.AssumeRoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "vpcflow-ipfix"
			if cfg.ExternalID != "" {
				o.ExternalID = aws.String(cfg.ExternalID)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.S3EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.S3EndpointURL)
			o.UsePathStyle = true
		}
	})
}

// newSQSClient talks to the function's own queue with the function's own role (the
// queue is in this account even when the bucket is not).
func newSQSClient(awsCfg aws.Config, cfg Config) *sqs.Client {
	return sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.SQSEndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpointURL)
		}
	})
}

// sqsContinuer queues continuation messages on the function's own queue.
type sqsContinuer struct {
	client interface {
		SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	}
	queueURL string
}

func (c sqsContinuer) Continue(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(c.queueURL), MessageBody: aws.String(string(body))})
	return err
}

// handle is the Lambda handler: each message stands alone, and every message that did
// not finish is reported in BatchItemFailures so SQS delivers it again.
func (a *app) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := time.Now()
	// The function was frozen since the last invocation: no pacing credit carries over.
	a.pacer.Restart()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-a.cfg.DeadlineMargin))
		defer cancel()
	}
	var counts metrics.Counts
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		counts.Messages++
		if err := a.handleOne(ctx, m, &counts); err != nil {
			counts.FailedMessages++
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			a.log.Error("message failed; SQS will deliver it again", "message_id", m.MessageId, "error", err.Error())
		}
	}
	if err := metrics.WriteEMF(a.metricsW, counts, a.fnName, time.Now()); err != nil {
		a.log.Error("writing metrics", "error", err.Error())
	}
	a.log.Info("invocation done", "messages", counts.Messages, "failed_messages", counts.FailedMessages,
		"exported", counts.Exported, "duration_ms", time.Since(start).Milliseconds())
	return resp, nil
}

// handleOne turns a panic into a failure of this message only.
func (a *app) handleOne(ctx context.Context, m events.SQSMessage, counts *metrics.Counts) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// Records of the failed message waiting in a half-built datagram must not go
			// out with the next message's.
			a.exporter.Discard()
			err = fmt.Errorf("internal error: %v\n%s", r, debug.Stack())
		}
	}()
	if m.MessageId == "" {
		return fmt.Errorf("message without messageId")
	}
	return a.forwarder.HandleMessage(ctx, m.MessageId, []byte(m.Body), counts)
}
