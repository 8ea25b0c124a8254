package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// One app holds every stack under test, so the whole package synthesizes
// once. jsii is not safe across goroutines: no t.Parallel here.
var (
	app       awscdk.App
	stacks    = map[string]awscdk.Stack{}
	templates = map[string]assertions.Template{}
	setupErr  error
)

// Scenarios: the cdk.json example, every option switched on, and a central
// bucket in another account with the reader role stack.
var scenarios = map[string]map[string]any{
	"Default": base(),
	"Options": with(
		"vpcIds", "vpc-0123456789abcdef0,vpc-0aaaaaaaaaaaaaaaa",
		"lambdaVpcId", "vpc-0123456789abcdef0",
		"collectorHost", "qradar.example.com", "collectorCidr", "10.20.30.0/24", "collectorPort", "4739",
		"kmsKey", "create", "newBucketName", "acme-vpc-flow-logs", "expiryDays", "7",
		"trafficType", "REJECT", "aggregationInterval", "60",
		"logFormat", "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${pkt-srcaddr} ${pkt-dstaddr}",
		"hiveCompatiblePartitions", "true", "perHourPartition", "true", "flowLogPrefix", "flows",
		"createAlarmTopic", "true", "alarmEmail", "noc@example.com",
		"batchSize", "100", "batchingWindowSeconds", "5", "maxConcurrency", "4", "epsLimit", "8000",
		"memorySize", "1024", "timeoutSeconds", "600", "maxReceiveCount", "3", "logRetentionDays", "30",
		"createS3GatewayEndpoint", "false", "httpsEgressCidrs", "10.0.0.0/16",
		"functionRoleName", "vpcflow-ipfix-forwarder-options",
		"s3EndpointUrl", "https://bucket.vpce-0123456789abcdef0.s3.eu-west-1.vpce.amazonaws.com",
		"enterpriseNumber", "32473", "observationDomainId", "7", "preferPacketAddresses", "false", "logLevel", "debug",
	),
	"Central": with(
		"existingBucketName", "central-flow-logs", "existingBucketAccount", "210987654321",
		"kmsKey", "arn:aws:kms:eu-west-1:210987654321:key/0b5e2a8e-6d0c-4d4f-9c1e-3f1a2b3c4d5e",
		"assumeRoleArn", "arn:aws:iam::210987654321:role/vpcflow-ipfix-reader", "externalId", "vpcflow-ipfix-123456789012",
		"readerRoleStack", "true", "forwarderAccount", "123456789012",
		"functionRoleName", "vpcflow-ipfix-forwarder-central",
		"resume", "false",
	),
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "vpcflow-ipfix-asset-")
		if err != nil {
			setupErr = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		// A stand-in for dist/bootstrap: the stack only packages it.
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			setupErr = err
			return m.Run()
		}
		setupErr = build(dir)
		return m.Run()
	}()
	jsii.Close()
	os.Exit(code)
}

// build synthesizes all scenarios into one app. Built-in CloudFormation
// validation is off here (it costs seconds per synth); `make synth` keeps it.
func build(assetDir string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synth panicked: %v", r)
		}
	}()
	app = awscdk.NewApp(&awscdk.AppProps{
		Context:                         ptr(FeatureFlags()),
		BuiltinCloudFormationValidation: jsii.Bool(false),
		Outdir:                          jsii.String(filepath.Join(assetDir, "cdk.out")),
	})
	for _, name := range []string{"Default", "Options", "Central"} {
		cfg, err := LoadConfig(MapGetter(scenarios[name]))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		stacks[name] = NewForwarderStack(app, name, &ForwarderStackProps{Config: cfg, AssetPath: assetDir}).Stack
		if cfg.ReaderRoleStack {
			stacks["Reader"] = NewReaderRoleStack(app, "Reader", &ReaderRoleStackProps{Config: cfg})
		}
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true), Reports: jsii.Bool(false)}), nil)
	for name, st := range stacks {
		templates[name] = assertions.Template_FromStack(st, nil)
	}
	return nil
}

// check runs one assertion and turns its panic into a test failure.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func tmpl(t *testing.T, name string) assertions.Template {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
	return templates[name]
}

