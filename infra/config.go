package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Config is everything the stacks read from CDK context. LoadConfig fills it
// from context values (cdk.json or -c key=value), applies the defaults and
// validates it, so a bad value fails `cdk synth` with a message that names
// the context key, before any construct exists.
type Config struct {
	// Collector and function settings (the function's environment).
	CollectorHost          string
	CollectorPort          int
	CollectorCIDR          netip.Prefix
	EPSLimit               int
	MaxConcurrency         int
	FilePattern            string
	S3EndpointURL          string
	AssumeRoleARN          string
	ExternalID             string
	ObservationDomainID    uint32
	DomainPerInstance      bool
	TemplateRefreshSeconds int
	MaxDatagramBytes       int
	EnterpriseNumber       uint32
	PreferPacketAddresses  bool
	DeadlineMarginSeconds  int
	LogLevel               string

	// Function sizing, event source and logging.
	AssetPath             string
	MemorySize            int
	TimeoutSeconds        int
	BatchSize             int
	BatchingWindowSeconds int
	MaxReceiveCount       int
	LogRetentionDays      int
	FunctionRoleName      string

	// Network the function runs in.
	LambdaVPCID             string
	SubnetIDs               []string
	AvailabilityZones       []string
	RouteTableIDs           []string
	S3PrefixListID          string
	HTTPSEgressCIDRs        []netip.Prefix
	CreateS3GatewayEndpoint bool
	// Resume large objects through continuation messages on the queue (QUEUE_URL,
	// sqs:SendMessage), reaching SQS through an interface endpoint created here or, with
	// CreateSQSEndpoint false, one the VPC already has (or a NAT gateway).
	Resume            bool
	CreateSQSEndpoint bool
	S3EndpointPolicy  string

	// Flow log bucket.
	ExistingBucketName    string
	ExistingBucketAccount string
	NewBucketName         string
	KMSKey                string
	ExpiryDays            int
	FlowLogPrefix         string

	// Flow logs.
	VPCIDs                   []string
	TrafficType              string
	AggregationInterval      int
	LogFormat                string
	HiveCompatiblePartitions bool
	PerHourPartition         bool

	// Alarms.
	CreateAlarmTopic             bool
	AlarmEmail                   string
	OldestMessageAgeAlarmSeconds int

	// Cross-account reader role stack (deployed in the bucket account).
	ReaderRoleStack  bool
	ReaderRoleName   string
	ForwarderAccount string
}

