package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// base is a valid configuration as -c flags would give it (all strings).
func base() map[string]any {
	return map[string]any{
		"collectorHost":     "10.20.30.40",
		"vpcIds":            "vpc-0123456789abcdef0",
		"subnetIds":         "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
		"availabilityZones": "eu-west-1a,eu-west-1b",
		"routeTableIds":     "rtb-0123456789abcdef0,rtb-0fedcba9876543210",
		"s3PrefixListId":    "pl-6da54004",
	}
}

func with(kv ...any) map[string]any {
	m := base()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(MapGetter(base()))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"CollectorPort", c.CollectorPort, 2055},
		{"CollectorCIDR", c.CollectorCIDR, netip.MustParsePrefix("10.20.30.40/32")},
		{"EPSLimit", c.EPSLimit, 5000},
		{"MaxConcurrency", c.MaxConcurrency, 2},
		{"FilePattern", c.FilePattern, `\.log\.gz$`},
		{"TrafficType", c.TrafficType, "ALL"},
		{"AggregationInterval", c.AggregationInterval, 600},
		{"LogFormat", c.LogFormat, ""},
		{"LambdaVPCID", c.LambdaVPCID, "vpc-0123456789abcdef0"},
		{"CreateS3GatewayEndpoint", c.CreateS3GatewayEndpoint, true},
		{"TimeoutSeconds", c.TimeoutSeconds, 300},
		{"VisibilityTimeoutSeconds", c.VisibilityTimeoutSeconds(), 1800},
		{"BatchSize", c.BatchSize, 10},
		{"MaxReceiveCount", c.MaxReceiveCount, 5},
		{"CreatesBucket", c.CreatesBucket(), true},
		{"CreatesKey", c.CreatesKey(), false},
		{"FlowLogPrefix", c.FlowLogPrefix, "vpc-flow-logs"},
		{"PreferPacketAddresses", c.PreferPacketAddresses, true},
		{"LogLevel", c.LogLevel, "info"},
		{"AccountPrefix", c.AccountPrefix("123456789012"), "vpc-flow-logs/AWSLogs/123456789012/"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	env := c.Environment()
	for k, want := range map[string]string{
		"COLLECTOR_HOST": "10.20.30.40", "COLLECTOR_PORT": "2055", "EPS_LIMIT": "5000", "MAX_CONCURRENCY": "2",
		"FILE_PATTERN": `\.log\.gz$`, "OBSERVATION_DOMAIN_ID": "1", "TEMPLATE_REFRESH_SECONDS": "60",
		"MAX_DATAGRAM_BYTES": "1400", "ENTERPRISE_NUMBER": "0", "PREFER_PACKET_ADDRESSES": "true",
		"DEADLINE_MARGIN_SECONDS": "10", "LOG_LEVEL": "info",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"S3_ENDPOINT_URL", "ASSUME_ROLE_ARN", "EXTERNAL_ID"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s set without its context key", k)
		}
	}
}