// resources returns the resources of one type as plain JSON, with every
// Fn::Join and Ref flattened into a string (see flat) for substring checks.
func resources(t *testing.T, name, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range *tmpl(t, name).FindResources(jsii.String(typ), nil) {
		out = append(out, flatten(*r).(map[string]any))
	}
	return out
}

// flatten turns {"Fn::Join": ["", [...]]} into one string and {"Ref": "X"}
// into "${X}", so ARNs built from tokens compare as strings.
func flatten(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if j, ok := t["Fn::Join"].([]any); ok && len(j) == 2 {
			var b strings.Builder
			for _, p := range j[1].([]any) {
				fmt.Fprint(&b, flatten(p))
			}
			return b.String()
		}
		if r, ok := t["Ref"].(string); ok && len(t) == 1 {
			return "${" + r + "}"
		}
		if g, ok := t["Fn::GetAtt"].([]any); ok && len(t) == 1 {
			return fmt.Sprintf("${%v.%v}", g[0], g[1])
		}
		out := map[string]any{}
		for k, e := range t {
			out[k] = flatten(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = flatten(e)
		}
		return out
	}
	return v
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func obj(kv ...any) *map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return &m
}

func like(kv ...any) assertions.Matcher { return assertions.Match_ObjectLike(obj(kv...)) }
func arrayWith(xs ...any) assertions.Matcher {
	return assertions.Match_ArrayWith(&xs)
}

const (
	accountObjects = "arn:${AWS::Partition}:s3:::vpcflow-ipfix-${AWS::AccountId}-${AWS::Region}/vpc-flow-logs/AWSLogs/${AWS::AccountId}/*"
	defaultBucket  = "arn:${AWS::Partition}:s3:::vpcflow-ipfix-${AWS::AccountId}-${AWS::Region}"
)

func TestNagAwsSolutionsClean(t *testing.T) {
	for _, name := range []string{"Default", "Options", "Central", "Reader"} {
		tmpl(t, name)
		ann := assertions.Annotations_FromStack(stacks[name])
		re := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		for _, m := range *ann.FindError(jsii.String("*"), re) {
			t.Errorf("%s: nag error at %s: %v", name, *m.Id, m.Entry.Data)
		}
		for _, m := range *ann.FindWarning(jsii.String("*"), re) {
			t.Errorf("%s: nag warning at %s: %v", name, *m.Id, m.Entry.Data)
		}
		for _, m := range *ann.FindError(jsii.String("*"), assertions.Match_AnyValue()) {
			t.Errorf("%s: error at %s: %v", name, *m.Id, m.Entry.Data)
		}
	}
}

// TestNagSuppressionsHaveReasons: every suppression is specific.
func TestNagSuppressionsHaveReasons(t *testing.T) {
	for name := range stacks {
		all := js(*tmpl(t, name).ToJSON())
		var tpl struct {
			Resources map[string]struct {
				Metadata struct {
					CdkNag struct {
						RulesToSuppress []struct {
							ID        string `json:"id"`
							Reason    string `json:"reason"`
							AppliesTo []any  `json:"applies_to"`
						} `json:"rules_to_suppress"`
					} `json:"cdk_nag"`
				}
			}
		}
		if err := json.Unmarshal([]byte(all), &tpl); err != nil {
			t.Fatal(err)
		}
		for rid, r := range tpl.Resources {
			for _, s := range r.Metadata.CdkNag.RulesToSuppress {
				if len(s.Reason) < 60 {
					t.Errorf("%s/%s: suppression %s has no specific reason: %q", name, rid, s.ID, s.Reason)
				}
				if len(s.AppliesTo) == 0 {
					t.Errorf("%s/%s: suppression %s is not limited with appliesTo", name, rid, s.ID)
				}
			}
		}
	}
}