// Context keys. Every key is optional unless its field's validation says
// otherwise; Defaults documents the value used when a key is absent.
const (
	keyCollectorHost                = "collectorHost"
	keyCollectorPort                = "collectorPort"
	keyCollectorCIDR                = "collectorCidr"
	keyEPSLimit                     = "epsLimit"
	keyMaxConcurrency               = "maxConcurrency"
	keyFilePattern                  = "filePattern"
	keyS3EndpointURL                = "s3EndpointUrl"
	keyAssumeRoleARN                = "assumeRoleArn"
	keyExternalID                   = "externalId"
	keyObservationDomainID          = "observationDomainId"
	keyDomainPerInstance            = "domainPerInstance"
	keyTemplateRefreshSeconds       = "templateRefreshSeconds"
	keyMaxDatagramBytes             = "maxDatagramBytes"
	keyEnterpriseNumber             = "enterpriseNumber"
	keyPreferPacketAddresses        = "preferPacketAddresses"
	keyDeadlineMarginSeconds        = "deadlineMarginSeconds"
	keyLogLevel                     = "logLevel"
	keyAssetPath                    = "assetPath"
	keyMemorySize                   = "memorySize"
	keyTimeoutSeconds               = "timeoutSeconds"
	keyBatchSize                    = "batchSize"
	keyBatchingWindowSeconds        = "batchingWindowSeconds"
	keyMaxReceiveCount              = "maxReceiveCount"
	keyLogRetentionDays             = "logRetentionDays"
	keyFunctionRoleName             = "functionRoleName"
	keyLambdaVPCID                  = "lambdaVpcId"
	keySubnetIDs                    = "subnetIds"
	keyAvailabilityZones            = "availabilityZones"
	keyRouteTableIDs                = "routeTableIds"
	keyS3PrefixListID               = "s3PrefixListId"
	keyHTTPSEgressCIDRs             = "httpsEgressCidrs"
	keyCreateS3GatewayEndpoint      = "createS3GatewayEndpoint"
	keyResume                       = "resume"
	keyCreateSQSEndpoint            = "createSqsEndpoint"
	keyS3EndpointPolicy             = "s3EndpointPolicy"
	keyExistingBucketName           = "existingBucketName"
	keyExistingBucketAccount        = "existingBucketAccount"
	keyNewBucketName                = "newBucketName"
	keyKMSKey                       = "kmsKey"
	keyExpiryDays                   = "expiryDays"
	keyFlowLogPrefix                = "flowLogPrefix"
	keyVPCIDs                       = "vpcIds"
	keyTrafficType                  = "trafficType"
	keyAggregationInterval          = "aggregationInterval"
	keyLogFormat                    = "logFormat"
	keyHiveCompatiblePartitions     = "hiveCompatiblePartitions"
	keyPerHourPartition             = "perHourPartition"
	keyCreateAlarmTopic             = "createAlarmTopic"
	keyAlarmEmail                   = "alarmEmail"
	keyOldestMessageAgeAlarmSeconds = "oldestMessageAgeAlarmSeconds"
	keyReaderRoleStack              = "readerRoleStack"
	keyReaderRoleName               = "readerRoleName"
	keyForwarderAccount             = "forwarderAccount"
)

// ContextKeys lists every key LoadConfig reads, in documentation order.
var ContextKeys = []string{
	keyCollectorHost, keyCollectorPort, keyCollectorCIDR, keyEPSLimit, keyMaxConcurrency,
	keyFilePattern, keyS3EndpointURL, keyAssumeRoleARN, keyExternalID, keyObservationDomainID, keyDomainPerInstance,
	keyTemplateRefreshSeconds, keyMaxDatagramBytes, keyEnterpriseNumber, keyPreferPacketAddresses,
	keyDeadlineMarginSeconds, keyLogLevel, keyAssetPath, keyMemorySize, keyTimeoutSeconds,
	keyBatchSize, keyBatchingWindowSeconds, keyMaxReceiveCount, keyLogRetentionDays,
	keyFunctionRoleName, keyLambdaVPCID, keySubnetIDs, keyAvailabilityZones, keyRouteTableIDs,
	keyS3PrefixListID, keyHTTPSEgressCIDRs, keyCreateS3GatewayEndpoint, keyS3EndpointPolicy,
	keyResume, keyCreateSQSEndpoint,
	keyExistingBucketName, keyExistingBucketAccount, keyNewBucketName, keyKMSKey, keyExpiryDays,
	keyFlowLogPrefix, keyVPCIDs, keyTrafficType, keyAggregationInterval, keyLogFormat,
	keyHiveCompatiblePartitions, keyPerHourPartition, keyCreateAlarmTopic, keyAlarmEmail,
	keyOldestMessageAgeAlarmSeconds, keyReaderRoleStack, keyReaderRoleName, keyForwarderAccount,
}

