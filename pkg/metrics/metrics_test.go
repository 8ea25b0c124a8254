package metrics_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/metrics"
)

func TestWriteEMF(t *testing.T) {
	var c metrics.Counts
	c.Add(metrics.Counts{Objects: 1, Exported: 10, LagSeconds: 700})
	c.Add(metrics.Counts{Objects: 2, Exported: 5, LagSeconds: 650, PacingWaitMs: 1.5})
	c.Add(metrics.Counts{Objects: 1})
	var b bytes.Buffer
	if err := metrics.WriteEMF(&b, c, "fn", time.UnixMilli(1796313900123)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		FunctionName string
		Objects      float64
		Exported     float64
		Lag          float64
		PacingWait   float64
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Errorf("not one line: %q", b.String())
	}
	m := doc.AWS.CloudWatchMetrics[0]
	if doc.AWS.Timestamp != 1796313900123 || m.Namespace != metrics.Namespace || m.Dimensions[0][0] != "FunctionName" || doc.FunctionName != "fn" {
		t.Errorf("envelope %+v", doc)
	}
	if doc.Objects != 4 || doc.Exported != 15 || doc.Lag != 650 || doc.PacingWait != 1.5 {
		t.Errorf("values %+v", doc)
	}
	// Every declared metric has a value in the line, or CloudWatch drops it silently.
	var values map[string]any
	json.Unmarshal(b.Bytes(), &values)
	for _, def := range m.Metrics {
		if _, ok := values[def.Name]; !ok {
			t.Errorf("metric %s declared without a value", def.Name)
		}
	}
}

func TestPartsPerObjectOnlyWithValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []int
		want  string
	}{
		{"none finished", nil, ""},
		{"two finished", []int{1, 4}, "[1,4]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := metrics.WriteEMF(&b, metrics.Counts{PartsPerObject: tc.parts}, "fn", time.Unix(0, 0)); err != nil {
				t.Fatal(err)
			}
			var doc map[string]json.RawMessage
			json.Unmarshal(b.Bytes(), &doc)
			declared := bytes.Contains(doc["_aws"], []byte(`"PartsPerObject"`))
			if got := string(doc["PartsPerObject"]); got != tc.want || declared != (tc.want != "") {
				t.Errorf("PartsPerObject %q, declared %v: %s", got, declared, b.String())
			}
		})
	}
}