func TestBucket(t *testing.T) {
	tp := tmpl(t, "Default")
	check(t, "two buckets (flow logs, access logs)", func() { tp.ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(2)) })
	check(t, "flow log bucket", func() {
		tp.HasResourceProperties(jsii.String("AWS::S3::Bucket"), like(
			"BucketEncryption", like("ServerSideEncryptionConfiguration", arrayWith(like("ServerSideEncryptionByDefault", like("SSEAlgorithm", "AES256")))),
			"PublicAccessBlockConfiguration", like("BlockPublicAcls", true, "BlockPublicPolicy", true, "IgnorePublicAcls", true, "RestrictPublicBuckets", true),
			"OwnershipControls", like("Rules", arrayWith(like("ObjectOwnership", "BucketOwnerEnforced"))),
			"LifecycleConfiguration", like("Rules", arrayWith(like("ExpirationInDays", 30, "Status", "Enabled"))),
			"LoggingConfiguration", like("LogFilePrefix", "flow-log-bucket/"),
		))
	})
	check(t, "buckets are retained", func() {
		tp.AllResources(jsii.String("AWS::S3::Bucket"), like("DeletionPolicy", "Retain"))
	})
	var flowPolicy map[string]any
	for _, p := range resources(t, "Default", "AWS::S3::BucketPolicy") {
		if strings.Contains(js(p), "delivery.logs.amazonaws.com") {
			flowPolicy = p
		}
		doc := js(p)
		if !strings.Contains(doc, `"aws:SecureTransport":"false"`) || !strings.Contains(doc, `"Effect":"Deny"`) {
			t.Errorf("bucket policy without a TLS-only deny: %s", doc)
		}
	}
	if flowPolicy == nil {
		t.Fatal("no bucket policy for delivery.logs.amazonaws.com")
	}
	doc := js(flowPolicy)
	for _, want := range []string{
		`"Action":"s3:PutObject"`,
		`"Resource":"` + accountObjects + `"`,
		`"aws:SourceAccount":"${AWS::AccountId}"`,
		`"aws:SourceArn":"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"`,
		`"s3:x-amz-acl":"bucket-owner-full-control"`,
		`"Sid":"AWSLogDeliveryAclCheck"`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("flow log bucket policy lacks %s:\n%s", want, doc)
		}
	}

	to := tmpl(t, "Options")
	check(t, "KMS bucket with key", func() {
		to.HasResourceProperties(jsii.String("AWS::S3::Bucket"), like(
			"BucketName", "acme-vpc-flow-logs",
			"BucketEncryption", like("ServerSideEncryptionConfiguration", arrayWith(like(
				"BucketKeyEnabled", true,
				"ServerSideEncryptionByDefault", like("SSEAlgorithm", "aws:kms", "KMSMasterKeyID", assertions.Match_AnyValue()))))))
	})
	var keyPolicy string
	for _, k := range resources(t, "Options", "AWS::KMS::Key") {
		if strings.Contains(js(k), "delivery.logs.amazonaws.com") {
			keyPolicy = js(k)
			if !strings.Contains(keyPolicy, `"EnableKeyRotation":true`) {
				t.Errorf("bucket key without rotation")
			}
		}
	}
	for _, want := range []string{`"kms:GenerateDataKey*"`, `"aws:SourceAccount":"${AWS::AccountId}"`, `"aws:SourceArn":"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"`} {
		if !strings.Contains(keyPolicy, want) {
			t.Errorf("bucket key policy lacks %s: %s", want, keyPolicy)
		}
	}
	check(t, "existing bucket: none created", func() {
		tmpl(t, "Central").ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(0))
	})
	check(t, "existing bucket: notification config as output", func() {
		tmpl(t, "Central").HasOutput(jsii.String("BucketNotificationConfiguration"), like("Value", assertions.Match_AnyValue()))
	})
}