// Defaults used when a context key is absent.
const (
	DefaultCollectorPort           = 2055
	DefaultEPSLimit                = 5000
	DefaultMaxConcurrency          = 2
	DefaultFilePattern             = `\.log\.gz$`
	DefaultObservationDomainID     = 1
	DefaultTemplateRefreshSeconds  = 60
	DefaultMaxDatagramBytes        = 1400
	DefaultDeadlineMarginSeconds   = 10
	DefaultLogLevel                = "info"
	DefaultAssetPath               = "dist"
	DefaultMemorySize              = 512
	DefaultTimeoutSeconds          = 300
	DefaultBatchSize               = 10
	DefaultMaxReceiveCount         = 5
	DefaultLogRetentionDays        = 90
	DefaultFunctionRoleName        = "vpcflow-ipfix-forwarder"
	DefaultReaderRoleName          = "vpcflow-ipfix-reader"
	DefaultS3EndpointPolicy        = "restricted"
	DefaultExpiryDays              = 30
	DefaultFlowLogPrefix           = "vpc-flow-logs"
	DefaultTrafficType             = "ALL"
	DefaultAggregationInterval     = 600
	DefaultOldestMessageAgeSeconds = 1800
	// FlowLogSuffix is the suffix of every plain-text flow log object, used in
	// the S3 notification filter.
	FlowLogSuffix = ".log.gz"
)

var (
	reVPCID       = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reSubnetID    = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reRouteTable  = regexp.MustCompile(`^rtb-([0-9a-f]{8}|[0-9a-f]{17})$`)
	rePrefixList  = regexp.MustCompile(`^pl-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reAZ          = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d[a-z]$`)
	reAccount     = regexp.MustCompile(`^\d{12}$`)
	reRoleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	reKMSKeyARN   = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/mrk-[0-9a-f]{32}$`)
	reExternalID  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	reRoleName    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	reBucketName  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	reHostname    = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)
	reLogField    = regexp.MustCompile(`^\$\{[a-z0-9-]+\}$`)
	reEmail       = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	reFlowPrefix  = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]{0,512}$`)
	logLevels     = []string{"debug", "info", "warn", "error"}
	trafficTypes  = []string{"ACCEPT", "REJECT", "ALL"}
	endpointModes = []string{"restricted", "full"}
)

// ContextGetter returns the raw context value for a key, or nil when the key
// is not set. Values from cdk.json arrive as JSON types (string, float64,
// bool, []any); values from -c key=value always arrive as strings.
type ContextGetter func(key string) any

// MapGetter adapts a map to a ContextGetter (for tests and AppProps.Context).
func MapGetter(m map[string]any) ContextGetter {
	return func(key string) any { return m[key] }
}

// ConfigError is one invalid context value. LoadConfig joins all of them.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("context %q: %s", e.Key, e.Msg) }

// reader accumulates parse errors while reading typed values.
type reader struct {
	get  ContextGetter
	errs []error
}

func (r *reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// raw returns the value as a trimmed string and whether it is set at all.
func (r *reader) raw(key string) (string, bool) {
	v := r.get(key)
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		s := strings.TrimSpace(t)
		return s, s != ""
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case int:
		return strconv.Itoa(t), true
	case bool:
		return strconv.FormatBool(t), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			parts = append(parts, fmt.Sprint(e))
		}
		s := strings.Join(parts, ",")
		return s, s != ""
	default:
		return fmt.Sprint(t), true
	}
}

func (r *reader) str(key, def string) string {
	if s, ok := r.raw(key); ok {
		return s
	}
	return def
}

func (r *reader) integer(key string, def, lo, hi int64) int64 {
	s, ok := r.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.fail(key, "%q is not an integer", s)
		return def
	}
	if n < lo || n > hi {
		r.fail(key, "%d is out of range [%d, %d]", n, lo, hi)
		return def
	}
	return n
}

func (r *reader) boolean(key string, def bool) bool {
	s, ok := r.raw(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.fail(key, "%q is not a boolean (true or false)", s)
		return def
	}
	return b
}

