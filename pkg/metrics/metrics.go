// Package metrics counts what one invocation (or one local replay) did and writes it
// as a CloudWatch Embedded Metric Format line, so metrics cost no API call and need no
// cloudwatch:PutMetricData permission: CloudWatch Logs extracts them from the log.
package metrics

import (
	"encoding/json"
	"io"
	"time"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "VpcFlowIpfix"

// Counts are the per-invocation totals. The JSON names are the summary line of
// `bootstrap replay` and the metric names of the EMF line.
type Counts struct {
	Messages       uint64 `json:"messages"`        // SQS messages received
	FailedMessages uint64 `json:"failed_messages"` // reported in batchItemFailures
	Objects        uint64 `json:"objects"`         // objects read to the end
	FailedObjects  uint64 `json:"failed_objects"`  // objects that failed (corrupt, missing, denied, send failure, deadline)
	SkippedObjects uint64 `json:"skipped_objects"` // not matching the file pattern, or empty
	Records        uint64 `json:"records"`         // flow log lines read, header excluded, malformed included
	Exported       uint64 `json:"exported"`        // flow records put on the wire
	NoData         uint64 `json:"nodata"`
	SkipData       uint64 `json:"skipdata"`
	Malformed      uint64 `json:"malformed"`
	Datagrams      uint64 `json:"datagrams"` // template messages included
	Bytes          uint64 `json:"bytes"`     // IPFIX payload bytes
	SendErrors     uint64 `json:"send_errors"`
	// Resuming large objects across invocations.
	ResumedObjects   uint64  `json:"resumed_objects"`            // objects started from a checkpoint
	RestartedObjects uint64  `json:"restarted_objects"`          // checkpoints discarded: the object changed
	SkippedOnResume  uint64  `json:"skipped_on_resume"`          // records read past: an earlier part sent them
	Continuations    uint64  `json:"continuations"`              // continuation messages queued
	PartsPerObject   []int   `json:"parts_per_object,omitempty"` // invocations each finished object took
	PacingWaitMs     float64 `json:"pacing_wait_ms"`
	// LagSeconds is now minus the newest flow end seen: how far behind real time the
	// collector is. 0 when no flow was exported.
	LagSeconds float64 `json:"lag_seconds"`
}

// Add adds o to c; LagSeconds keeps the smaller non-zero lag (the newest flow).
func (c *Counts) Add(o Counts) {
	c.Messages += o.Messages
	c.FailedMessages += o.FailedMessages
	c.Objects += o.Objects
	c.FailedObjects += o.FailedObjects
	c.SkippedObjects += o.SkippedObjects
	c.Records += o.Records
	c.Exported += o.Exported
	c.NoData += o.NoData
	c.SkipData += o.SkipData
	c.Malformed += o.Malformed
	c.Datagrams += o.Datagrams
	c.Bytes += o.Bytes
	c.SendErrors += o.SendErrors
	c.ResumedObjects += o.ResumedObjects
	c.RestartedObjects += o.RestartedObjects
	c.SkippedOnResume += o.SkippedOnResume
	c.Continuations += o.Continuations
	c.PartsPerObject = append(c.PartsPerObject, o.PartsPerObject...)
	c.PacingWaitMs += o.PacingWaitMs
	if o.LagSeconds != 0 && (c.LagSeconds == 0 || o.LagSeconds < c.LagSeconds) {
		c.LagSeconds = o.LagSeconds
	}
}

type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

var definitions = []metricDef{
	{"Messages", "Count"}, {"FailedMessages", "Count"}, {"Objects", "Count"},
	{"FailedObjects", "Count"}, {"SkippedObjects", "Count"}, {"Records", "Count"},
	{"Exported", "Count"}, {"NoData", "Count"}, {"SkipData", "Count"},
	{"Malformed", "Count"}, {"Datagrams", "Count"}, {"Bytes", "Bytes"},
	{"SendErrors", "Count"}, {"PacingWait", "Milliseconds"}, {"Lag", "Seconds"},
	{"ResumedObjects", "Count"}, {"RestartedObjects", "Count"}, {"SkippedOnResume", "Count"},
	{"Continuations", "Count"},
}

// WriteEMF writes c as one EMF JSON line with the dimension FunctionName.
func WriteEMF(w io.Writer, c Counts, functionName string, now time.Time) error {
	defs := definitions
	if len(c.PartsPerObject) > 0 {
		defs = append(defs[:len(defs):len(defs)], metricDef{"PartsPerObject", "Count"})
	}
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  Namespace,
				"Dimensions": [][]string{{"FunctionName"}},
				"Metrics":    defs,
			}},
		},
		"FunctionName":     functionName,
		"Messages":         c.Messages,
		"FailedMessages":   c.FailedMessages,
		"Objects":          c.Objects,
		"FailedObjects":    c.FailedObjects,
		"SkippedObjects":   c.SkippedObjects,
		"Records":          c.Records,
		"Exported":         c.Exported,
		"NoData":           c.NoData,
		"SkipData":         c.SkipData,
		"Malformed":        c.Malformed,
		"Datagrams":        c.Datagrams,
		"Bytes":            c.Bytes,
		"SendErrors":       c.SendErrors,
		"PacingWait":       c.PacingWaitMs,
		"Lag":              c.LagSeconds,
		"ResumedObjects":   c.ResumedObjects,
		"RestartedObjects": c.RestartedObjects,
		"SkippedOnResume":  c.SkippedOnResume,
		"Continuations":    c.Continuations,
	}
	if len(c.PartsPerObject) > 0 {
		// EMF takes an array: one value per finished object, so CloudWatch gives the
		// average and maximum parts per object. Declared only with values: an empty
		// array is not a value.
		doc["PartsPerObject"] = c.PartsPerObject
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}