func TestFlowLogs(t *testing.T) {
	check(t, "default flow log", func() {
		tmpl(t, "Default").HasResourceProperties(jsii.String("AWS::EC2::FlowLog"), like(
			"ResourceId", "vpc-0123456789abcdef0", "ResourceType", "VPC", "TrafficType", "ALL",
			"LogDestinationType", "s3", "MaxAggregationInterval", 600, "LogFormat", assertions.Match_Absent(),
			"DestinationOptions", like("FileFormat", "plain-text", "HiveCompatiblePartitions", false, "PerHourPartition", false)))
	})
	check(t, "flow log waits for the bucket policy", func() {
		tmpl(t, "Default").HasResource(jsii.String("AWS::EC2::FlowLog"), like("DependsOn", arrayWith(assertions.Match_StringLikeRegexp(jsii.String("FlowLogBucketPolicy.*")))))
	})
	fl := resources(t, "Default", "AWS::EC2::FlowLog")
	if len(fl) != 1 || fl[0]["Properties"].(map[string]any)["LogDestination"] != defaultBucket+"/vpc-flow-logs" {
		t.Errorf("default flow log destination: %s", js(fl))
	}
	to := tmpl(t, "Options")
	check(t, "one flow log per VPC", func() { to.ResourceCountIs(jsii.String("AWS::EC2::FlowLog"), jsii.Number(2)) })
	check(t, "flow log options", func() {
		to.HasResourceProperties(jsii.String("AWS::EC2::FlowLog"), like(
			"ResourceId", "vpc-0aaaaaaaaaaaaaaaa", "TrafficType", "REJECT", "MaxAggregationInterval", 60,
			"LogFormat", scenarios["Options"]["logFormat"],
			"DestinationOptions", like("FileFormat", "plain-text", "HiveCompatiblePartitions", true, "PerHourPartition", true)))
	})
	for _, f := range resources(t, "Central", "AWS::EC2::FlowLog") {
		if d := f["Properties"].(map[string]any)["LogDestination"]; d != "arn:${AWS::Partition}:s3:::central-flow-logs/vpc-flow-logs" {
			t.Errorf("central flow log destination %v", d)
		}
	}
}

func TestQueue(t *testing.T) {
	tp := tmpl(t, "Default")
	check(t, "queue", func() {
		tp.HasResourceProperties(jsii.String("AWS::SQS::Queue"), like(
			"SqsManagedSseEnabled", true, "VisibilityTimeout", 1800,
			"RedrivePolicy", like("maxReceiveCount", 5, "deadLetterTargetArn", assertions.Match_AnyValue())))
	})
	check(t, "dead-letter queue encrypted", func() {
		tp.AllResourcesProperties(jsii.String("AWS::SQS::Queue"), like("SqsManagedSseEnabled", true))
	})
	check(t, "notification filtered to the flow log prefix and suffix", func() {
		tp.HasResourceProperties(jsii.String("AWS::S3::Bucket"), like("NotificationConfiguration", like("QueueConfigurations", arrayWith(like(
			"Event", "s3:ObjectCreated:*",
			"Filter", like("S3Key", like("Rules", arrayWith(like("Name", "suffix", "Value", ".log.gz")))))))))
	})
	check(t, "bucket waits for the queue policy", func() {
		tp.HasResource(jsii.String("AWS::S3::Bucket"), like("DependsOn", arrayWith(assertions.Match_StringLikeRegexp(jsii.String("QueuePolicy.*")))))
	})
	for _, b := range resources(t, "Default", "AWS::S3::Bucket") {
		if n, ok := b["Properties"].(map[string]any)["NotificationConfiguration"]; ok {
			if !strings.Contains(js(n), `"Name":"prefix","Value":"vpc-flow-logs/AWSLogs/${AWS::AccountId}/"`) {
				t.Errorf("notification prefix: %s", js(n))
			}
		}
	}
	var found bool
	for _, p := range resources(t, "Default", "AWS::SQS::QueuePolicy") {
		doc := js(p)
		if !strings.Contains(doc, `"aws:SecureTransport":"false"`) {
			t.Errorf("queue policy without TLS-only deny: %s", doc)
		}
		if strings.Contains(doc, "s3.amazonaws.com") {
			found = true
			for _, want := range []string{`"Action":"sqs:SendMessage"`, `"aws:SourceArn":"` + defaultBucket + `"`, `"aws:SourceAccount":"${AWS::AccountId}"`} {
				if !strings.Contains(doc, want) {
					t.Errorf("queue policy lacks %s: %s", want, doc)
				}
			}
		}
	}
	if !found {
		t.Error("no queue policy admits S3")
	}
	for _, p := range resources(t, "Central", "AWS::SQS::QueuePolicy") {
		if doc := js(p); strings.Contains(doc, "s3.amazonaws.com") &&
			(!strings.Contains(doc, `"aws:SourceAccount":"210987654321"`) || !strings.Contains(doc, `"aws:SourceArn":"arn:${AWS::Partition}:s3:::central-flow-logs"`)) {
			t.Errorf("central queue policy: %s", doc)
		}
	}
	check(t, "options: visibility 6x timeout + window, receive count", func() {
		tmpl(t, "Options").HasResourceProperties(jsii.String("AWS::SQS::Queue"), like(
			"VisibilityTimeout", 6*600+5, "RedrivePolicy", like("maxReceiveCount", 3)))
	})
}