// TestLoadConfigJSONTypes: cdk.json gives numbers, booleans and arrays.
func TestLoadConfigJSONTypes(t *testing.T) {
	c, err := LoadConfig(MapGetter(with(
		"collectorPort", float64(4739),
		"maxConcurrency", float64(4),
		"vpcIds", []any{"vpc-0123456789abcdef0", "vpc-0aaaaaaaaaaaaaaaa"},
		"lambdaVpcId", "vpc-0123456789abcdef0",
		"hiveCompatiblePartitions", true,
		"createS3GatewayEndpoint", "false",
		"logLevel", "DEBUG",
		"trafficType", "reject",
		"flowLogPrefix", "/central/flows/",
		"assumeRoleArn", "arn:aws:iam::210987654321:role/vpcflow-ipfix-reader",
		"externalId", "ipfix-1",
		"alarmEmail", "noc@example.com",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.CollectorPort != 4739 || c.MaxConcurrency != 4 || len(c.VPCIDs) != 2 || !c.HiveCompatiblePartitions ||
		c.CreateS3GatewayEndpoint || c.LogLevel != "debug" || c.TrafficType != "REJECT" || !c.CreateAlarmTopic {
		t.Errorf("unexpected config %+v", c)
	}
	if got := c.AccountPrefix("123456789012"); got != "central/flows/AWSLogs/aws-account-id=123456789012/" {
		t.Errorf("AccountPrefix = %q", got)
	}
	env := c.Environment()
	if env["ASSUME_ROLE_ARN"] != "arn:aws:iam::210987654321:role/vpcflow-ipfix-reader" || env["EXTERNAL_ID"] != "ipfix-1" || env["MAX_CONCURRENCY"] != "4" {
		t.Errorf("env = %v", env)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		ctx  map[string]any
		key  string // the key the error must name
		msg  string // and a part of its message
	}{
		{"missing collector host", with("collectorHost", nil), "collectorHost", "is required"},
		{"bad collector host", with("collectorHost", "flow processor"), "collectorHost", "neither an IP address nor a DNS name"},
		{"dns host needs cidr", with("collectorHost", "qradar.example.com"), "collectorCidr", "is required when"},
		{"cidr without host", with("collectorCidr", "10.9.0.0/16"), "collectorCidr", "does not contain"},
		{"cidr host bits", with("collectorCidr", "10.20.30.40/24"), "collectorCidr", "host bits"},
		{"port zero", with("collectorPort", "0"), "collectorPort", "out of range"},
		{"port too high", with("collectorPort", float64(70000)), "collectorPort", "out of range"},
		{"port not a number", with("collectorPort", "ipfix"), "collectorPort", "not an integer"},
		{"malformed vpc id", with("vpcIds", "vpc-123"), "vpcIds", "not a valid VPC id"},
		{"uppercase vpc id", with("vpcIds", "vpc-0123456789ABCDEF0"), "vpcIds", "not a valid VPC id"},
		{"missing vpc ids", with("vpcIds", nil), "vpcIds", "is required"},
		{"duplicate vpc", with("vpcIds", "vpc-0123456789abcdef0,vpc-0123456789abcdef0", "lambdaVpcId", "vpc-0123456789abcdef0"), "vpcIds", "listed twice"},
		{"two vpcs need lambdaVpcId", with("vpcIds", "vpc-0123456789abcdef0,vpc-0aaaaaaaaaaaaaaaa"), "lambdaVpcId", "is required"},
		{"malformed subnet", with("subnetIds", "subnet-xyz,subnet-0fedcba9876543210"), "subnetIds", "not a valid subnet id"},
		{"missing subnets", with("subnetIds", nil), "subnetIds", "is required"},
		{"zone count", with("availabilityZones", "eu-west-1a"), "availabilityZones", "has 1 entries"},
		{"route table count", with("routeTableIds", "rtb-0123456789abcdef0"), "routeTableIds", "has 1 entries"},
		{"bad zone", with("availabilityZones", "eu-west-1a,west"), "availabilityZones", "not a valid availability zone"},
		{"missing prefix list", with("s3PrefixListId", nil), "s3PrefixListId", "is required"},
		{"https egress everywhere", with("httpsEgressCidrs", "0.0.0.0/0"), "httpsEgressCidrs", "everywhere"},
		{"aggregation 300", with("aggregationInterval", "300"), "aggregationInterval", "60 or 600"},
		{"traffic type", with("trafficType", "SOME"), "trafficType", "not one of"},
		{"log format", with("logFormat", "${srcaddr} dstaddr"), "logFormat", "not a flow log field"},
		{"concurrency 1", with("maxConcurrency", "1"), "maxConcurrency", "out of range"},
		{"eps below concurrency", with("epsLimit", "1", "maxConcurrency", "2"), "epsLimit", "below"},
		{"batch without window", with("batchSize", "100"), "batchSize", "batchingWindowSeconds"},
		{"timeout", with("timeoutSeconds", "901"), "timeoutSeconds", "out of range"},
		{"margin above timeout", with("timeoutSeconds", "10", "deadlineMarginSeconds", "10"), "deadlineMarginSeconds", "less than"},
		{"retention", with("logRetentionDays", "10"), "logRetentionDays", "retention period"},
		{"file pattern", with("filePattern", "(["), "filePattern", "regular expression"},
		{"endpoint url", with("s3EndpointUrl", "http://s3.local"), "s3EndpointUrl", "https://"},
		{"role arn", with("assumeRoleArn", "reader-role"), "assumeRoleArn", "IAM role ARN"},
		{"external id", with("externalId", "x"), "externalId", "2 to 1224"},
		{"bool", with("preferPacketAddresses", "yes"), "preferPacketAddresses", "not a boolean"},
		{"log level", with("logLevel", "trace"), "logLevel", "not one of"},
		{"bucket name", with("existingBucketName", "My_Bucket"), "existingBucketName", "not a valid S3 bucket name"},
		{"bucket account", with("existingBucketName", "central-logs", "existingBucketAccount", "12345"), "existingBucketAccount", "12-digit"},
		{"account without bucket", with("existingBucketAccount", "210987654321"), "existingBucketAccount", "needs existingBucketName"},
		{"kms create with existing", with("existingBucketName", "central-logs", "kmsKey", "create"), "kmsKey", "create"},
		{"kms arn", with("kmsKey", "alias/flowlogs"), "kmsKey", "KMS key ARN"},
		{"prefix AWSLogs", with("flowLogPrefix", "AWSLogs"), "flowLogPrefix", "must not start with AWSLogs"},
		{"expiry", with("expiryDays", "0"), "expiryDays", "out of range"},
		{"email", with("alarmEmail", "noc"), "alarmEmail", "e-mail"},
		{"reader needs bucket", with("readerRoleStack", "true", "forwarderAccount", "123456789012"), "readerRoleStack", "needs existingBucketName"},
		{"reader needs account", with("readerRoleStack", "true", "existingBucketName", "central-logs"), "forwarderAccount", "is required"},
		{"datagram", with("maxDatagramBytes", "100"), "maxDatagramBytes", "out of range"},
		{"observation domain", with("observationDomainId", "-1"), "observationDomainId", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(MapGetter(tt.ctx))
			if err == nil {
				t.Fatal("no error")
			}
			var found bool
			for _, e := range unjoin(err) {
				var ce *ConfigError
				if errors.As(e, &ce) && ce.Key == tt.key && strings.Contains(ce.Msg, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("error does not name %q with %q:\n%v", tt.key, tt.msg, err)
			}
		})
	}
}

// TestLoadConfigReportsAllErrors: one run lists every bad key.
func TestLoadConfigReportsAllErrors(t *testing.T) {
	_, err := LoadConfig(MapGetter(with("collectorHost", nil, "collectorPort", "99999", "vpcIds", "vpc-1")))
	if n := len(unjoin(err)); n < 3 {
		t.Errorf("got %d errors, want at least 3: %v", n, err)
	}
	if !strings.Contains(err.Error(), `context "collectorPort"`) {
		t.Errorf("message does not name the key: %v", err)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