// list reads a comma-separated list (or a JSON array) and checks each entry.
func (r *reader) list(key string, re *regexp.Regexp, what string) []string {
	s, ok := r.raw(key)
	if !ok {
		return nil
	}
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if re != nil && !re.MatchString(p) {
			r.fail(key, "%q is not a valid %s", p, what)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (r *reader) oneOf(key, def string, allowed []string, fold func(string) string) string {
	s := fold(r.str(key, def))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	r.fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return def
}

func (r *reader) prefix(key, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		r.fail(key, "%q is not a CIDR block (e.g. 10.20.30.40/32)", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		r.fail(key, "%q has host bits set; did you mean %s?", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

// LoadConfig reads, defaults and validates the configuration. The error, if
// any, joins one ConfigError per invalid key.
func LoadConfig(get ContextGetter) (Config, error) {
	r := &reader{get: get}
	var c Config

	// Collector.
	c.CollectorHost = r.str(keyCollectorHost, "")
	switch {
	case c.CollectorHost == "":
		r.fail(keyCollectorHost, "is required: the IP address or DNS name of the on-premises flow processor")
	case len(c.CollectorHost) > 253 || !reHostname.MatchString(c.CollectorHost) && !isIP(c.CollectorHost):
		r.fail(keyCollectorHost, "%q is neither an IP address nor a DNS name", c.CollectorHost)
	}
	c.CollectorPort = int(r.integer(keyCollectorPort, DefaultCollectorPort, 1, 65535))
	if s, ok := r.raw(keyCollectorCIDR); ok {
		c.CollectorCIDR, _ = r.prefix(keyCollectorCIDR, s)
	} else if a, err := netip.ParseAddr(c.CollectorHost); err == nil {
		c.CollectorCIDR = netip.PrefixFrom(a, a.BitLen())
	} else if c.CollectorHost != "" {
		r.fail(keyCollectorCIDR, "is required when %s is a DNS name: the CIDR block the name resolves into", keyCollectorHost)
	}
	if a, err := netip.ParseAddr(c.CollectorHost); err == nil && c.CollectorCIDR.IsValid() && !c.CollectorCIDR.Contains(a) {
		r.fail(keyCollectorCIDR, "%s does not contain %s %s", c.CollectorCIDR, keyCollectorHost, a)
	}
	c.EPSLimit = int(r.integer(keyEPSLimit, DefaultEPSLimit, 1, 10_000_000))
	c.MaxConcurrency = int(r.integer(keyMaxConcurrency, DefaultMaxConcurrency, 2, 1000))
	if c.EPSLimit < c.MaxConcurrency {
		r.fail(keyEPSLimit, "%d is below %s %d: each instance needs at least 1 event per second", c.EPSLimit, keyMaxConcurrency, c.MaxConcurrency)
	}
	c.FilePattern = r.str(keyFilePattern, DefaultFilePattern)
	if _, err := regexp.Compile(c.FilePattern); err != nil {
		r.fail(keyFilePattern, "%q is not a valid regular expression: %v", c.FilePattern, err)
	}
	c.S3EndpointURL = r.str(keyS3EndpointURL, "")
	if c.S3EndpointURL != "" {
		u, err := url.Parse(c.S3EndpointURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			r.fail(keyS3EndpointURL, "%q is not an https:// URL", c.S3EndpointURL)
		}
	}
	c.AssumeRoleARN = r.str(keyAssumeRoleARN, "")
	if c.AssumeRoleARN != "" && !reRoleARN.MatchString(c.AssumeRoleARN) {
		r.fail(keyAssumeRoleARN, "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", c.AssumeRoleARN)
	}
	c.ExternalID = r.str(keyExternalID, "")
	if c.ExternalID != "" && (len(c.ExternalID) < 2 || len(c.ExternalID) > 1224 || !reExternalID.MatchString(c.ExternalID)) {
		r.fail(keyExternalID, "must be 2 to 1224 characters of letters, digits and +=,.@:/-")
	}
	// With a domain per instance the id is the high 16 bits of each instance's domain.
	c.DomainPerInstance = r.boolean(keyDomainPerInstance, true)
	maxDomain := int64(math.MaxUint32)
	if c.DomainPerInstance {
		maxDomain = math.MaxUint16
	}
	c.ObservationDomainID = uint32(r.integer(keyObservationDomainID, DefaultObservationDomainID, 0, maxDomain))
	c.TemplateRefreshSeconds = int(r.integer(keyTemplateRefreshSeconds, DefaultTemplateRefreshSeconds, 1, 86400))
	c.MaxDatagramBytes = int(r.integer(keyMaxDatagramBytes, DefaultMaxDatagramBytes, 512, 65507))
	c.EnterpriseNumber = uint32(r.integer(keyEnterpriseNumber, 0, 0, math.MaxUint32))
	c.PreferPacketAddresses = r.boolean(keyPreferPacketAddresses, true)
	c.DeadlineMarginSeconds = int(r.integer(keyDeadlineMarginSeconds, DefaultDeadlineMarginSeconds, 1, 600))
	c.LogLevel = r.oneOf(keyLogLevel, DefaultLogLevel, logLevels, strings.ToLower)

	// Function.
	c.AssetPath = r.str(keyAssetPath, DefaultAssetPath)
	c.MemorySize = int(r.integer(keyMemorySize, DefaultMemorySize, 128, 10240))
	c.TimeoutSeconds = int(r.integer(keyTimeoutSeconds, DefaultTimeoutSeconds, 10, 900))
	if c.DeadlineMarginSeconds >= c.TimeoutSeconds {
		r.fail(keyDeadlineMarginSeconds, "%d must be less than %s %d", c.DeadlineMarginSeconds, keyTimeoutSeconds, c.TimeoutSeconds)
	}
	c.BatchingWindowSeconds = int(r.integer(keyBatchingWindowSeconds, 0, 0, 300))
	c.BatchSize = int(r.integer(keyBatchSize, DefaultBatchSize, 1, 10000))
	if c.BatchSize > 10 && c.BatchingWindowSeconds == 0 {
		r.fail(keyBatchSize, "%d needs %s of at least 1 (SQS allows more than 10 messages per batch only with a batching window)", c.BatchSize, keyBatchingWindowSeconds)
	}
	c.MaxReceiveCount = int(r.integer(keyMaxReceiveCount, DefaultMaxReceiveCount, 1, 1000))
	c.LogRetentionDays = int(r.integer(keyLogRetentionDays, DefaultLogRetentionDays, 1, 3653))
	if !validRetention(c.LogRetentionDays) {
		r.fail(keyLogRetentionDays, "%d is not a CloudWatch Logs retention period (one of %v)", c.LogRetentionDays, retentionDays)
		c.LogRetentionDays = DefaultLogRetentionDays
	}
	c.FunctionRoleName = r.str(keyFunctionRoleName, DefaultFunctionRoleName)
	if !reRoleName.MatchString(c.FunctionRoleName) {
		r.fail(keyFunctionRoleName, "%q is not an IAM role name", c.FunctionRoleName)
	}

	// Flow logs (read before the network: lambdaVpcId may default from vpcIds).
	c.VPCIDs = r.list(keyVPCIDs, reVPCID, "VPC id (vpc-0123456789abcdef0)")
	if _, ok := r.raw(keyVPCIDs); !ok {
		r.fail(keyVPCIDs, "is required: a comma-separated list of VPC ids to create flow logs for")
	}
	if d := firstDuplicate(c.VPCIDs); d != "" {
		r.fail(keyVPCIDs, "%q is listed twice", d)
	}
	c.TrafficType = r.oneOf(keyTrafficType, DefaultTrafficType, trafficTypes, strings.ToUpper)
	c.AggregationInterval = int(r.integer(keyAggregationInterval, DefaultAggregationInterval, 0, math.MaxInt32))
	if c.AggregationInterval != 60 && c.AggregationInterval != 600 {
		r.fail(keyAggregationInterval, "%d must be 60 or 600 seconds", c.AggregationInterval)
	}
	c.LogFormat = strings.Join(strings.Fields(r.str(keyLogFormat, "")), " ")
	for f := range strings.FieldsSeq(c.LogFormat) {
		if !reLogField.MatchString(f) {
			r.fail(keyLogFormat, "%q is not a flow log field such as ${srcaddr}", f)
			break
		}
	}
	c.HiveCompatiblePartitions = r.boolean(keyHiveCompatiblePartitions, false)
	c.PerHourPartition = r.boolean(keyPerHourPartition, false)

	// Network.
	c.LambdaVPCID = r.str(keyLambdaVPCID, "")
	if c.LambdaVPCID == "" && len(c.VPCIDs) == 1 {
		c.LambdaVPCID = c.VPCIDs[0]
	}
	switch {
	case c.LambdaVPCID == "" && len(c.VPCIDs) == 0:
		// vpcIds is already reported.
	case c.LambdaVPCID == "":
		r.fail(keyLambdaVPCID, "is required when %s lists more than one VPC: the VPC of the function's subnets", keyVPCIDs)
	case !reVPCID.MatchString(c.LambdaVPCID):
		r.fail(keyLambdaVPCID, "%q is not a valid VPC id (vpc-0123456789abcdef0)", c.LambdaVPCID)
	}
	c.SubnetIDs = r.list(keySubnetIDs, reSubnetID, "subnet id (subnet-0123456789abcdef0)")
	c.AvailabilityZones = r.list(keyAvailabilityZones, reAZ, "availability zone (eu-west-1a)")
	c.RouteTableIDs = r.list(keyRouteTableIDs, reRouteTable, "route table id (rtb-0123456789abcdef0)")
	if _, ok := r.raw(keySubnetIDs); !ok {
		r.fail(keySubnetIDs, "is required: the private subnets (comma-separated) whose routes reach the flow processor")
	} else {
		if d := firstDuplicate(c.SubnetIDs); d != "" {
			r.fail(keySubnetIDs, "%q is listed twice", d)
		}
		if len(c.AvailabilityZones) != len(c.SubnetIDs) {
			r.fail(keyAvailabilityZones, "has %d entries but %s has %d: give the zone of each subnet, in order", len(c.AvailabilityZones), keySubnetIDs, len(c.SubnetIDs))
		}
		if len(c.RouteTableIDs) != len(c.SubnetIDs) {
			r.fail(keyRouteTableIDs, "has %d entries but %s has %d: give the route table of each subnet, in order", len(c.RouteTableIDs), keySubnetIDs, len(c.SubnetIDs))
		}
	}
	c.S3PrefixListID = r.str(keyS3PrefixListID, "")
	switch {
	case c.S3PrefixListID == "":
		r.fail(keyS3PrefixListID, "is required: the id of the region's com.amazonaws.<region>.s3 managed prefix list (aws ec2 describe-managed-prefix-lists)")
	case !rePrefixList.MatchString(c.S3PrefixListID):
		r.fail(keyS3PrefixListID, "%q is not a prefix list id (pl-0123456789abcdef0)", c.S3PrefixListID)
	}
	for _, s := range r.list(keyHTTPSEgressCIDRs, nil, "") {
		if p, ok := r.prefix(keyHTTPSEgressCIDRs, s); ok {
			if p.Bits() == 0 {
				r.fail(keyHTTPSEgressCIDRs, "%s would open HTTPS to everywhere; list the CIDR of the endpoint or proxy", p)
				continue
			}
			c.HTTPSEgressCIDRs = append(c.HTTPSEgressCIDRs, p)
		}
	}
	c.CreateS3GatewayEndpoint = r.boolean(keyCreateS3GatewayEndpoint, true)
	c.Resume = r.boolean(keyResume, true)
	c.CreateSQSEndpoint = r.boolean(keyCreateSQSEndpoint, true) && c.Resume
	c.S3EndpointPolicy = r.oneOf(keyS3EndpointPolicy, DefaultS3EndpointPolicy, endpointModes, strings.ToLower)

	// Bucket.
	c.ExistingBucketName = r.str(keyExistingBucketName, "")
	if c.ExistingBucketName != "" && !reBucketName.MatchString(c.ExistingBucketName) {
		r.fail(keyExistingBucketName, "%q is not a valid S3 bucket name", c.ExistingBucketName)
	}
	c.ExistingBucketAccount = r.str(keyExistingBucketAccount, "")
	if c.ExistingBucketAccount != "" {
		if !reAccount.MatchString(c.ExistingBucketAccount) {
			r.fail(keyExistingBucketAccount, "%q is not a 12-digit account id", c.ExistingBucketAccount)
		}
		if c.ExistingBucketName == "" {
			r.fail(keyExistingBucketAccount, "needs %s", keyExistingBucketName)
		}
	}
	c.NewBucketName = r.str(keyNewBucketName, "")
	if c.NewBucketName != "" {
		if !reBucketName.MatchString(c.NewBucketName) {
			r.fail(keyNewBucketName, "%q is not a valid S3 bucket name", c.NewBucketName)
		}
		if c.ExistingBucketName != "" {
			r.fail(keyNewBucketName, "cannot be combined with %s", keyExistingBucketName)
		}
	}
	c.KMSKey = r.str(keyKMSKey, "")
	switch {
	case c.KMSKey == "" || c.KMSKey == "create" && c.ExistingBucketName == "":
	case c.KMSKey == "create":
		r.fail(keyKMSKey, "\"create\" makes a key for a new bucket; with %s give the ARN of the bucket's key", keyExistingBucketName)
	case !reKMSKeyARN.MatchString(c.KMSKey):
		r.fail(keyKMSKey, "%q is neither \"create\" nor a KMS key ARN (arn:aws:kms:region:123456789012:key/<uuid>)", c.KMSKey)
	}
	c.ExpiryDays = int(r.integer(keyExpiryDays, DefaultExpiryDays, 1, 3650))
	c.FlowLogPrefix = strings.Trim(r.str(keyFlowLogPrefix, DefaultFlowLogPrefix), "/")
	switch {
	case !reFlowPrefix.MatchString(c.FlowLogPrefix) || strings.Contains(c.FlowLogPrefix, "//"):
		r.fail(keyFlowLogPrefix, "%q is not a usable S3 key prefix", c.FlowLogPrefix)
	case c.FlowLogPrefix == "AWSLogs" || strings.HasPrefix(c.FlowLogPrefix, "AWSLogs/"):
		r.fail(keyFlowLogPrefix, "must not start with AWSLogs (the flow log service adds it)")
	}

	// Alarms.
	c.AlarmEmail = r.str(keyAlarmEmail, "")
	if c.AlarmEmail != "" && !reEmail.MatchString(c.AlarmEmail) {
		r.fail(keyAlarmEmail, "%q is not an e-mail address", c.AlarmEmail)
	}
	c.CreateAlarmTopic = r.boolean(keyCreateAlarmTopic, false) || c.AlarmEmail != ""
	c.OldestMessageAgeAlarmSeconds = int(r.integer(keyOldestMessageAgeAlarmSeconds, DefaultOldestMessageAgeSeconds, 60, 1209600))

	// Reader role stack.
	c.ReaderRoleStack = r.boolean(keyReaderRoleStack, false)
	c.ReaderRoleName = r.str(keyReaderRoleName, DefaultReaderRoleName)
	if !reRoleName.MatchString(c.ReaderRoleName) {
		r.fail(keyReaderRoleName, "%q is not an IAM role name", c.ReaderRoleName)
	}
	c.ForwarderAccount = r.str(keyForwarderAccount, "")
	if c.ForwarderAccount != "" && !reAccount.MatchString(c.ForwarderAccount) {
		r.fail(keyForwarderAccount, "%q is not a 12-digit account id", c.ForwarderAccount)
	}
	if c.ReaderRoleStack {
		if c.ExistingBucketName == "" {
			r.fail(keyReaderRoleStack, "needs %s: the reader role reads an existing bucket in the bucket account", keyExistingBucketName)
		}
		if c.ForwarderAccount == "" {
			r.fail(keyForwarderAccount, "is required with %s: the account the forwarder runs in", keyReaderRoleStack)
		}
	}

	return c, errors.Join(r.errs...)
}

// CreatesBucket reports whether the stack creates the flow log bucket.
func (c Config) CreatesBucket() bool { return c.ExistingBucketName == "" }

// CreatesKey reports whether the stack creates a KMS key for the bucket.
func (c Config) CreatesKey() bool { return c.CreatesBucket() && c.KMSKey == "create" }

// KeyARN is the ARN of an existing bucket key, or "" when none is configured.
func (c Config) KeyARN() string {
	if c.KMSKey == "create" {
		return ""
	}
	return c.KMSKey
}

// AccountPrefix is the S3 key prefix, below the bucket, under which the flow
// log service writes the objects of the given account (a literal id or a
// CloudFormation ${AWS::AccountId} substitution). It ends with a slash.
func (c Config) AccountPrefix(account string) string {
	p := ""
	if c.FlowLogPrefix != "" {
		p = c.FlowLogPrefix + "/"
	}
	if c.HiveCompatiblePartitions {
		return p + "AWSLogs/aws-account-id=" + account + "/"
	}
	return p + "AWSLogs/" + account + "/"
}

// Environment is the function's environment, with the names the function
// reads. Optional settings that are unset are left out.
func (c Config) Environment() map[string]string {
	env := map[string]string{
		"COLLECTOR_HOST":           c.CollectorHost,
		"COLLECTOR_PORT":           strconv.Itoa(c.CollectorPort),
		"EPS_LIMIT":                strconv.Itoa(c.EPSLimit),
		"MAX_CONCURRENCY":          strconv.Itoa(c.MaxConcurrency),
		"FILE_PATTERN":             c.FilePattern,
		"OBSERVATION_DOMAIN_ID":    strconv.FormatUint(uint64(c.ObservationDomainID), 10),
		"DOMAIN_PER_INSTANCE":      strconv.FormatBool(c.DomainPerInstance),
		"TEMPLATE_REFRESH_SECONDS": strconv.Itoa(c.TemplateRefreshSeconds),
		"MAX_DATAGRAM_BYTES":       strconv.Itoa(c.MaxDatagramBytes),
		"ENTERPRISE_NUMBER":        strconv.FormatUint(uint64(c.EnterpriseNumber), 10),
		"PREFER_PACKET_ADDRESSES":  strconv.FormatBool(c.PreferPacketAddresses),
		"DEADLINE_MARGIN_SECONDS":  strconv.Itoa(c.DeadlineMarginSeconds),
		"LOG_LEVEL":                c.LogLevel,
	}
	if c.S3EndpointURL != "" {
		env["S3_ENDPOINT_URL"] = c.S3EndpointURL
	}
	if c.AssumeRoleARN != "" {
		env["ASSUME_ROLE_ARN"] = c.AssumeRoleARN
	}
	if c.ExternalID != "" {
		env["EXTERNAL_ID"] = c.ExternalID
	}
	return env
}

// VisibilityTimeoutSeconds is the queue's visibility timeout: six times the
// function timeout plus the batching window, as Lambda recommends for SQS
// event sources.
func (c Config) VisibilityTimeoutSeconds() int {
	return 6*c.TimeoutSeconds + c.BatchingWindowSeconds
}

var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

func validRetention(d int) bool {
	for _, r := range retentionDays {
		if r == d {
			return true
		}
	}
	return false
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func firstDuplicate(xs []string) string {
	seen := make(map[string]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}