func TestFunction(t *testing.T) {
	tp := tmpl(t, "Default")
	check(t, "function", func() {
		tp.HasResourceProperties(jsii.String("AWS::Lambda::Function"), like(
			"Runtime", "provided.al2023", "Architectures", []any{"arm64"}, "Handler", "bootstrap",
			"MemorySize", 512, "Timeout", 300,
			"LoggingConfig", like("LogFormat", "JSON", "LogGroup", assertions.Match_AnyValue()),
			"VpcConfig", like("SubnetIds", []any{"subnet-0123456789abcdef0", "subnet-0fedcba9876543210"}),
			"Environment", like("Variables", like(
				"COLLECTOR_HOST", "10.20.30.40", "COLLECTOR_PORT", "2055", "EPS_LIMIT", "5000", "MAX_CONCURRENCY", "2",
				"FILE_PATTERN", `\.log\.gz$`, "OBSERVATION_DOMAIN_ID", "1", "TEMPLATE_REFRESH_SECONDS", "60",
				"MAX_DATAGRAM_BYTES", "1400", "ENTERPRISE_NUMBER", "0", "PREFER_PACKET_ADDRESSES", "true",
				"DEADLINE_MARGIN_SECONDS", "10", "LOG_LEVEL", "info", "DOMAIN_PER_INSTANCE", "true",
				"QUEUE_URL", obj("Ref", "Queue4A7E3555"),
				"ASSUME_ROLE_ARN", assertions.Match_Absent(), "S3_ENDPOINT_URL", assertions.Match_Absent())),
		))
	})
	check(t, "log group retention", func() {
		tp.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), like("RetentionInDays", 90))
	})
	check(t, "event source", func() {
		tp.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), like(
			"BatchSize", 10, "FunctionResponseTypes", []any{"ReportBatchItemFailures"},
			"ScalingConfig", like("MaximumConcurrency", 2), "MaximumBatchingWindowInSeconds", assertions.Match_Absent()))
	})
	to := tmpl(t, "Options")
	check(t, "options function", func() {
		to.HasResourceProperties(jsii.String("AWS::Lambda::Function"), like(
			"MemorySize", 1024, "Timeout", 600,
			"Environment", like("Variables", like(
				"COLLECTOR_HOST", "qradar.example.com", "COLLECTOR_PORT", "4739", "EPS_LIMIT", "8000", "MAX_CONCURRENCY", "4",
				"S3_ENDPOINT_URL", scenarios["Options"]["s3EndpointUrl"], "ENTERPRISE_NUMBER", "32473",
				"OBSERVATION_DOMAIN_ID", "7", "PREFER_PACKET_ADDRESSES", "false", "LOG_LEVEL", "debug"))))
	})
	check(t, "options: concurrency matches the environment", func() {
		to.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), like(
			"BatchSize", 100, "MaximumBatchingWindowInSeconds", 5, "ScalingConfig", like("MaximumConcurrency", 4)))
	})
	check(t, "options: log retention", func() {
		to.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), like("RetentionInDays", 30))
	})
	check(t, "central: assume-role environment", func() {
		tmpl(t, "Central").HasResourceProperties(jsii.String("AWS::Lambda::Function"), like("Environment", like("Variables", like(
			"ASSUME_ROLE_ARN", "arn:aws:iam::210987654321:role/vpcflow-ipfix-reader", "EXTERNAL_ID", "vpcflow-ipfix-123456789012"))))
	})
}

func TestNetwork(t *testing.T) {
	tp := tmpl(t, "Default")
	sgs := resources(t, "Default", "AWS::EC2::SecurityGroup")
	if len(sgs) != 2 {
		t.Fatalf("want two security groups (function, SQS endpoint), got %d", len(sgs))
	}
	var props map[string]any
	for _, sg := range sgs {
		p := sg["Properties"].(map[string]any)
		if strings.Contains(js(p["GroupDescription"]), "forwarder: IPFIX") {
			props = p
		}
	}
	if props == nil {
		t.Fatalf("no function security group: %s", js(sgs))
	}
	egress, _ := props["SecurityGroupEgress"].([]any)
	if props["SecurityGroupIngress"] != nil {
		t.Errorf("ingress rules: %v", props["SecurityGroupIngress"])
	}
	var rules []string
	for _, e := range egress {
		rules = append(rules, js(e))
	}
	for _, e := range resources(t, "Default", "AWS::EC2::SecurityGroupEgress") {
		rules = append(rules, js(e["Properties"]))
	}
	if len(rules) != 3 {
		t.Errorf("want exactly 3 egress rules (collector, S3, SQS endpoint; no default egress), got %d: %v", len(rules), rules)
	}
	all := strings.Join(rules, "\n")
	for _, want := range []string{
		`"CidrIp":"10.20.30.40/32"`, `"FromPort":2055`, `"IpProtocol":"udp"`,
		`"DestinationPrefixListId":"pl-6da54004"`, `"FromPort":443`, `"IpProtocol":"tcp"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("egress lacks %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, "0.0.0.0/0") || strings.Contains(all, `"IpProtocol":"-1"`) {
		t.Errorf("egress open to all: %s", all)
	}
	check(t, "S3 gateway endpoint on the route tables", func() {
		tp.HasResourceProperties(jsii.String("AWS::EC2::VPCEndpoint"), like(
			"VpcEndpointType", "Gateway", "VpcId", "vpc-0123456789abcdef0",
			"RouteTableIds", []any{"rtb-0123456789abcdef0", "rtb-0fedcba9876543210"}))
	})
	var gateway, sqs []map[string]any
	for _, e := range resources(t, "Default", "AWS::EC2::VPCEndpoint") {
		if strings.Contains(js(e), `"Interface"`) {
			sqs = append(sqs, e)
		} else {
			gateway = append(gateway, e)
		}
	}
	if len(gateway) != 1 || !strings.Contains(js(gateway[0]), `"Resource":"`+accountObjects+`"`) || !strings.Contains(js(gateway[0]), `.s3`) {
		t.Errorf("endpoint policy not limited to the flow log objects: %s", js(gateway))
	}
	// Resuming large objects: an SQS interface endpoint in the function's subnets, with
	// private DNS, its own security group open to the function only, and a policy that
	// carries only SendMessage to this queue.
	if len(sqs) != 1 {
		t.Fatalf("want one SQS interface endpoint, got %d", len(sqs))
	}
	for _, want := range []string{`"PrivateDnsEnabled":true`, `com.amazonaws.`, `.sqs"`, `"Action":"sqs:SendMessage"`,
		`"SubnetIds":["subnet-0123456789abcdef0","subnet-0fedcba9876543210"]`} {
		if !strings.Contains(js(sqs[0]), want) {
			t.Errorf("SQS endpoint lacks %s: %s", want, js(sqs[0]))
		}
	}
	ingress := resources(t, "Default", "AWS::EC2::SecurityGroupIngress")
	if len(ingress) != 1 || !strings.Contains(js(ingress[0]), `"SourceSecurityGroupId":"${FunctionSecurityGroup`) || !strings.Contains(js(ingress[0]), `"FromPort":443`) {
		t.Errorf("SQS endpoint ingress: %s", js(ingress))
	}
	check(t, "resume off: no SQS endpoint, no QUEUE_URL", func() {
		tmpl(t, "Central").ResourcePropertiesCountIs(jsii.String("AWS::EC2::VPCEndpoint"), like("VpcEndpointType", "Interface"), jsii.Number(0))
		tmpl(t, "Central").HasResourceProperties(jsii.String("AWS::Lambda::Function"), like("Environment", like("Variables", like("QUEUE_URL", assertions.Match_Absent()))))
	})
	check(t, "options: no S3 gateway endpoint", func() {
		tmpl(t, "Options").ResourcePropertiesCountIs(jsii.String("AWS::EC2::VPCEndpoint"), like("VpcEndpointType", "Gateway"), jsii.Number(0))
	})
	var opt []string
	for _, sg := range resources(t, "Options", "AWS::EC2::SecurityGroup") {
		opt = append(opt, js(sg))
	}
	for _, e := range resources(t, "Options", "AWS::EC2::SecurityGroupEgress") {
		opt = append(opt, js(e))
	}
	o := strings.Join(opt, "\n")
	for _, want := range []string{`"CidrIp":"10.20.30.0/24"`, `"FromPort":4739`, `"CidrIp":"10.0.0.0/16"`} {
		if !strings.Contains(o, want) {
			t.Errorf("options egress lacks %s: %s", want, o)
		}
	}
}

// policyDoc returns the function role's policies as one JSON string.
func policyDoc(t *testing.T, name string) string {
	var docs []string
	for _, p := range resources(t, name, "AWS::IAM::Policy") {
		docs = append(docs, js(p["Properties"].(map[string]any)["PolicyDocument"]))
	}
	return strings.Join(docs, "\n")
}

func TestIAM(t *testing.T) {
	check(t, "no managed policies", func() {
		tmpl(t, "Default").AllResourcesProperties(jsii.String("AWS::IAM::Role"), like("ManagedPolicyArns", assertions.Match_Absent()))
	})
	for name := range stacks {
		if doc := policyDoc(t, name); strings.Contains(doc, `"Action":"*"`) || strings.Contains(doc, `:*"`) && strings.Contains(doc, `"Action":"s3:*"`) {
			t.Errorf("%s: wildcard action: %s", name, doc)
		}
		var tpl struct{ Resources map[string]map[string]any }
		_ = json.Unmarshal([]byte(js(*tmpl(t, name).ToJSON())), &tpl)
		for _, r := range tpl.Resources {
			// A KMS key policy keeps the default statement that gives the
			// account (its IAM policies) control of the key.
			if r["Type"] != "AWS::KMS::Key" {
				checkNoStarActions(t, name, r)
			}
		}
	}
	doc := policyDoc(t, "Default")
	for _, want := range []string{
		`{"Action":"s3:GetObject","Effect":"Allow","Resource":"` + accountObjects + `"`,
		`"ec2:CreateNetworkInterface"`, `"ec2:DeleteNetworkInterface"`,
		`"Resource":"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"`,
		`"logs:PutLogEvents"`, `"sqs:ReceiveMessage"`,
		`{"Action":"sqs:SendMessage","Effect":"Allow","Resource":"${Queue4A7E3555.Arn}"`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("Default policy lacks %s:\n%s", want, doc)
		}
	}
	for _, unwanted := range []string{"kms:", "sts:", "cloudwatch:PutMetricData", "s3:GetObjectVersion", "s3:ListBucket"} {
		if strings.Contains(doc, unwanted) {
			t.Errorf("Default policy grants %s:\n%s", unwanted, doc)
		}
	}
	if doc := policyDoc(t, "Options"); !strings.Contains(doc, `"Action":"kms:Decrypt"`) || !strings.Contains(doc, `"kms:ViaService"`) ||
		!strings.Contains(doc, `/flows/AWSLogs/aws-account-id=${AWS::AccountId}/*"`) {
		t.Errorf("Options policy lacks kms:Decrypt or the hive prefix:\n%s", doc)
	}
	doc = policyDoc(t, "Central")
	if !strings.Contains(doc, `{"Action":"sts:AssumeRole","Effect":"Allow","Resource":"arn:aws:iam::210987654321:role/vpcflow-ipfix-reader"`) || strings.Contains(doc, "s3:GetObject") {
		t.Errorf("Central policy should assume the reader role and not read S3 itself:\n%s", doc)
	}
	check(t, "role name", func() {
		tmpl(t, "Default").HasResourceProperties(jsii.String("AWS::IAM::Role"), like("RoleName", "vpcflow-ipfix-forwarder"))
	})
}

func checkNoStarActions(t *testing.T, name string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if st, ok := x["Effect"]; ok && st == "Allow" {
			acts := x["Action"]
			for _, a := range append([]any{acts}, asSlice(acts)...) {
				if s, ok := a.(string); ok && (s == "*" || strings.HasSuffix(s, ":*")) {
					t.Errorf("%s: Allow statement with action %q: %s", name, s, js(x))
				}
			}
		}
		for _, e := range x {
			checkNoStarActions(t, name, e)
		}
	case []any:
		for _, e := range x {
			checkNoStarActions(t, name, e)
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestReaderRoleStack(t *testing.T) {
	tp := tmpl(t, "Reader")
	check(t, "reader role trust", func() {
		tp.HasResourceProperties(jsii.String("AWS::IAM::Role"), like(
			"RoleName", "vpcflow-ipfix-reader", "MaxSessionDuration", 3600,
			"AssumeRolePolicyDocument", like("Statement", arrayWith(like(
				"Action", "sts:AssumeRole",
				"Condition", like(
					"ArnEquals", like("aws:PrincipalArn", assertions.Match_AnyValue()),
					"StringEquals", like("sts:ExternalId", "vpcflow-ipfix-123456789012")))))))
	})
	roles := resources(t, "Reader", "AWS::IAM::Role")
	if len(roles) != 1 || !strings.Contains(js(roles[0]), `"aws:PrincipalArn":"arn:${AWS::Partition}:iam::123456789012:role/vpcflow-ipfix-forwarder-central"`) {
		t.Errorf("reader trust: %s", js(roles))
	}
	doc := policyDoc(t, "Reader")
	for _, want := range []string{
		`"Resource":"arn:${AWS::Partition}:s3:::central-flow-logs/vpc-flow-logs/AWSLogs/123456789012/*"`,
		`"Action":"kms:Decrypt"`, `"Resource":"arn:aws:kms:eu-west-1:210987654321:key/0b5e2a8e-6d0c-4d4f-9c1e-3f1a2b3c4d5e"`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("reader policy lacks %s:\n%s", want, doc)
		}
	}
	check(t, "reader output", func() { tp.HasOutput(jsii.String("ReaderRoleArn"), like("Value", assertions.Match_AnyValue())) })
}

func TestAlarms(t *testing.T) {
	tp := tmpl(t, "Default")
	check(t, "four alarms", func() { tp.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(4)) })
	for _, a := range []struct{ metric, ns string }{
		{"ApproximateNumberOfMessagesVisible", "AWS/SQS"},
		{"ApproximateAgeOfOldestMessage", "AWS/SQS"},
		{"Errors", "AWS/Lambda"},
		{"Throttles", "AWS/Lambda"},
	} {
		check(t, "alarm "+a.metric, func() {
			tp.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), like("MetricName", a.metric, "Namespace", a.ns, "AlarmActions", assertions.Match_Absent()))
		})
	}
	check(t, "no topic by default", func() { tp.ResourceCountIs(jsii.String("AWS::SNS::Topic"), jsii.Number(0)) })
	to := tmpl(t, "Options")
	check(t, "encrypted topic", func() {
		to.HasResourceProperties(jsii.String("AWS::SNS::Topic"), like("KmsMasterKeyId", assertions.Match_AnyValue()))
	})
	check(t, "email subscription", func() {
		to.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), like("Protocol", "email", "Endpoint", "noc@example.com"))
	})
	check(t, "alarms notify the topic", func() {
		to.AllResourcesProperties(jsii.String("AWS::CloudWatch::Alarm"), like("AlarmActions", assertions.Match_AnyValue(), "OKActions", assertions.Match_AnyValue()))
	})
	var topicPolicy string
	for _, p := range resources(t, "Options", "AWS::SNS::TopicPolicy") {
		topicPolicy += js(p)
	}
	if !strings.Contains(topicPolicy, "cloudwatch.amazonaws.com") || !strings.Contains(topicPolicy, `"aws:SecureTransport":"false"`) {
		t.Errorf("topic policy: %s", topicPolicy)
	}
}
